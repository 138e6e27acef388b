package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// browser is a cookie-keeping client of the dashboard that follows
// redirects, as a browser does; it remembers every page it saw.
type browser struct {
	t     *testing.T
	base  string
	c     *http.Client
	csrf  string   // the last form's CSRF token
	pages []string // every body seen
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newBrowser(s *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, base: s.url, c: &http.Client{Jar: jar}}
}

func (b *browser) send(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	b.pages = append(b.pages, page)
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, page, resp.Header
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.send(req)
}

// post submits a form; the CSRF token of the last page goes along unless
// form sets "csrf" itself.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, page, _ := b.send(req)
	return st, page
}

// signUp signs up through the form and returns the workspace API key the
// welcome page showed once.
func (b *browser) signUp(email, workspace string) string {
	b.t.Helper()
	b.get("/signup")
	st, page := b.post("/signup", url.Values{"email": {email}, "password": {teamPassword}, "workspace": {workspace}})
	m := regexp.MustCompile(`ak_ws_[A-Za-z0-9_]+`).FindString(page)
	if st != http.StatusCreated || m == "" {
		b.t.Fatalf("sign-up answered %d without a key:\n%s", st, page)
	}
	return m
}

func (b *browser) logIn(email string) {
	b.t.Helper()
	b.get("/login")
	if st, page := b.post("/login", url.Values{"email": {email}, "password": {teamPassword}}); st != http.StatusOK || !strings.Contains(page, "<h1>Credentials</h1>") {
		b.t.Fatalf("log-in answered %d:\n%s", st, page)
	}
}

// TestDashboard_GettingStarted: the seed's steps 1–5 through the forms, on
// both databases — sign up, add a credential, create an agent, assign,
// read the token — then that token through /v1/proxy reaches the upstream.
// No page ever holds the credential's value; every page has the CSP.
func TestDashboard_GettingStarted(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			b := newBrowser(s)
			const canary = "sk-dashboard-canary-7f3a9"

			st, page, _ := b.get("/")
			if st != http.StatusOK || !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatalf("/ signed out = %d %s", st, page)
			}
			key := b.signUp("ada@example.com", "Acme")

			b.get("/credentials/new")
			st, page = b.post("/credentials", url.Values{"type": {"API_KEY"}, "name": {"Upstream"}, "value": {canary}, "allowedHosts": {up.host()}})
			if st != http.StatusOK || !strings.Contains(page, "Upstream") || !strings.Contains(page, up.host()) {
				t.Fatalf("add credential = %d %s", st, page)
			}
			st, page = b.post("/agents", url.Values{"name": {"marketing-bot"}})
			if st != http.StatusOK || !strings.Contains(page, "marketing-bot") {
				t.Fatalf("create agent = %d %s", st, page)
			}
			agents := s.do("GET", "/api/v1/agents", key, nil)
			var as struct{ Agents []agentkeys.Agent }
			agents.decode(t, &as)
			creds := s.do("GET", "/api/v1/credentials", key, nil)
			var cs struct{ Credentials []agentkeys.Credential }
			creds.decode(t, &cs)
			if len(as.Agents) != 1 || len(cs.Credentials) != 1 {
				t.Fatalf("agents %s credentials %s", agents.body, creds.body)
			}
			st, page = b.post("/agents/"+as.Agents[0].ID+"/assign", url.Values{"credentialId": {cs.Credentials[0].ID}})
			token := regexp.MustCompile(`pxr_[A-Za-z0-9_]+`).FindString(page)
			if st != http.StatusCreated || token == "" || !strings.Contains(page, "curl -X POST "+s.url+"/v1/proxy") {
				t.Fatalf("assign = %d %s", st, page)
			}
			if got := proxyGet(t, s.url, token, "", "http://"+up.host()+"/hello"); got.status != http.StatusOK {
				t.Fatalf("proxy with the dashboard's token = %d %s", got.status, got.body)
			}
			if rec := up.received(); len(rec) != 1 || !strings.Contains(rec[0], canary) {
				t.Fatalf("upstream saw %q, want the injected credential", rec)
			}
			// The token is shown once: the agents page does not hold it.
			_, page, h := b.get("/agents")
			if strings.Contains(page, token) {
				t.Fatal("the agents page shows the proxy token again")
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src") && !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("CSP = %q", csp)
			}
			if h.Get("Referrer-Policy") == "" {
				t.Fatal("no Referrer-Policy")
			}
			css := regexp.MustCompile(`/assets/style\.[0-9a-f]{12}\.css`).FindString(page)
			st, _, h = b.get(css)
			if css == "" || st != http.StatusOK || !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Fatalf("stylesheet %q = %d %q", css, st, h.Get("Cache-Control"))
			}
			b.get("/credentials")
			b.get("/credentials/" + cs.Credentials[0].ID + "/delete")
			b.get("/agents/" + as.Agents[0].ID + "/delete")
			for i, p := range b.pages {
				if strings.Contains(p, canary) {
					t.Fatalf("page %d holds the credential's value:\n%s", i, p)
				}
			}
			// Delete with confirmation, then log out: the session is gone.
			if st, page = b.post("/credentials/"+cs.Credentials[0].ID+"/delete", url.Values{}); st != http.StatusOK || strings.Contains(page, "Upstream") {
				t.Fatalf("delete = %d %s", st, page)
			}
			b.get("/agents")
			if st, page = b.post("/logout", url.Values{}); st != http.StatusOK || !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatalf("logout = %d %s", st, page)
			}
			if _, page, _ = b.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("still signed in after logging out")
			}
			if strings.Contains(s.logs.String(), canary) {
				t.Fatal("the logs hold the credential's value")
			}
		})
	}
}

