package proxy

// Body wrappers: the request body limit, the watch on the upstream body,
// the counting response writer, ReverseProxy's buffer pool and log sink.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// limitedBody counts the agent's request body and cuts it one byte past the
// limit. It is read by the transport's goroutine, hence the atomics.
type limitedBody struct {
	rc       io.ReadCloser
	max      int64
	n        atomic.Int64
	tooLarge atomic.Bool
	eof      atomic.Bool // the agent's body was read to its end
}

var errBodyTooLarge = errors.New("proxy: request body over the limit")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLarge.Load() {
		return 0, errBodyTooLarge
	}
	if rem := b.max - b.n.Load() + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := b.rc.Read(p)
	if n := b.n.Add(int64(k)); n > b.max {
		b.tooLarge.Store(true)
		return k - int(n-b.max), errBodyTooLarge
	}
	if err == io.EOF {
		b.eof.Store(true)
	}
	return k, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// watchedBody records a read error of the upstream body other than EOF.
type watchedBody struct {
	io.ReadCloser
	x *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.x.streamErr == nil {
		b.x.streamErr = errStreamBroken
	}
	return n, err
}

// countingWriter counts the body bytes sent to the agent and remembers the
// status. Unwrap and FlushError keep http.ResponseController working
// (flushes for streams, hijacking for upgrades).
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	err    error
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *countingWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool hands ReverseProxy 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// scrubbedLog receives ReverseProxy's own log lines. They may quote an error
// holding the outbound URL, so only a fixed message is kept.
type scrubbedLog struct{ log *slog.Logger }

func (s scrubbedLog) Write(p []byte) (int, error) {
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "proxy: reverse proxy reported an error (details withheld: they may hold the outbound URL)")
	return len(p), nil
}
