// Package dashboard is the web dashboard `agentkeys serve` answers at /:
// sign-up, log in and out, Credentials, Agents, Audit and Settings (Team,
// invitations, API Keys, Webhooks, Billing, Workspace) with the workspace
// switcher, a file per area. Pages are server-rendered HTML (html/template)
// with one stylesheet of our own; they work without JavaScript, and htmx
// (vendored, see VENDORED.md) with assets/app.js improves them. Assets are
// embedded and served under content-hashed names with a year's cache
// lifetime; every page carries a strict Content-Security-Policy (scripts
// and styles from this origin only, nothing inline), frame-ancestors 'none'
// and a Referrer-Policy.
//
// The dashboard holds no authorisation of its own: every action is a call
// to the server's API route table in process (Config.API) as the session's
// agentkeys.Actor (kind session, the member's current role), so the route's
// permission is checked where every API key's is. The role only decides
// which buttons are shown.
//
// Sessions: a random id in a cookie (HttpOnly, SameSite=Lax; named
// __Host-agentkeys_session and Secure over HTTPS; agentkeys_session over
// plain HTTP on loopback, where browsers refuse __Host- cookies), stored as
// an HMAC by the store, with idle and absolute expiry, a new id at every
// login, deleted at logout and when the member is removed. Every
// state-changing request carries a CSRF token — a form's csrf field or an
// htmx request's X-CSRF-Token header — bound to the session when signed
// in; the log-in and sign-up forms use a double-submit cookie.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// APIFunc calls the server's API in process as actor a (nil: a public
// route) with in as the JSON body, decoding a success into out. It returns
// the status and, for an error answer, the API's *agentkeys.Error.
type APIFunc func(r *http.Request, a *agentkeys.Actor, method, path string, in, out any) (int, error)

// Sessions keeps dashboard sessions (server/store implements it).
type Sessions interface {
	CreateSession(ctx context.Context, userID, wsID string) (string, error)
	SessionActor(ctx context.Context, id string, p store.SessionPolicy) (*agentkeys.Actor, error)
	DeleteSession(ctx context.Context, id string) error
	// SwitchSession moves session id to workspace wsID (a member's) and
	// returns its new id (store.Store.SwitchSession).
	SwitchSession(ctx context.Context, id, wsID string, p store.SessionPolicy) (string, error)
}

// Config configures a Dashboard. Every field is required but Logger.
type Config struct {
	API      APIFunc
	Sessions Sessions
	Policy   store.SessionPolicy
	// BaseURL is the server's URL as the browser reached it (for the curl
	// example); Secure reports whether r came over HTTPS.
	BaseURL func(r *http.Request) string
	Secure  func(r *http.Request) bool
	Logger  *slog.Logger
}

// Dashboard serves the web pages.
type Dashboard struct {
	cfg    Config
	pages  map[string]*template.Template
	assets map[string]asset // hashed name -> content
	names  map[string]string
}

type asset struct {
	body  []byte
	ctype string
}

// assetTypes are the content types of the files in assets/ by extension.
var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

// New returns the dashboard over cfg. It panics if the embedded templates
// do not parse (a build error, caught by every test).
func New(cfg Config) *Dashboard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, pages: map[string]*template.Template{}, assets: map[string]asset{}, names: map[string]string{}}
	entries, _ := fs.ReadDir(assetFS, "assets")
	for _, e := range entries {
		b, _ := assetFS.ReadFile("assets/" + e.Name())
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ctype := assetTypes[ext]
		if ctype == "" {
			panic("dashboard: asset " + e.Name() + " has no content type") // a build error, caught by every test
		}
		d.assets[hashed] = asset{body: b, ctype: ctype}
		d.names[e.Name()] = "/assets/" + hashed
	}
	funcs := template.FuncMap{
		"asset": func(name string) string { return d.names[name] },
		"time":  formatTime,
		"join":  strings.Join,
	}
	// The layout and the partials every page may use (settings_nav: the
	// Settings sub-nav; webhook_fields: the webhook endpoint form's fields).
	shared := []string{"templates/layout.html", "templates/settings_nav.html", "templates/webhook_fields.html"}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, shared...))
	pages, _ := fs.Glob(templateFS, "templates/*.html")
	for _, p := range pages {
		name := path.Base(p)
		if slices.Contains(shared, p) {
			continue
		}
		d.pages[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, p))
	}
	return d
}