// TestDashboard_CSRF: a state-changing form without its token, or with
// another session's, is refused with 403 and changes nothing; so is a
// log-in without the form's double-submit token.
func TestDashboard_CSRF(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	other := newBrowser(s)
	other.signUp("bob@example.com", "Bobs")
	for name, tok := range map[string]string{"missing": "", "another session's": other.csrf} {
		st, page := b.post("/agents", url.Values{"name": {"evil"}, "csrf": {tok}})
		if st != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Fatalf("%s token: %d %s", name, st, page)
		}
	}
	if a := s.do("GET", "/api/v1/agents", key, nil); strings.Contains(string(a.body), "evil") {
		t.Fatalf("a refused form wrote: %s", a.body)
	}
	fresh := newBrowser(s)
	if st, _ := fresh.post("/login", url.Values{"email": {"ada@example.com"}, "password": {teamPassword}}); st != http.StatusForbidden {
		t.Fatalf("log-in without the form token = %d, want 403", st)
	}
	if st, _ := fresh.post("/logout", url.Values{}); st != http.StatusUnauthorized {
		t.Fatalf("log-out without a session = %d, want 401", st)
	}
}

// TestDashboard_SessionExpiry: a session ends after its idle time without
// use and after its absolute lifetime however used (injected clock); the
// cookie is then worth nothing.
func TestDashboard_SessionExpiry(t *testing.T) {
	c := &clock{}
	c.add(time.Duration(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
	s := newTestServer(t, serverOpts{now: c.now})
	b := newBrowser(s)
	b.signUp("ada@example.com", "Acme")

	c.add(11 * time.Hour) // within the 12h idle time: still signed in, and the use counts
	if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Credentials</h1>") {
		t.Fatal("signed out within the idle time")
	}
	c.add(12*time.Hour + time.Second)
	if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
		t.Fatal("still signed in after the idle time")
	}
	if st, _ := b.post("/agents", url.Values{"name": {"late"}}); st != http.StatusUnauthorized {
		t.Fatalf("POST after expiry = %d, want 401", st)
	}

	b.logIn("ada@example.com")
	for range 7 { // used every 23 hours: never idle, but 7 days is the limit
		c.add(23 * time.Hour)
		b.get("/credentials")
	}
	if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
		t.Fatal("still signed in after the absolute lifetime")
	}
}

