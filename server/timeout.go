package server

import (
	"io"
	"net/http"
	"time"
)

// Request bodies must keep arriving: a client that sends a body one byte at
// a time would otherwise hold its connection (and a goroutine) open for as
// long as it likes. The http.Server has no read timeout (proxied uploads
// and streamed answers may be long), so each route bounds its own body
// read with the connection's read deadline, per request:
//   - API routes: the whole body within SlowBodyTimeout (bodies are small);
//   - the proxy: SlowBodyTimeout of grace, plus one second for every
//     minBodyRate bytes received, so a large upload at a steady pace goes
//     through and a trickle is cut off.
// Once the body has been read to its end the deadline is lifted again, so
// a long streamed answer is not cut.

// DefaultSlowBodyTimeout is Config.SlowBodyTimeout's default.
const DefaultSlowBodyTimeout = 30 * time.Second

// minBodyRate is the average pace, in bytes per second after the grace
// period, that a proxied request body must keep up.
const minBodyRate = 4 << 10

// guardBody wraps h so that the request body is read under a deadline:
// paced (the proxy) or whole (API routes).
func (s *Server) guardBody(h http.Handler, paced bool) http.Handler {
	grace := s.cfg.SlowBodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			g := &deadlineBody{rc: r.Body, ctl: http.NewResponseController(w), start: time.Now(), grace: grace, paced: paced}
			if g.ctl.SetReadDeadline(g.start.Add(grace)) == nil {
				r.Body = g
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody moves the connection's read deadline as the body arrives
// and lifts it at the end of the body.
type deadlineBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	start time.Time
	grace time.Duration
	paced bool
	n     int64
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.paced {
		b.ctl.SetReadDeadline(b.start.Add(b.grace + time.Duration(b.n)*time.Second/minBodyRate))
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF && !b.done {
		// The body is over: answers may stream as long as they need. (After
		// any other error the deadline stays, so the server's discarding of
		// an unread rest cannot be held either.)
		b.done = true
		b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }
