package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// view is what every page template gets.
type view struct {
	Title   string
	Actor   *agentkeys.Actor
	CSRF    string
	Error   string
	Notice  string
	Current string // the nav entry to mark
	Data    any
}

// Can reports whether the signed-in member's role allows p (which buttons
// to show; the API refuses anyway).
func (v *view) Can(p string) bool { return v.Actor.Can(agentkeys.Permission(p)) }

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, v view) {
	t, ok := d.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if s != nil {
		v.Actor, v.CSRF = s.actor, s.csrf()
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", &v); err != nil {
		d.cfg.Logger.ErrorContext(r.Context(), "dashboard template", "page", page, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders an error page with the API's (or the dashboard's) message.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	d.render(w, r, status, "error", s, view{Title: "Error", Error: msg})
}

// failErr renders err from the API with its status.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, s *session, status int, err error) {
	if status < 400 {
		status = agentkeys.StatusForCode(agentkeys.ErrorCode(err))
	}
	d.fail(w, r, s, status, agentkeys.ErrorMessage(err))
}

// --- sign-up, log in, log out ---

type authForm struct {
	Email, Workspace string
	Token            string
}

func (d *Dashboard) signupPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "signup", nil, view{Title: "Sign up", Data: authForm{Token: d.formToken(w, r)}})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "login", nil, view{Title: "Log in", Data: authForm{Token: d.formToken(w, r)}})
}

type signedUp struct {
	Workspace struct{ ID, Name string }
	APIKey    string
}

func (d *Dashboard) signup(w http.ResponseWriter, r *http.Request) {
	f := authForm{Email: r.PostFormValue("email"), Workspace: r.PostFormValue("workspace"), Token: d.formToken(w, r)}
	in := map[string]string{"email": f.Email, "password": r.PostFormValue("password"), "workspace": f.Workspace}
	var out signedUp
	status, err := d.cfg.API(r, nil, "POST", "/api/v1/signup", in, &out)
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "signup", nil, view{Title: "Sign up", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	if status == http.StatusAccepted { // the server sends email: confirm first
		d.render(w, r, http.StatusAccepted, "login", nil, view{Title: "Log in", Notice: "Check your email to confirm your sign-up, then log in.", Data: authForm{Token: f.Token}})
		return
	}
	s, err := d.startSession(w, r, f.Email, in["password"], out.Workspace.ID)
	if err != nil {
		d.failErr(w, r, nil, 0, err)
		return
	}
	d.render(w, r, http.StatusCreated, "welcome", s, view{Title: "Welcome", Data: out})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	f := authForm{Email: r.PostFormValue("email"), Token: d.formToken(w, r)}
	if _, err := d.startSession(w, r, f.Email, r.PostFormValue("password"), ""); err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "login", nil, view{Title: "Log in", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

type loggedIn struct {
	User       struct{ ID string }
	Workspaces []struct{ ID string }
}

// startSession checks the password through the API's log-in route (its
// throttles and its one message for unknown emails and wrong passwords),
// ends any session the browser had and starts a new one in workspace wsID
// (the first of the user's when "").
func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, email, password, wsID string) (*session, error) {
	var out loggedIn
	if _, err := d.cfg.API(r, nil, "POST", "/api/v1/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return nil, err
	}
	if wsID == "" {
		if len(out.Workspaces) == 0 {
			return nil, agentkeys.Errorf(agentkeys.EFORBIDDEN, "you are not a member of any workspace on this server: ask an admin for an invitation")
		}
		wsID = out.Workspaces[0].ID
	}
	if old, err := r.Cookie(d.cookieName(r)); err == nil && old.Value != "" {
		if err := d.cfg.Sessions.DeleteSession(r.Context(), old.Value); err != nil {
			return nil, err
		}
	}
	id, err := d.cfg.Sessions.CreateSession(r.Context(), out.User.ID, wsID)
	if err != nil {
		return nil, err
	}
	d.setCookie(w, r, d.cookieName(r), id, int(d.cfg.Policy.Absolute/time.Second))
	a, err := d.cfg.Sessions.SessionActor(r.Context(), id, d.cfg.Policy)
	if err != nil {
		return nil, err
	}
	return &session{id: id, actor: a}, nil
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := d.cfg.Sessions.DeleteSession(r.Context(), s.id); err != nil {
		d.failErr(w, r, s, 0, err)
		return
	}
	d.setCookie(w, r, d.cookieName(r), "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// --- credentials ---

type credentialsPage struct {
	Credentials []*agentkeys.Credential
	Now         time.Time
}

func (d *Dashboard) credentials(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct{ Credentials []*agentkeys.Credential }
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials", nil, &out); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "credentials", s, view{Title: "Credentials", Current: "credentials",
		Data: credentialsPage{Credentials: out.Credentials, Now: time.Now()}})
}

// credentialForm is the Add Credential form as it was filled in (never a
// secret: those fields are always rendered empty).
type credentialForm struct {
	Name, Type, AllowedHosts, Param, Username, ExpiresAt string
	Types                                                []agentkeys.CredentialType
}

var formTypes = []agentkeys.CredentialType{agentkeys.APIKey, agentkeys.Cookie, agentkeys.BasicAuth, agentkeys.CustomHeader, agentkeys.QueryParam}

func (d *Dashboard) newCredential(w http.ResponseWriter, r *http.Request, s *session) {
	t := r.URL.Query().Get("type")
	if t == "" {
		t = string(agentkeys.APIKey)
	}
	d.render(w, r, http.StatusOK, "credential_new", s, view{Title: "Add Credential", Current: "credentials",
		Data: credentialForm{Type: t, Types: formTypes}})
}

func (d *Dashboard) createCredential(w http.ResponseWriter, r *http.Request, s *session) {
	f := credentialForm{Name: r.PostFormValue("name"), Type: r.PostFormValue("type"), AllowedHosts: r.PostFormValue("allowedHosts"),
		Param: r.PostFormValue("param"), Username: r.PostFormValue("username"), ExpiresAt: r.PostFormValue("expiresAt"), Types: formTypes}
	in := agentkeys.CredentialRequest{Name: f.Name, Type: f.Type, AllowedHosts: fields(f.AllowedHosts),
		Value: r.PostFormValue("value"), Username: f.Username, Password: r.PostFormValue("password"), Param: f.Param}
	var err error
	if in.Headers, err = parseHeaders(r.PostFormValue("headers")); err == nil && f.ExpiresAt != "" {
		var t time.Time
		if t, err = time.Parse("2006-01-02", f.ExpiresAt); err != nil {
			err = agentkeys.Errorf(agentkeys.EINVALID, "expiry %q is not a date (YYYY-MM-DD)", f.ExpiresAt)
		}
		in.ExpiresAt = &t
	}
	if err == nil {
		_, err = d.cfg.API(r, s.actor, "POST", "/api/v1/credentials", in, nil)
	}
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "credential_new", s, view{Title: "Add Credential", Current: "credentials",
			Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

// fields splits a list typed with commas, spaces or newlines.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(s string) ([]agentkeys.Header, error) {
	var out []agentkeys.Header
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "each header line must read Name: value")
		}
		out = append(out, agentkeys.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return out, nil
}

type confirmPage struct {
	What, Name, Action string
}

func (d *Dashboard) confirmDeleteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	var c agentkeys.Credential
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(r.PathValue("id")), nil, &c); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "confirm", s, view{Title: "Delete credential", Current: "credentials",
		Data: confirmPage{What: "credential", Name: c.Name, Action: "/credentials/" + url.PathEscape(c.ID) + "/delete"}})
}

func (d *Dashboard) deleteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	if status, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/credentials/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

// --- agents ---

type agentsPage struct {
	Agents      []*agentkeys.Agent
	Credentials []*agentkeys.Credential
	Error       string
}

func (d *Dashboard) agents(w http.ResponseWriter, r *http.Request, s *session) {
	d.agentsWith(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) agentsWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	var as struct{ Agents []*agentkeys.Agent }
	var cs struct{ Credentials []*agentkeys.Credential }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/agents", nil, &as); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials", nil, &cs); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.render(w, r, status, "agents", s, view{Title: "Agents", Current: "agents", Error: msg,
		Data: agentsPage{Agents: as.Agents, Credentials: cs.Credentials}})
}

func (d *Dashboard) createAgent(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/agents", map[string]string{"name": r.PostFormValue("name")}, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}

// tokenPage shows a new proxy token, once, with the seed's curl example.
type tokenPage struct {
	Agent, Credential, Token, ProxyURL, Target string
}

func (d *Dashboard) assign(w http.ResponseWriter, r *http.Request, s *session) {
	var g agentkeys.Grant
	credID := r.PostFormValue("credentialId")
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/agents/"+url.PathEscape(r.PathValue("id"))+"/credentials",
		map[string]string{"credentialId": credID}, &g); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	var ag agentkeys.Agent
	var c agentkeys.Credential
	_, _ = d.cfg.API(r, s.actor, "GET", "/api/v1/agents/"+url.PathEscape(g.AgentID), nil, &ag)
	_, _ = d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(g.CredentialID), nil, &c)
	target := "https://api.example.com/"
	if len(c.AllowedHosts) > 0 && !strings.Contains(c.AllowedHosts[0], "*") {
		target = "https://" + c.AllowedHosts[0] + "/"
	}
	d.render(w, r, http.StatusCreated, "token", s, view{Title: "Proxy token", Current: "agents",
		Data: tokenPage{Agent: ag.Name, Credential: c.Name, Token: g.ProxyToken, ProxyURL: d.cfg.BaseURL(r) + "/v1/proxy", Target: target}})
}

func (d *Dashboard) revoke(w http.ResponseWriter, r *http.Request, s *session) {
	p := "/api/v1/agents/" + url.PathEscape(r.PathValue("id")) + "/credentials/" + url.PathEscape(r.PathValue("credentialId"))
	if _, err := d.cfg.API(r, s.actor, "DELETE", p, nil, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}

func (d *Dashboard) confirmDeleteAgent(w http.ResponseWriter, r *http.Request, s *session) {
	var ag agentkeys.Agent
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/agents/"+url.PathEscape(r.PathValue("id")), nil, &ag); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "confirm", s, view{Title: "Delete agent", Current: "agents",
		Data: confirmPage{What: "agent", Name: ag.Name, Action: "/agents/" + url.PathEscape(ag.ID) + "/delete"}})
}

func (d *Dashboard) deleteAgent(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/agents/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}

func formatTime(t any) string {
	switch v := t.(type) {
	case *time.Time:
		if v == nil {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "—"
}