// TestDashboard_MemberRole: a member sees no delete buttons, and the server
// refuses the delete they could still post (the API's permission check:
// 403, nothing deleted); removing the member ends their session.
func TestDashboard_MemberRole(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			owner := newBrowser(s)
			ownerKey := owner.signUp("ada@example.com", "Acme")
			cred := s.createCredential(ownerKey, "Stripe", "sk-member-canary", "api.stripe.com")
			ag := s.createAgent(ownerKey, "bot")
			_, memberID := s.invite(ownerKey, "max@example.com", "member")

			m := newBrowser(s)
			m.logIn("max@example.com")
			_, page, _ := m.get("/credentials")
			if !strings.Contains(page, "Stripe") || strings.Contains(page, "/delete") || strings.Contains(page, "Add Credential") {
				t.Fatalf("a member's credentials page offers actions the role lacks:\n%s", page)
			}
			if _, page, _ = m.get("/agents"); strings.Contains(page, "/delete") || !strings.Contains(page, "Assign Credential") {
				t.Fatalf("a member's agents page:\n%s", page)
			}
			st, page := m.post("/credentials/"+cred.ID+"/delete", url.Values{})
			if st != http.StatusForbidden || !strings.Contains(page, "credentials:delete") {
				t.Fatalf("member delete = %d %s", st, page)
			}
			if st, _ = m.post("/agents/"+ag.ID+"/delete", url.Values{}); st != http.StatusForbidden {
				t.Fatalf("member agent delete = %d", st)
			}
			if st, _ = m.post("/credentials", url.Values{"type": {"API_KEY"}, "name": {"X"}, "value": {"v"}, "allowedHosts": {"x.example.com"}}); st != http.StatusForbidden {
				t.Fatalf("member add credential = %d", st)
			}
			if a := s.do("GET", "/api/v1/credentials", ownerKey, nil); !strings.Contains(string(a.body), cred.ID) || strings.Contains(string(a.body), `"X"`) {
				t.Fatalf("a refused action changed the credentials: %s", a.body)
			}
			if a := s.do("GET", "/api/v1/agents/"+ag.ID, ownerKey, nil); a.status != http.StatusOK {
				t.Fatalf("a refused delete removed the agent: %d", a.status)
			}
			// Removed from the workspace: the next page sends them to log in.
			s.do("DELETE", "/api/v1/members/"+memberID, ownerKey, nil).want(t, http.StatusNoContent, "")
			if _, page, _ = m.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("a removed member is still signed in")
			}
			var n int
			if err := s.store.DB().QueryRow(`SELECT count(*) FROM sessions WHERE user_id = '` + memberID + `'`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("sessions of the removed member: %d %v", n, err)
			}
		})
	}
}

