package server

import (
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/store"
)

// Route is one endpoint the server answers: a method ("" for any method),
// a net/http pattern path and the permission the caller needs.
type Route struct {
	Method string
	Path   string
	// Permission is what the caller's role must allow (agentkeys.Can),
	// checked in one place before the handler runs. agentkeys.PermPublic:
	// anyone may call; agentkeys.PermProxy: the proxy checks its own tokens.
	Permission agentkeys.Permission
	// Self, when set, names a path parameter: a caller whose own user id it
	// is may call the route without Permission (a member leaving).
	Self string
}

// apiHandler serves one authenticated API call; a is the caller, whose
// workspace every call is scoped to.
type apiHandler func(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error

// publicHandler serves one call that needs no caller.
type publicHandler func(w http.ResponseWriter, r *http.Request) error

type route struct {
	Route
	api    apiHandler
	public publicHandler
	raw    http.Handler // served as is (the proxy)
}

// table lists every route the server has, each with the permission it
// needs; the mux, Routes, the OpenAPI test and the role matrix test are all
// built from it.
func (s *Server) table() []route {
	api := func(method, path string, p agentkeys.Permission, h apiHandler) route {
		return route{Route: Route{Method: method, Path: path, Permission: p}, api: h}
	}
	public := func(method, path string, h publicHandler) route {
		return route{Route: Route{Method: method, Path: path, Permission: agentkeys.PermPublic}, public: h}
	}
	return append([]route{
		public("POST", "/api/v1/signup", s.signup),
		public("POST", "/api/v1/signup/confirm", s.confirmSignup),
		api("GET", "/api/v1/credentials", agentkeys.PermViewCredentials, s.listCredentials),
		api("POST", "/api/v1/credentials", agentkeys.PermEditCredentials, s.createCredential),
		api("GET", "/api/v1/credentials/{id}", agentkeys.PermViewCredentials, s.getCredential),
		api("PATCH", "/api/v1/credentials/{id}", agentkeys.PermEditCredentials, s.updateCredential),
		api("DELETE", "/api/v1/credentials/{id}", agentkeys.PermDeleteCredentials, s.deleteCredential),
		api("GET", "/api/v1/agents", agentkeys.PermViewCredentials, s.listAgents),
		api("POST", "/api/v1/agents", agentkeys.PermEditAgents, s.createAgent),
		api("GET", "/api/v1/agents/{id}", agentkeys.PermViewCredentials, s.getAgent),
		api("DELETE", "/api/v1/agents/{id}", agentkeys.PermDeleteAgents, s.deleteAgent),
		api("POST", "/api/v1/agents/{id}/credentials", agentkeys.PermEditAgents, s.assignCredential),
		api("DELETE", "/api/v1/agents/{id}/credentials/{credentialId}", agentkeys.PermEditAgents, s.revokeCredential),
		api("GET", "/api/v1/workspace/status", agentkeys.PermViewWorkspace, s.workspaceStatus),
		api("GET", "/api/v1/audit", agentkeys.PermViewAudit, s.listAudit),
		public("POST", "/api/v1/login", s.login),
		api("GET", "/api/v1/workspaces", agentkeys.PermViewWorkspace, s.listWorkspaces),
		api("POST", "/api/v1/workspaces", agentkeys.PermCreateWorkspace, s.createWorkspace),
		api("GET", "/api/v1/workspace", agentkeys.PermViewWorkspace, s.getWorkspace),
		api("PATCH", "/api/v1/workspace", agentkeys.PermEditWorkspace, s.updateWorkspace),
		api("DELETE", "/api/v1/workspace", agentkeys.PermDeleteWorkspace, s.deleteWorkspace),
		api("GET", "/api/v1/members", agentkeys.PermViewWorkspace, s.listMembers),
		api("PATCH", "/api/v1/members/{userId}", agentkeys.PermChangeRoles, s.setRole),
		withSelf(api("DELETE", "/api/v1/members/{userId}", agentkeys.PermRemoveMembers, s.removeMember), "userId"),
		api("GET", "/api/v1/invitations", agentkeys.PermInviteMembers, s.listInvitations),
		api("POST", "/api/v1/invitations", agentkeys.PermInviteMembers, s.createInvitation),
		api("POST", "/api/v1/invitations/{id}/resend", agentkeys.PermInviteMembers, s.resendInvitation),
		api("DELETE", "/api/v1/invitations/{id}", agentkeys.PermInviteMembers, s.cancelInvitation),
		public("GET", "/api/v1/invitations/accept", s.invitationByToken),
		public("POST", "/api/v1/invitations/accept", s.acceptInvitation),
		api("GET", "/api/v1/api-keys", agentkeys.PermManageAPIKeys, s.listAPIKeys),
		api("POST", "/api/v1/api-keys", agentkeys.PermManageAPIKeys, s.createAPIKey),
		api("DELETE", "/api/v1/api-keys/{id}", agentkeys.PermManageAPIKeys, s.revokeAPIKey),
		api("POST", "/api/v1/api-keys/{id}/rotate", agentkeys.PermManageAPIKeys, s.rotateAPIKey),
		api("GET", "/api/v1/webhooks", agentkeys.PermConfigureWebhooks, s.listWebhooks),
		api("POST", "/api/v1/webhooks", agentkeys.PermConfigureWebhooks, s.createWebhook),
		api("GET", "/api/v1/webhooks/{id}", agentkeys.PermConfigureWebhooks, s.getWebhook),
		api("PATCH", "/api/v1/webhooks/{id}", agentkeys.PermConfigureWebhooks, s.updateWebhook),
		api("DELETE", "/api/v1/webhooks/{id}", agentkeys.PermConfigureWebhooks, s.deleteWebhook),
		api("POST", "/api/v1/webhooks/{id}/rotate-secret", agentkeys.PermConfigureWebhooks, s.rotateWebhookSecret),
		api("POST", "/api/v1/webhooks/{id}/test", agentkeys.PermConfigureWebhooks, s.testWebhook),
		api("GET", "/api/v1/webhooks/{id}/deliveries", agentkeys.PermConfigureWebhooks, s.listDeliveries),
		api("POST", "/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver", agentkeys.PermConfigureWebhooks, s.redeliver),
		api("GET", "/api/v1/billing", agentkeys.PermManageBilling, s.billingInfo),
		api("POST", "/api/v1/billing/checkout", agentkeys.PermManageBilling, s.billingCheckout),
		api("POST", "/api/v1/billing/portal", agentkeys.PermManageBilling, s.billingPortal),
		public("POST", "/api/v1/billing/webhook", s.billingWebhook),
		api("POST", "/api/v1/oauth/{provider}/start", agentkeys.PermEditCredentials, s.startOAuth),
		public("GET", OAuthCallbackPath, s.oauthCallback),
		public("GET", "/api/v1/openapi.json", s.openAPI),
		public("GET", "/healthz", s.healthz),
		public("GET", "/readyz", s.readyz),
		{Route: Route{Method: "", Path: "/v1/proxy", Permission: agentkeys.PermProxy}, raw: s.proxy},
		{Route: Route{Method: "", Path: proxy.BaseURLPrefix, Permission: agentkeys.PermProxy}, raw: s.proxy}, // base-URL mode
	}, s.syncRoutes()...)
}

// withSelf lets the user named by path parameter param call rt too.
func withSelf(rt route, param string) route {
	rt.Self = param
	return rt
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
			h = s.serveAPI(rt.Route, rt.api)
		default:
			h = s.servePublic(rt.public)
		}
		h = s.guardBody(h, rt.raw != nil) // timeout.go: a slow body cannot hold the connection
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
	s.api = mux
	top := http.NewServeMux()
	top.Handle("/", mux)
	s.newDashboard().Register(top) // dashboard.go: the web pages, over s.api
	return s.observe(top)
}