// Register adds the dashboard's routes to mux, one group per page area.
func (d *Dashboard) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", d.home)
	mux.HandleFunc("GET /assets/{name}", d.asset)

	// Sign-up, log in, log out (auth.go).
	mux.HandleFunc("GET /signup", d.public(d.signupPage))
	mux.HandleFunc("POST /signup", d.public(d.signup))
	mux.HandleFunc("GET /login", d.public(d.loginPage))
	mux.HandleFunc("POST /login", d.public(d.login))
	mux.HandleFunc("POST /logout", d.signedIn(d.logout))

	// Credentials (credentials.go).
	mux.HandleFunc("GET /credentials", d.signedIn(d.credentials))
	mux.HandleFunc("GET /credentials/new", d.signedIn(d.newCredential))
	mux.HandleFunc("POST /credentials", d.signedIn(d.createCredential))
	mux.HandleFunc("POST /credentials/oauth", d.signedIn(d.connectOAuth))
	mux.HandleFunc("GET /credentials/options", d.signedIn(d.credentialOptions))
	mux.HandleFunc("GET /credentials/{id}/edit", d.signedIn(d.editCredential))
	mux.HandleFunc("POST /credentials/{id}/edit", d.signedIn(d.updateCredential))
	mux.HandleFunc("GET /credentials/{id}/delete", d.signedIn(d.confirmDeleteCredential))
	mux.HandleFunc("POST /credentials/{id}/delete", d.signedIn(d.deleteCredential))

	// Agents (agents.go).
	mux.HandleFunc("GET /agents", d.signedIn(d.agents))
	mux.HandleFunc("POST /agents", d.signedIn(d.createAgent))
	mux.HandleFunc("POST /agents/{id}/assign", d.signedIn(d.assign))
	mux.HandleFunc("POST /agents/{id}/revoke/{credentialId}", d.signedIn(d.revoke))
	mux.HandleFunc("GET /agents/{id}/delete", d.signedIn(d.confirmDeleteAgent))
	mux.HandleFunc("POST /agents/{id}/delete", d.signedIn(d.deleteAgent))

	// Audit (audit.go).
	mux.HandleFunc("GET /audit", d.signedIn(d.audit))
	mux.HandleFunc("GET /audit/rows", d.signedIn(d.auditRows))

	// Settings: team, invitations, API keys, workspaces (settings.go, team.go, invitation.go, keys.go, workspace.go).
	mux.HandleFunc("GET /settings", d.signedIn(d.settings))
	mux.HandleFunc("POST /workspaces/switch", d.signedIn(d.switchWorkspace))
	mux.HandleFunc("GET /settings/team", d.signedIn(d.team))
	mux.HandleFunc("POST /settings/team/invitations", d.signedIn(d.invite))
	mux.HandleFunc("POST /settings/team/invitations/{id}/resend", d.signedIn(d.resendInvitation))
	mux.HandleFunc("POST /settings/team/invitations/{id}/cancel", d.signedIn(d.cancelInvitation))
	mux.HandleFunc("POST /settings/team/{userId}/role", d.signedIn(d.setRole))
	mux.HandleFunc("GET /settings/team/{userId}/remove", d.signedIn(d.confirmRemoveMember))
	mux.HandleFunc("POST /settings/team/{userId}/remove", d.signedIn(d.removeMember))
	mux.HandleFunc("GET /invitations/accept", d.public(d.acceptPage))
	mux.HandleFunc("POST /invitations/accept", d.public(d.accept))
	mux.HandleFunc("GET /settings/api-keys", d.signedIn(d.apiKeys))
	mux.HandleFunc("POST /settings/api-keys", d.signedIn(d.createAPIKey))
	mux.HandleFunc("POST /settings/api-keys/{id}/rotate", d.signedIn(d.rotateAPIKey))
	mux.HandleFunc("GET /settings/api-keys/{id}/revoke", d.signedIn(d.confirmRevokeAPIKey))
	mux.HandleFunc("POST /settings/api-keys/{id}/revoke", d.signedIn(d.revokeAPIKey))
	mux.HandleFunc("GET /settings/workspace", d.signedIn(d.workspace))
	mux.HandleFunc("POST /settings/workspace", d.signedIn(d.renameWorkspace))
	mux.HandleFunc("POST /settings/workspace/new", d.signedIn(d.createWorkspace))
	mux.HandleFunc("GET /settings/workspace/delete", d.signedIn(d.confirmDeleteWorkspace))
	mux.HandleFunc("POST /settings/workspace/delete", d.signedIn(d.deleteWorkspace))

	// Settings: webhooks and billing (webhooks.go, billing.go).
	mux.HandleFunc("GET /settings/webhooks", d.signedIn(d.webhooks))
	mux.HandleFunc("POST /settings/webhooks", d.signedIn(d.createWebhook))
	mux.HandleFunc("GET /settings/webhooks/{id}", d.signedIn(d.webhook))
	mux.HandleFunc("POST /settings/webhooks/{id}", d.signedIn(d.updateWebhook))
	mux.HandleFunc("POST /settings/webhooks/{id}/test", d.signedIn(d.testWebhook))
	mux.HandleFunc("POST /settings/webhooks/{id}/rotate-secret", d.signedIn(d.rotateWebhookSecret))
	mux.HandleFunc("POST /settings/webhooks/{id}/deliveries/{deliveryId}/redeliver", d.signedIn(d.redeliver))
	mux.HandleFunc("GET /settings/webhooks/{id}/delete", d.signedIn(d.confirmDeleteWebhook))
	mux.HandleFunc("POST /settings/webhooks/{id}/delete", d.signedIn(d.deleteWebhook))
	mux.HandleFunc("GET /settings/billing", d.signedIn(d.billing))
	mux.HandleFunc("POST /settings/billing/checkout", d.signedIn(d.billingCheckout))
	mux.HandleFunc("POST /settings/billing/portal", d.signedIn(d.billingPortal))
	mux.HandleFunc("GET /billing/done", d.signedIn(d.billingReturn)) // Stripe's return URLs (server/billing.go)
	mux.HandleFunc("GET /billing/cancelled", d.signedIn(d.billingReturn))
}

