package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/dashboard"
	"github.com/agentkeys/agentkeys/server/store"
)

// Dashboard session lifetimes when Config leaves them zero.
const (
	DefaultSessionIdle     = 12 * time.Hour
	DefaultSessionAbsolute = 7 * 24 * time.Hour
)

// internalActorKey marks a request the dashboard makes to the API in
// process: its actor was established from a session cookie. Only code in
// this process can put it in a context; no header or cookie sets it.
type internalActorKey struct{}

// newDashboard is the web dashboard over this server: every action it takes
// is a call to the API's own route table (callAPI), so the route's
// permission is checked against the session's role in serveAPI like any
// API key's — one authorisation path.
func (s *Server) newDashboard() *dashboard.Dashboard {
	return dashboard.New(dashboard.Config{
		API:      s.callAPI,
		Sessions: s.store,
		Policy:   s.sessionPolicy(),
		BaseURL:  s.baseURL,
		Secure: func(r *http.Request) bool {
			return r.TLS != nil || s.cfg.BehindProxy && r.Header.Get("X-Forwarded-Proto") == "https"
		},
		Logger: s.log,
	})
}

// callAPI runs one API call in process as actor a (nil for the public
// routes), on the route table's handler, and decodes a 2xx answer into out.
// The caller's address goes along so throttles see the browser's. An error
// answer comes back as the *agentkeys.Error the API wrote.
func (s *Server) callAPI(r *http.Request, a *agentkeys.Actor, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, agentkeys.Errorf(agentkeys.EINTERNAL, "encode request: %v", err)
		}
	}
	ctx := context.WithValue(r.Context(), internalActorKey{}, a)
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return 0, agentkeys.Errorf(agentkeys.EINTERNAL, "build request: %v", err)
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	s.api.ServeHTTP(rec, req)
	if rec.status >= 300 {
		var e errorBody
		if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Code == "" {
			return rec.status, agentkeys.Errorf(agentkeys.EINTERNAL, "the API answered %d", rec.status)
		}
		return rec.status, agentkeys.Errorf(e.Code, "%s", e.Error)
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return rec.status, agentkeys.Errorf(agentkeys.EINTERNAL, "decode answer: %v", err)
		}
	}
	return rec.status, nil
}

// internalActor is the actor callAPI put in ctx, or nil.
func internalActor(ctx context.Context) (*agentkeys.Actor, bool) {
	a, ok := ctx.Value(internalActorKey{}).(*agentkeys.Actor)
	return a, ok
}

// recorder keeps one in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (s *Server) sessionPolicy() store.SessionPolicy {
	p := store.SessionPolicy{Idle: s.cfg.SessionIdle, Absolute: s.cfg.SessionAbsolute}
	if p.Idle <= 0 {
		p.Idle = DefaultSessionIdle
	}
	if p.Absolute <= 0 {
		p.Absolute = DefaultSessionAbsolute
	}
	return p
}