// serveAPI caps the body, establishes the caller (server/auth), checks the
// route's permission against the caller's current role — the one place
// permissions are checked — and runs h with the caller in the context.
func (s *Server) serveAPI(rt Route, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		a, err := s.auth.Authenticate(r)
		if ia, ok := internalActor(r.Context()); ok { // the dashboard, as its session's actor
			a, err = ia, nil
		}
		switch {
		case err != nil:
		case a == nil:
			err = agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "missing API key: send Authorization: Bearer ak_ws_…")
		case !allowed(rt, r, a):
			err = forbidden(rt.Permission, a.Role)
		default:
			r = r.WithContext(agentkeys.WithActor(r.Context(), a))
			err = h(w, r, a)
		}
		if err != nil {
			s.writeError(w, r, err, 0)
		}
	})
}

// allowed reports whether a may call rt.
func allowed(rt Route, r *http.Request, a *agentkeys.Actor) bool {
	if a.Can(rt.Permission) {
		return true
	}
	return rt.Self != "" && a.UserID != "" && r.PathValue(rt.Self) == a.UserID
}

// forbidden is the 403 for a role that lacks p: it names the permission and
// the roles that have it.
func forbidden(p agentkeys.Permission, role agentkeys.Role) error {
	var have []string
	for _, r := range agentkeys.Roles {
		if agentkeys.Can(r, p) {
			have = append(have, string(r))
		}
	}
	return agentkeys.Errorf(agentkeys.EFORBIDDEN, "this needs the %s permission, which your role (%s) does not have (%s do): ask an owner or admin of the workspace",
		p, role, strings.Join(have, ", "))
}

// vault is the caller's workspace, as the store's agentkeys.Vault.
func (s *Server) vault(r *http.Request, a *agentkeys.Actor) *store.Workspace {
	ws := s.store.Workspace(a.WorkspaceID)
	ws.SetLocation(s.baseURL(r))
	return ws
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