// securityHeaders go on every dashboard answer.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

func (d *Dashboard) asset(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	a, ok := d.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(a.body)
}

// session is the signed-in caller of one request.
type session struct {
	id    string
	actor *agentkeys.Actor
}

// csrf is the session's CSRF token: a hash of its id, which only the
// browser holding the cookie can know.
func (s *session) csrf() string {
	sum := sha256.Sum256([]byte("agentkeys dashboard csrf\x00" + s.id))
	return hex.EncodeToString(sum[:])
}

func (d *Dashboard) cookieName(r *http.Request) string {
	if d.cfg.Secure(r) {
		return "__Host-agentkeys_session"
	}
	return "agentkeys_session"
}

func (d *Dashboard) csrfCookieName(r *http.Request) string {
	if d.cfg.Secure(r) {
		return "__Host-agentkeys_csrf"
	}
	return "agentkeys_csrf"
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: d.cfg.Secure(r), SameSite: http.SameSiteLaxMode})
}

// current returns the request's session, or nil when there is none (or it
// has ended).
func (d *Dashboard) current(r *http.Request) *session {
	c, err := r.Cookie(d.cookieName(r))
	if err != nil || c.Value == "" {
		return nil
	}
	a, err := d.cfg.Sessions.SessionActor(r.Context(), c.Value, d.cfg.Policy)
	if err != nil {
		if agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
			d.cfg.Logger.ErrorContext(r.Context(), "dashboard session", "error", err.Error())
		}
		return nil
	}
	return &session{id: c.Value, actor: a}
}

// maxForm caps a form's body (a credential's value included).
const maxForm = 256 << 10

type signedInHandler func(w http.ResponseWriter, r *http.Request, s *session)

// csrfHeader is the header htmx requests carry the session's CSRF token in
// (app.js sets it from <meta name="csrf-token">).
const csrfHeader = "X-CSRF-Token"

// signedIn runs h for a signed-in caller — after checking the CSRF token
// of every request that is not a GET (the X-CSRF-Token header, else the
// form's csrf field) — and sends anyone else to the log-in page (an htmx
// request gets 401 and HX-Redirect, so a fragment never becomes a log-in
// page).
func (d *Dashboard) signedIn(h signedInHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		s := d.current(r)
		if s == nil {
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", "/login")
				http.Error(w, "Your session has ended: log in again.", http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			d.fail(w, r, nil, http.StatusUnauthorized, "Your session has ended: log in again.")
			return
		}
		tok := r.Header.Get(csrfHeader)
		if tok == "" && r.Method != http.MethodGet {
			tok = r.PostFormValue("csrf")
		}
		if r.Method != http.MethodGet && !sameToken(tok, s.csrf()) {
			d.fail(w, r, s, http.StatusForbidden, "This form is out of date or did not come from this dashboard (CSRF check failed): reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// public runs h for the log-in and sign-up pages; a POST must carry the
// double-submit CSRF token its form was given.
func (d *Dashboard) public(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if r.Method != http.MethodGet {
			c, err := r.Cookie(d.csrfCookieName(r))
			if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
				d.fail(w, r, nil, http.StatusForbidden, "This form is out of date or did not come from this dashboard (CSRF check failed): reload the page and try again.")
				return
			}
		}
		h(w, r)
	}
}

// formToken returns the double-submit token of the log-in and sign-up
// forms, setting its cookie when the browser has none.
func (d *Dashboard) formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(d.csrfCookieName(r)); err == nil && len(c.Value) >= 26 {
		return c.Value
	}
	tok := rand.Text()
	d.setCookie(w, r, d.csrfCookieName(r), tok, 0)
	return tok
}

func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (d *Dashboard) home(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	if d.current(r) == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}
