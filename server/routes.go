package server

import (
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/store"
)

// Route is one endpoint the server answers: a method ("" for any method)
// and a net/http pattern path.
type Route struct {
	Method string
	Path   string
	// Auth is true when the route needs Authorization: Bearer ak_ws_….
	Auth bool
}

// apiHandler serves one authenticated API call on the caller's workspace.
type apiHandler func(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error

// publicHandler serves one call that needs no workspace key.
type publicHandler func(w http.ResponseWriter, r *http.Request) error

type route struct {
	Route
	api    apiHandler
	public publicHandler
	raw    http.Handler // served as is (the proxy)
}

// table lists every route the server has; the mux, Routes and the OpenAPI
// test are all built from it.
func (s *Server) table() []route {
	api := func(method, path string, h apiHandler) route {
		return route{Route: Route{Method: method, Path: path, Auth: true}, api: h}
	}
	public := func(method, path string, h publicHandler) route {
		return route{Route: Route{Method: method, Path: path}, public: h}
	}
	return []route{
		public("POST", "/api/v1/signup", s.signup),
		api("GET", "/api/v1/credentials", s.listCredentials),
		api("POST", "/api/v1/credentials", s.createCredential),
		api("GET", "/api/v1/credentials/{id}", s.getCredential),
		api("PATCH", "/api/v1/credentials/{id}", s.updateCredential),
		api("DELETE", "/api/v1/credentials/{id}", s.deleteCredential),
		api("GET", "/api/v1/agents", s.listAgents),
		api("POST", "/api/v1/agents", s.createAgent),
		api("GET", "/api/v1/agents/{id}", s.getAgent),
		api("DELETE", "/api/v1/agents/{id}", s.deleteAgent),
		api("POST", "/api/v1/agents/{id}/credentials", s.assignCredential),
		api("DELETE", "/api/v1/agents/{id}/credentials/{credentialId}", s.revokeCredential),
		api("GET", "/api/v1/workspace/status", s.workspaceStatus),
		api("GET", "/api/v1/audit", s.listAudit),
		api("POST", "/api/v1/oauth/{provider}/start", s.startOAuth),
		public("GET", OAuthCallbackPath, s.oauthCallback),
		public("GET", "/api/v1/openapi.json", s.openAPI),
		public("GET", "/healthz", s.healthz),
		public("GET", "/readyz", s.readyz),
		{Route: Route{Method: "", Path: "/v1/proxy"}, raw: s.proxy},
		{Route: Route{Method: "", Path: proxy.BaseURLPrefix}, raw: s.proxy}, // base-URL mode
	}
}

// Routes lists every route the server answers, in the order it was
// registered.
func (s *Server) Routes() []Route {
	var out []Route
	for _, rt := range s.table() {
		out = append(out, rt.Route)
	}
	return out
}

// routes builds the handler: request ids and access logs around a mux of
// the table, with JSON 404 and 405 answers for everything else.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	paths := http.NewServeMux()    // the same paths without methods, to tell 405 from 404
	allow := map[string][]string{} // path pattern -> its methods, for 405's Allow
	for _, rt := range s.table() {
		var h http.Handler
		switch {
		case rt.raw != nil:
			h = rt.raw
		case rt.api != nil:
			h = s.serveAPI(rt.api)
		default:
			h = s.servePublic(rt.public)
		}
		pattern := rt.Path
		if rt.Method != "" {
			pattern = rt.Method + " " + rt.Path
		}
		mux.Handle(pattern, h)
		if _, seen := allow[rt.Path]; !seen {
			paths.Handle(rt.Path, http.NotFoundHandler())
		}
		allow[rt.Path] = append(allow[rt.Path], rt.Method)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, p := paths.Handler(r); p != "" {
			w.Header().Set("Allow", strings.Join(allow[p], ", "))
			s.writeError(w, r, agentkeys.Errorf(agentkeys.EINVALID, "method %s is not allowed on %s", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
			return
		}
		s.writeError(w, r, agentkeys.Errorf(agentkeys.ENOTFOUND, "no such endpoint: %s (see /api/v1/openapi.json)", r.URL.Path), 0)
	})
	return s.observe(mux)
}

// serveAPI authenticates the workspace key, caps the body and runs h.
func (s *Server) serveAPI(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		key, err := bearer(r)
		if err == nil {
			var wsID string
			if wsID, err = s.store.AuthenticateKey(r.Context(), key); err == nil {
				ws := s.store.Workspace(wsID)
				ws.SetLocation(s.baseURL(r))
				err = h(w, r, ws)
			}
		}
		if err != nil {
			s.writeError(w, r, err, 0)
		}
	})
}

func (s *Server) servePublic(h publicHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := h(w, r); err != nil {
			s.writeError(w, r, err, 0)
		}
	})
}

func apiHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// bearer returns the ak_ws_ key of the Authorization header.
func bearer(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "missing API key: send Authorization: Bearer ak_ws_…")
	}
	scheme, key, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if len(vals) > 1 || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "the Authorization header must be one \"Bearer ak_ws_…\"")
	}
	return strings.TrimSpace(key), nil
}

// baseURL is the server's URL as the client reached it.
func (s *Server) baseURL(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.cfg.BehindProxy {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ ,") {
			host = h
		}
	}
	return scheme + "://" + host
}