// TestDashboard_LoginMessages: an unknown email and a wrong password get
// the same answer, and neither signs anyone in.
func TestDashboard_LoginMessages(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	newBrowser(s).signUp("ada@example.com", "Acme")
	var pages []string
	var statuses []int
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		b := newBrowser(s)
		b.get("/login")
		st, page := b.post("/login", url.Values{"email": {email}, "password": {"wrong password here"}})
		msg := regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`).FindStringSubmatch(page)
		if msg == nil {
			t.Fatalf("%s: no error shown (%d):\n%s", email, st, page)
		}
		pages, statuses = append(pages, msg[1]), append(statuses, st)
		if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
			t.Fatalf("%s: signed in with a wrong password", email)
		}
	}
	if pages[0] != pages[1] || statuses[0] != statuses[1] || statuses[0] != http.StatusUnauthorized {
		t.Fatalf("answers differ: %d %q / %d %q", statuses[0], pages[0], statuses[1], pages[1])
	}
}

// TestDashboard_HTTPSCookie: over HTTPS the session cookie is
// __Host-agentkeys_session, Secure, HttpOnly, SameSite=Lax, Path=/.
func TestDashboard_HTTPSCookie(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	hs := httptest.NewTLSServer(s.srv.Handler())
	defer hs.Close()
	c := hs.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(hs.URL + "/signup")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var formCookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-agentkeys_csrf" {
			formCookie = ck
		}
	}
	tok := csrfRE.FindSubmatch(body)
	if formCookie == nil || tok == nil || !formCookie.Secure {
		t.Fatalf("form cookie %v, token %q", resp.Header["Set-Cookie"], tok)
	}
	form := url.Values{"email": {"ada@example.com"}, "password": {teamPassword}, "workspace": {"Acme"}, "csrf": {string(tok[1])}}
	req, _ := http.NewRequest("POST", hs.URL+"/signup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(formCookie)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, raw := range resp.Header["Set-Cookie"] {
		if strings.HasPrefix(raw, "__Host-agentkeys_session=") {
			for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
				if !strings.Contains(raw, attr) {
					t.Fatalf("session cookie %q lacks %s", raw, attr)
				}
			}
			if strings.Contains(raw, "Domain=") {
				t.Fatalf("a __Host- cookie with a Domain: %q", raw)
			}
			return
		}
	}
	t.Fatalf("sign-up over HTTPS (%d) set no __Host- session cookie: %v", resp.StatusCode, resp.Header["Set-Cookie"])
}

// TestDashboard_EveryCredentialType: the Add Credential form makes each
// type; no page shows a value afterwards, and a bad form (a header value
// without a name) is refused with the form kept and nothing written.
func TestDashboard_EveryCredentialType(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	const canary = "types-canary-91c2"
	forms := map[string]url.Values{
		"API_KEY":       {"value": {canary + "a"}},
		"COOKIE":        {"value": {"sid=" + canary + "b; theme=dark"}},
		"BASIC_AUTH":    {"username": {"bot"}, "password": {canary + "c"}},
		"CUSTOM_HEADER": {"headerName": {"X-Api-Key", "X-Team", ""}, "headerValue": {canary + "d", "ops", ""}},
		"QUERY_PARAM":   {"param": {"api_key"}, "value": {canary + "e"}},
	}
	for typ, f := range forms {
		b.get("/credentials/new?type=" + typ)
		f.Set("type", typ)
		f.Set("name", "cred-"+strings.ToLower(typ))
		f.Set("allowedHosts", "api.example.com, *.example.org")
		if st, page := b.post("/credentials", f); st != http.StatusOK || !strings.Contains(page, "cred-"+strings.ToLower(typ)) {
			t.Fatalf("%s: %d %s", typ, st, page)
		}
	}
	b.get("/credentials/new?type=CUSTOM_HEADER")
	st, page := b.post("/credentials", url.Values{"type": {"CUSTOM_HEADER"}, "name": {"broken"}, "allowedHosts": {"a.example.com"}, "headerName": {""}, "headerValue": {"no name " + canary}})
	if st != http.StatusBadRequest || !strings.Contains(page, "no name") || !strings.Contains(page, `value="broken"`) {
		t.Fatalf("bad header form: %d %s", st, page)
	}
	var out struct{ Credentials []agentkeys.Credential }
	s.do("GET", "/api/v1/credentials", key, nil).decode(t, &out)
	types := map[agentkeys.CredentialType]bool{}
	for _, c := range out.Credentials {
		types[c.Type] = true
		if len(c.AllowedHosts) != 2 {
			t.Fatalf("%s hosts %v", c.Name, c.AllowedHosts)
		}
	}
	if len(out.Credentials) != 5 || len(types) != 5 {
		t.Fatalf("credentials made: %+v", out.Credentials)
	}
	b.get("/credentials")
	b.get("/agents")
	for i, p := range b.pages {
		if strings.Contains(p, canary) {
			t.Fatalf("page %d holds a value:\n%s", i, p)
		}
	}
}
