package server_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// manyCredentials adds n credentials named bulk-100001… (in that order)
// to key's workspace in one statement, copying the row of one made
// through the API: listing reads only metadata, so the copies' sealed
// values (bound to the template's id) are never opened. Returns the
// template, named bulk-template (last in the list's order).
func (s *testServer) manyCredentials(key string, n int) *agentkeys.Credential {
	s.t.Helper()
	c := s.createCredential(key, "bulk-template", "sk-bulk-template-canary", "api.example.com")
	_, err := s.store.DB().ExecContext(s.t.Context(), bulkInsert, n, c.ID)
	if err != nil {
		s.t.Fatalf("insert %d credentials: %v", n, err)
	}
	return c
}

type credentialPageAnswer struct {
	Credentials            []agentkeys.Credential
	NextCursor, PrevCursor string
}

// TestCredentials_Paging: GET /api/v1/credentials without parameters
// still answers every credential without cursors; with limit, cursor or q
// it answers one page in name order with the cursors either side, and the
// pages read forwards then backwards cover the list exactly once. Bad
// limits and cursors are 400 with a message naming the parameter.
func TestCredentials_Paging(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			_, key := s.signup("Acme")
			s.manyCredentials(key, 250)
			for _, name := range []string{"Stripe Live", "stripe-test", "GitHub 100%_x"} {
				s.createCredential(key, name, "v", "api.example.com")
			}

			all := s.do("GET", "/api/v1/credentials", key, nil)
			all.want(t, http.StatusOK, "")
			var every credentialPageAnswer
			all.decode(t, &every)
			if len(every.Credentials) != 254 || strings.Contains(string(all.body), "Cursor") {
				t.Fatalf("unpaged list: %d credentials, cursors in %q…", len(every.Credentials), all.body[:200])
			}

			var seen []string
			cursor, pages := "", 0
			for {
				a := s.do("GET", "/api/v1/credentials?limit=100&cursor="+url.QueryEscape(cursor), key, nil)
				a.want(t, http.StatusOK, "")
				var p credentialPageAnswer
				a.decode(t, &p)
				if pages > 0 && p.PrevCursor == "" || pages == 0 && p.PrevCursor != "" {
					t.Fatalf("page %d: prevCursor %q", pages, p.PrevCursor)
				}
				for _, c := range p.Credentials {
					seen = append(seen, c.Name)
				}
				pages++
				if p.NextCursor == "" {
					if len(p.Credentials) != 54 {
						t.Fatalf("last page has %d", len(p.Credentials))
					}
					cursor = p.PrevCursor
					break
				}
				cursor = p.NextCursor
			}
			for i, c := range every.Credentials {
				if pages != 3 || len(seen) != len(every.Credentials) || seen[i] != c.Name {
					t.Fatalf("%d pages of %d names differ from the full list at %d", pages, len(seen), i)
				}
			}
			// Back from the last page: the middle one, then the first.
			for _, want := range []string{every.Credentials[100].Name, every.Credentials[0].Name} {
				a := s.do("GET", "/api/v1/credentials?limit=100&cursor="+url.QueryEscape(cursor), key, nil)
				var p credentialPageAnswer
				a.decode(t, &p)
				if len(p.Credentials) != 100 || p.Credentials[0].Name != want || p.NextCursor == "" {
					t.Fatalf("back: %d from %v, next %q", len(p.Credentials), p.Credentials[0].Name, p.NextCursor)
				}
				cursor = p.PrevCursor
			}
			if cursor != "" {
				t.Fatal("the first page read backwards has a prevCursor")
			}

			// q filters by a substring of the name, ignoring case, with LIKE's
			// wildcards taken literally.
			for q, want := range map[string]string{"STRIPE": "Stripe Live,stripe-test", "100%_": "GitHub 100%_x", "%": "GitHub 100%_x", "nothing": ""} {
				var p credentialPageAnswer
				s.do("GET", "/api/v1/credentials?q="+url.QueryEscape(q), key, nil).decode(t, &p)
				var names []string
				for _, c := range p.Credentials {
					names = append(names, c.Name)
				}
				if strings.Join(names, ",") != want || p.NextCursor != "" || p.PrevCursor != "" {
					t.Fatalf("q=%q: %v next %q", q, names, p.NextCursor)
				}
			}
			var p credentialPageAnswer
			s.do("GET", "/api/v1/credentials?q=bulk-10000&limit=5", key, nil).decode(t, &p)
			if len(p.Credentials) != 5 || p.Credentials[0].Name != "bulk-100001" || p.NextCursor == "" {
				t.Fatalf("q=bulk-10000&limit=5: %+v", p)
			}
			next := p.NextCursor
			p = credentialPageAnswer{}
			s.do("GET", "/api/v1/credentials?q=bulk-10000&limit=5&cursor="+next, key, nil).decode(t, &p)
			if len(p.Credentials) != 4 || p.Credentials[0].Name != "bulk-100006" || p.NextCursor != "" || p.PrevCursor == "" {
				t.Fatalf("second filtered page: %+v", p)
			}

			for query, msg := range map[string]string{
				"limit=0":             "limit must be a whole number from 1 to 1000",
				"limit=1001":          "limit must be a whole number from 1 to 1000",
				"limit=ten":           "limit must be a whole number from 1 to 1000",
				"limit=":              "limit must be a whole number from 1 to 1000",
				"cursor=garbage":      "is not one this server gave",
				"cursor=MQ":           "is not one this server gave", // 1
				"cursor=eyJkIjoieiJ9": "is not one this server gave", // {"d":"z"}
				"page=2":              "unknown query parameter",
			} {
				a := s.do("GET", "/api/v1/credentials?"+query, key, nil)
				a.want(t, http.StatusBadRequest, agentkeys.EINVALID)
				if !strings.Contains(string(a.body), msg) {
					t.Errorf("%s: %s, want %q", query, a.body, msg)
				}
			}
		})
	}
}

// hx sends an htmx request (HX-Request: true) with the given CSRF header
// ("" for none) and form body, as app.js does.
func (b *browser) hx(method, path, csrf string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return b.send(req)
}

var metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// TestDashboard_HTMXFoundation: pages load htmx and app.js from the
// origin under a CSP that allows no inline script; the session's CSRF token
// is in a meta tag; an htmx POST is accepted with the X-CSRF-Token header
// and refused (403, nothing written) without it or with another session's;
// the one-time token and API key pages have copy buttons.
func TestDashboard_HTMXFoundation(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	if !strings.Contains(b.pages[len(b.pages)-1], `data-copy="#api-key"`) {
		t.Fatal("the welcome page has no copy button for the API key")
	}
	other := newBrowser(s)
	other.signUp("bob@example.com", "Bobs")

	_, page, h := b.get("/agents")
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q allows unsafe sources", csp)
	}
	m := metaCSRF.FindStringSubmatch(page)
	if m == nil || m[1] != b.csrf {
		t.Fatalf("no csrf-token meta matching the forms' token:\n%s", page)
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(page) || strings.Contains(page, " style=") || strings.Contains(page, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(page) {
		t.Fatal("a page has an inline script, style or event handler")
	}
	if !strings.Contains(page, `"allowEval":false`) || !strings.Contains(page, `"historyCacheSize":0`) {
		t.Fatal("htmx is not configured by the meta tag (no eval, no history cache)")
	}
	for _, name := range []string{"htmx.min", "app"} {
		src := regexp.MustCompile(`<script src="(/assets/` + regexp.QuoteMeta(name) + `\.[0-9a-f]{12}\.js)" defer></script>`).FindStringSubmatch(page)
		if src == nil {
			t.Fatalf("no %s script tag", name)
		}
		st, body, h := b.get(src[1])
		if st != http.StatusOK || h.Get("Content-Type") != "text/javascript; charset=utf-8" || len(body) < 100 {
			t.Fatalf("%s = %d %q (%d bytes)", src[1], st, h.Get("Content-Type"), len(body))
		}
	}

	for name, tok := range map[string]string{"missing": "", "another session's": other.csrf} {
		st, page, _ := b.hx("POST", "/agents", tok, url.Values{"name": {"evil"}})
		if st != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Fatalf("htmx POST with a %s token = %d %s", name, st, page)
		}
	}
	if a := s.do("GET", "/api/v1/agents", key, nil); strings.Contains(string(a.body), "evil") {
		t.Fatalf("a refused htmx POST wrote: %s", a.body)
	}
	if st, _, _ := b.hx("POST", "/agents", b.csrf, url.Values{"name": {"good"}}); st != http.StatusOK {
		t.Fatalf("htmx POST with the header = %d", st)
	}
	if a := s.do("GET", "/api/v1/agents", key, nil); !strings.Contains(string(a.body), `"good"`) {
		t.Fatalf("the htmx POST with the header did not write: %s", a.body)
	}

	// Signed out, an htmx request is told to go to the log-in page rather
	// than given one to swap into a fragment.
	st, _, h := newBrowser(s).hx("GET", "/agents", "", nil)
	if st != http.StatusUnauthorized || h.Get("HX-Redirect") != "/login" {
		t.Fatalf("signed-out htmx request = %d, HX-Redirect %q", st, h.Get("HX-Redirect"))
	}

	cred := s.createCredential(key, "Stripe", "sk-htmx-canary", "api.stripe.com")
	var ag struct{ ID string }
	s.do("GET", "/api/v1/agents/good", key, nil).decode(t, &ag)
	b.get("/agents")
	st, page = b.post("/agents/"+ag.ID+"/assign", url.Values{"credentialId": {cred.ID}})
	if st != http.StatusCreated || !strings.Contains(page, `data-copy="#proxy-token"`) || !strings.Contains(page, `data-copy="#curl-example"`) {
		t.Fatalf("token page = %d without copy buttons:\n%s", st, page)
	}
}

// sweep fails when any page the browser saw, or the server's log, holds
// one of the secrets.
func sweep(t *testing.T, s *testServer, b *browser, secrets ...string) {
	t.Helper()
	for i, p := range b.pages {
		for _, sec := range secrets {
			if strings.Contains(p, sec) {
				t.Fatalf("page %d holds a secret (%.12s…):\n%s", i, sec, p)
			}
		}
	}
	for _, sec := range secrets {
		if strings.Contains(s.logs.String(), sec) {
			t.Fatalf("the server's log holds a secret (%.12s…)", sec)
		}
	}
}

// credentialCount is how many credentials key's workspace has.
func (s *testServer) credentialCount(key string) int {
	s.t.Helper()
	var out credentialPageAnswer
	s.do("GET", "/api/v1/credentials", key, nil).decode(s.t, &out)
	return len(out.Credentials)
}

// proxyWith assigns the credential to a new agent and sends one request
// through the proxy to the upstream; it returns what the upstream received.
func (s *testServer) proxyWith(key, credID string, up *upstream) testkit.Received {
	s.t.Helper()
	ag := s.createAgent(key, "probe-"+credID)
	g := s.assign(key, ag.ID, credID)
	if got := proxyGet(s.t, s.url, g.ProxyToken, "", "http://"+up.host()+"/hello"); got.status != http.StatusOK {
		s.t.Fatalf("proxy = %d %s", got.status, got.body)
	}
	return up.Last(s.t)
}

// TestDashboard_AddCredentialForms: the Cookie form's paste-all mode takes
// a DevTools Cookie header or a JSON cookie export and stores the cookie
// value the proxy then sends; Custom Headers takes several rows; bad
// pastes and forms get 400 with a message, keep what is not secret, and
// write nothing; no page or log holds a value.
func TestDashboard_AddCredentialForms(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			const canary = "forms-canary-5d1e"

			for name, c := range map[string]struct{ paste, want string }{
				"devtools": {"Cookie: sid=" + canary + "1; theme=dark;\n  lang=en", "sid=" + canary + "1; theme=dark; lang=en"},
				"export": {`[{"domain":".x.com","name":"auth_token","value":"` + canary + `2","httpOnly":true},{"name":"ct0","value":"abc"}]`,
					"auth_token=" + canary + "2; ct0=abc"},
				"storage-state": {`{"cookies":[{"name":"li_at","value":"` + canary + `3"}],"origins":[]}`, "li_at=" + canary + "3"},
			} {
				b.get("/credentials/new?type=COOKIE")
				st, page := b.post("/credentials", url.Values{"type": {"COOKIE"}, "name": {"cookie-" + name}, "value": {c.paste}, "allowedHosts": {up.host()}})
				if st != http.StatusOK || !strings.Contains(page, "cookie-"+name) {
					t.Fatalf("%s: %d %s", name, st, page)
				}
				var cred agentkeys.Credential
				s.do("GET", "/api/v1/credentials/cookie-"+name, key, nil).decode(t, &cred)
				if got := s.proxyWith(key, cred.ID, up).Header.Get("Cookie"); got != c.want {
					t.Fatalf("%s: the upstream got Cookie %q, want %q", name, got, c.want)
				}
			}

			b.get("/credentials/new?type=CUSTOM_HEADER")
			page := b.pages[len(b.pages)-1]
			if strings.Count(page, `name="headerName"`) != 4 || !strings.Contains(page, `class="add-row secondary" data-template="#header-row"`) {
				t.Fatalf("the Custom Headers form has not 3 rows, a row template and an Add header button:\n%s", page)
			}
			st, page := b.post("/credentials", url.Values{"type": {"CUSTOM_HEADER"}, "name": {"Anthropic"}, "allowedHosts": {up.host()},
				"headerName": {"x-api-key", "", "anthropic-version", ""}, "headerValue": {canary + "4", "", "2023-06-01", ""}})
			if st != http.StatusOK {
				t.Fatalf("custom headers: %d %s", st, page)
			}
			var cred agentkeys.Credential
			s.do("GET", "/api/v1/credentials/Anthropic", key, nil).decode(t, &cred)
			if h := s.proxyWith(key, cred.ID, up).Header; h.Get("X-Api-Key") != canary+"4" || h.Get("Anthropic-Version") != "2023-06-01" {
				t.Fatalf("the upstream got headers %v", h)
			}
			// Its Edit page names the headers the value is sent under, never a value.
			if _, page, _ := b.get("/credentials/" + cred.ID + "/edit"); !strings.Contains(page, "It is sent as the headers x-api-key, anthropic-version.") || strings.Contains(page, canary) {
				t.Fatalf("the Custom Headers edit page does not name the headers, or shows a value:\n%s", page)
			}

			before := s.credentialCount(key)
			for name, f := range map[string]struct {
				form url.Values
				msg  string
			}{
				"bare token":       {url.Values{"type": {"COOKIE"}, "value": {canary + "5"}}, "is not name=value"},
				"no cookies":       {url.Values{"type": {"COOKIE"}, "value": {" ; ;"}}, "no cookies pasted"},
				"JSON not export":  {url.Values{"type": {"COOKIE"}, "value": {`{"sid":"` + canary + `6"}`}}, "not a cookie export"},
				"JSON no value":    {url.Values{"type": {"COOKIE"}, "value": {`[{"name":"sid"}]`}}, "cookie 1 of the JSON export has no name or no value"},
				"JSON empty":       {url.Values{"type": {"COOKIE"}, "value": {`[]`}}, "holds no cookies"},
				"broken JSON":      {url.Values{"type": {"COOKIE"}, "value": {`[{"name":"sid","value":"` + canary + `7"`}}, "not a cookie export"},
				"header no name":   {url.Values{"type": {"CUSTOM_HEADER"}, "headerName": {"X-A", ""}, "headerValue": {"1", canary + "8"}}, "header 2 has a value but no name"},
				"bad expiry":       {url.Values{"type": {"API_KEY"}, "value": {canary + "9"}, "expiresAt": {"next week"}}, "is not a date (YYYY-MM-DD)"},
				"no value":         {url.Values{"type": {"API_KEY"}}, ""},
				"unknown type":     {url.Values{"type": {"PIGEON"}, "value": {canary + "10"}}, ""},
				"basic no user":    {url.Values{"type": {"BASIC_AUTH"}, "password": {canary + "11"}}, ""},
				"query no param":   {url.Values{"type": {"QUERY_PARAM"}, "value": {canary + "12"}}, ""},
				"wildcard too far": {url.Values{"type": {"API_KEY"}, "value": {canary + "13"}, "allowedHosts": {"*.com"}}, ""},
			} {
				b.get("/credentials/new")
				f.form.Set("name", "bad-"+strings.ReplaceAll(name, " ", "-"))
				if f.form.Get("allowedHosts") == "" {
					f.form.Set("allowedHosts", "api.example.com")
				}
				st, page := b.post("/credentials", f.form)
				if st != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, f.msg) ||
					!strings.Contains(page, `value="bad-`+strings.ReplaceAll(name, " ", "-")+`"`) {
					t.Errorf("%s: %d, want 400 with %q and the name kept:\n%s", name, st, f.msg, page)
				}
			}
			if n := s.credentialCount(key); n != before {
				t.Fatalf("refused forms wrote: %d credentials, had %d", n, before)
			}
			b.get("/credentials")
			b.get("/agents")
			sweep(t, s, b, canary)
		})
	}
}

// TestDashboard_EditCredential: the edit form holds name, hosts and expiry
// but never the value; saving with the value blank keeps it, a new value
// replaces it; a bad edit is 400 with nothing changed; a member sees no
// Edit and their posted edit is refused 403 with nothing changed.
func TestDashboard_EditCredential(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			const canary, canary2 = "edit-canary-0a7f", "edit-canary-new-93bb"
			c := s.createCredential(key, "Upstream", canary, up.host())
			ag := s.createAgent(key, "bot")
			g := s.assign(key, ag.ID, c.ID)
			sent := func() string {
				t.Helper()
				if got := proxyGet(t, s.url, g.ProxyToken, "", "http://"+up.host()+"/x"); got.status != http.StatusOK {
					t.Fatalf("proxy = %d %s", got.status, got.body)
				}
				return up.Last(t).Header.Get("Authorization")
			}

			_, page, _ := b.get("/credentials")
			if !strings.Contains(page, `href="/credentials/`+c.ID+`/edit"`) {
				t.Fatal("the list has no Edit link")
			}
			_, page, _ = b.get("/credentials/" + c.ID + "/edit")
			if !strings.Contains(page, `value="Upstream"`) || !strings.Contains(page, `value="`+up.host()+`"`) || !strings.Contains(page, `id="value" name="value" type="password" >`) {
				t.Fatalf("edit form:\n%s", page)
			}
			st, page := b.post("/credentials/"+c.ID+"/edit", url.Values{"type": {"API_KEY"}, "name": {"Upstream 2"}, "allowedHosts": {up.host() + ", api.example.com"},
				"expiresAt": {"2099-01-31"}, "value": {""}})
			if st != http.StatusOK || !strings.Contains(page, "Upstream 2") {
				t.Fatalf("save = %d %s", st, page)
			}
			var got agentkeys.Credential
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).decode(t, &got)
			if got.Name != "Upstream 2" || len(got.AllowedHosts) != 2 || got.ExpiresAt == nil || got.ExpiresAt.Format("2006-01-02") != "2099-01-31" {
				t.Fatalf("after the edit: %+v", got)
			}
			if a := sent(); a != "Bearer "+canary {
				t.Fatalf("a blank value did not keep the old one: the upstream got %q", a)
			}
			// A new value replaces it; clearing the date clears the expiry.
			b.get("/credentials/" + c.ID + "/edit")
			if st, _ := b.post("/credentials/"+c.ID+"/edit", url.Values{"type": {"API_KEY"}, "name": {"Upstream 2"}, "allowedHosts": {up.host()}, "value": {canary2}}); st != http.StatusOK {
				t.Fatalf("new value = %d", st)
			}
			if a := sent(); a != "Bearer "+canary2 {
				t.Fatalf("the upstream got %q after the new value", a)
			}
			got = agentkeys.Credential{}
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).decode(t, &got)
			if got.ExpiresAt != nil {
				t.Fatalf("a blank date kept the expiry %v", got.ExpiresAt)
			}

			// Bad edits: nothing changes.
			for name, f := range map[string]url.Values{
				"no hosts":  {"type": {"API_KEY"}, "name": {"Renamed"}, "allowedHosts": {""}, "value": {canary + "x"}},
				"bad date":  {"type": {"API_KEY"}, "name": {"Renamed"}, "allowedHosts": {up.host()}, "expiresAt": {"31/01/2099"}},
				"no name":   {"type": {"API_KEY"}, "name": {""}, "allowedHosts": {up.host()}},
				"bad value": {"type": {"API_KEY"}, "name": {"Renamed"}, "allowedHosts": {up.host()}, "value": {"line\nbreak"}},
			} {
				b.get("/credentials/" + c.ID + "/edit")
				if st, page := b.post("/credentials/"+c.ID+"/edit", f); st != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) {
					t.Errorf("%s: %d %s", name, st, page)
				}
			}
			b.get("/credentials/" + c.ID + "/edit")
			if st, _ := b.post("/credentials/cred_nope/edit", url.Values{"type": {"API_KEY"}, "name": {"X"}, "allowedHosts": {up.host()}}); st != http.StatusNotFound {
				t.Errorf("edit of an unknown credential = %d, want 404", st)
			}
			var after agentkeys.Credential
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).decode(t, &after)
			if after.Name != "Upstream 2" || len(after.AllowedHosts) != 1 || sent() != "Bearer "+canary2 {
				t.Fatalf("a refused edit changed the credential: %+v", after)
			}

			// A member: no Edit link, and the posted edit is refused.
			s.invite(key, "max@example.com", "member")
			m := newBrowser(s)
			m.logIn("max@example.com")
			if _, page, _ = m.get("/credentials"); strings.Contains(page, "/edit") || strings.Contains(page, "Connect OAuth") {
				t.Fatalf("a member's list offers Edit or Connect OAuth:\n%s", page)
			}
			st, page = m.post("/credentials/"+c.ID+"/edit", url.Values{"type": {"API_KEY"}, "name": {"Hijacked"}, "allowedHosts": {"evil.example.com"}, "value": {"member-value"}})
			if st != http.StatusForbidden || !strings.Contains(page, "credentials:edit") {
				t.Fatalf("member edit = %d %s", st, page)
			}
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).decode(t, &after)
			if after.Name != "Upstream 2" || sent() != "Bearer "+canary2 {
				t.Fatalf("a member's refused edit changed the credential: %+v", after)
			}
			// Without the CSRF token: 403, nothing changed.
			if st, _ = b.post("/credentials/"+c.ID+"/edit", url.Values{"type": {"API_KEY"}, "name": {"NoToken"}, "allowedHosts": {up.host()}, "csrf": {""}}); st != http.StatusForbidden {
				t.Fatalf("edit without CSRF = %d", st)
			}
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).decode(t, &after)
			if after.Name != "Upstream 2" {
				t.Fatal("an edit without the CSRF token changed the name")
			}
			sweep(t, s, b, canary, canary2)
			sweep(t, s, m, canary, canary2)
		})
	}
}

// TestDashboard_ConnectOAuth: Connect OAuth lists the providers, starts
// the flow through the API and sends the browser on to the provider (a
// link app.js follows); after the provider's redirect the credential is
// in the list, and shows "needs re-auth" with a Reconnect link once the
// provider refused a refresh. Bad choices are refused with the API's
// status; a member cannot connect (403).
func TestDashboard_ConnectOAuth(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			o := testkit.NewOAuthServer(t, time.Hour)
			if err := s.store.SetOAuthApps([]*agentkeys.OAuthApp{o.App()}); err != nil {
				t.Fatal(err)
			}
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")

			_, page, _ := b.get("/credentials/new?type=oauth")
			for _, want := range []string{"GitHub", "Google", `value="custom"`, `action="/credentials/oauth"`, `aria-current="page">Connect OAuth`} {
				if !strings.Contains(page, want) {
					t.Fatalf("the Connect OAuth form lacks %q:\n%s", want, page)
				}
			}
			for name, f := range map[string]struct {
				form   url.Values
				status int
			}{
				"no provider":      {url.Values{"name": {"X"}}, http.StatusBadRequest},
				"unknown provider": {url.Values{"name": {"X"}, "provider": {"nope"}}, http.StatusBadRequest},
				"no app":           {url.Values{"name": {"X"}, "provider": {"github"}}, http.StatusNotFound},
				"no name":          {url.Values{"name": {""}, "provider": {"custom"}}, http.StatusBadRequest},
			} {
				if st, page := b.post("/credentials/oauth", f.form); st != f.status || !strings.Contains(page, `role="alert"`) {
					t.Errorf("%s: %d, want %d:\n%s", name, st, f.status, page)
				}
			}

			st, page := b.post("/credentials/oauth", url.Values{"name": {"Tracker"}, "provider": {"custom"}, "scopes": {"read"}})
			m := regexp.MustCompile(`<a class="button" href="([^"]+)" data-follow`).FindStringSubmatch(page)
			if st != http.StatusOK || m == nil {
				t.Fatalf("connect = %d without a link to follow:\n%s", st, page)
			}
			authURL := html.UnescapeString(m[1])
			if !strings.HasPrefix(authURL, o.URL+"/authorize?") {
				t.Fatalf("the link goes to %s", authURL)
			}
			if err := testkit.ApproveURL(authURL); err != nil {
				t.Fatal(err)
			}
			_, page, _ = b.get("/credentials")
			if !strings.Contains(page, "Tracker") || !strings.Contains(page, "OAUTH") || !strings.Contains(page, `<span class="badge ok">active</span>`) {
				t.Fatalf("the connected credential is not listed as active:\n%s", page)
			}
			var c agentkeys.Credential
			s.do("GET", "/api/v1/credentials/Tracker", key, nil).decode(t, &c)
			if _, err := s.store.DB().ExecContext(t.Context(), `UPDATE credentials SET oauth_status = 'error' WHERE id = $1`, c.ID); err != nil {
				t.Fatal(err)
			}
			_, page, _ = b.get("/credentials")
			if !strings.Contains(page, "needs re-auth") || !strings.Contains(page, `href="/credentials/new?type=oauth&amp;name=Tracker"`) {
				t.Fatalf("a refused refresh does not show needs re-auth with Reconnect:\n%s", page)
			}
			_, page, _ = b.get("/credentials/" + c.ID + "/edit")
			if strings.Contains(page, "Replace the secret") {
				t.Fatal("the edit form of an OAUTH credential offers to replace its tokens")
			}

			s.invite(key, "max@example.com", "member")
			mb := newBrowser(s)
			mb.logIn("max@example.com")
			mb.get("/credentials")
			if st, _ := mb.post("/credentials/oauth", url.Values{"name": {"Mine"}, "provider": {"custom"}}); st != http.StatusForbidden {
				t.Fatalf("a member's connect = %d, want 403", st)
			}
			var ws struct{ Workspace struct{ ID string } }
			s.do("GET", "/api/v1/workspace", key, nil).decode(t, &ws)
			rt, err := s.store.Workspace(ws.Workspace.ID).RouteByName(t.Context(), "Tracker")
			if err != nil {
				t.Fatal(err)
			}
			sec, err := s.store.OpenSecret(t.Context(), rt)
			if err != nil || sec.Value == "" || sec.RefreshToken == "" {
				t.Fatalf("the connection's tokens: %v", err)
			}
			sweep(t, s, b, sec.Value, sec.RefreshToken, o.ClientSecret)
			sweep(t, s, mb, sec.Value, sec.RefreshToken, o.ClientSecret)
		})
	}
}

// assetBytes is the size of every asset a page links to (stylesheet,
// scripts, icon).
func assetBytes(t *testing.T, b *browser, page string) int {
	t.Helper()
	n := 0
	for _, a := range regexp.MustCompile(`"(/assets/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		st, body, _ := b.get(a[1])
		if st != http.StatusOK {
			t.Fatalf("%s = %d", a[1], st)
		}
		n += len(body)
	}
	return n
}

var rowRE = regexp.MustCompile(`<td>(bulk-\d+)</td>`)

// TestDashboard_TenThousandCredentials: with 10,000 credentials the list
// shows a page of 50 with Next and Previous that walk the list, the name
// filter narrows it (as a plain GET and as an htmx fragment), the first
// load weighs under 150 KiB with every asset, and the Assign picker is a
// name field (no <option> per credential) whose suggestions come from
// /credentials/options and whose name the server resolves.
func TestDashboard_TenThousandCredentials(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			s.manyCredentials(key, 10_000)
			ag := s.createAgent(key, "bot")

			st, page, _ := b.get("/credentials")
			names := rowRE.FindAllStringSubmatch(page, -1)
			if st != http.StatusOK || len(names) != 50 || names[0][1] != "bulk-100001" || names[49][1] != "bulk-100050" {
				t.Fatalf("first page = %d with %d rows", st, len(names))
			}
			if weight := len(page) + assetBytes(t, b, page); weight > 150<<10 {
				t.Fatalf("first load weighs %d bytes, over 150 KiB", weight)
			}
			next := regexp.MustCompile(`href="(/credentials\?cursor=[^"]+)">Next`).FindStringSubmatch(page)
			if next == nil || strings.Contains(page, ">Previous<") {
				t.Fatal("the first page has no Next link, or a Previous one")
			}
			_, page, _ = b.get(html.UnescapeString(next[1]))
			names = rowRE.FindAllStringSubmatch(page, -1)
			prev := regexp.MustCompile(`href="(/credentials\?cursor=[^"]+)">Previous`).FindStringSubmatch(page)
			if len(names) != 50 || names[0][1] != "bulk-100051" || prev == nil {
				t.Fatalf("second page: %d rows from %v, previous link %v", len(names), names[0], prev)
			}
			_, page, _ = b.get(html.UnescapeString(prev[1]))
			if names = rowRE.FindAllStringSubmatch(page, -1); len(names) != 50 || names[0][1] != "bulk-100001" {
				t.Fatalf("back to the first page: %d rows from %v", len(names), names[0])
			}

			_, page, _ = b.get("/credentials?q=BULK-10999")
			if names = rowRE.FindAllStringSubmatch(page, -1); len(names) != 10 || names[0][1] != "bulk-109990" || strings.Contains(page, ">Next<") ||
				!strings.Contains(page, `value="BULK-10999"`) {
				t.Fatalf("filtered: %d rows", len(names))
			}
			req, _ := http.NewRequest("GET", s.url+"/credentials?q=bulk-1000", nil)
			req.Header.Set("HX-Request", "true")
			req.Header.Set("HX-Target", "credential-list")
			_, frag, _ := b.send(req)
			if strings.Contains(frag, "<html") || len(rowRE.FindAllString(frag, -1)) != 50 || !strings.Contains(frag, "q=bulk-1000") {
				t.Fatalf("the htmx fragment:\n%.500s", frag)
			}
			if _, page, _ = b.get("/credentials?q=nothing-like-this"); !strings.Contains(page, "No credential’s name contains") {
				t.Fatal("an empty filter result says nothing")
			}

			_, page, _ = b.get("/agents")
			if strings.Count(page, "<option") > 0 || !strings.Contains(page, `name="credential"`) || !strings.Contains(page, `list="assign-options-`+ag.ID+`"`) ||
				!strings.Contains(page, `hx-get="/credentials/options"`) || len(page) > 30<<10 {
				t.Fatalf("the agents page with 10,000 credentials (%d bytes):\n%.3000s", len(page), page)
			}
			_, opts, _ := b.get("/credentials/options?credential=bulk-1001")
			if n := strings.Count(opts, "<option"); n != 25 || !strings.Contains(opts, `<option value="bulk-100100">`) {
				t.Fatalf("options: %d\n%s", n, opts)
			}
			st, page = b.post("/agents/"+ag.ID+"/assign", url.Values{"credential": {"BULK-100007"}})
			if st != http.StatusCreated || !strings.Contains(page, "bulk-100007") || !strings.Contains(page, "pxr_") {
				t.Fatalf("assign by name = %d %s", st, page)
			}
			b.get("/agents")
			if st, page = b.post("/agents/"+ag.ID+"/assign", url.Values{"credential": {"no-such-credential"}}); st != http.StatusNotFound || !strings.Contains(page, "no-such-credential") {
				t.Fatalf("assign of an unknown name = %d %s", st, page)
			}
			var got struct {
				Credentials []struct{ CredentialName string }
			}
			s.do("GET", "/api/v1/agents/"+ag.ID, key, nil).decode(t, &got)
			if len(got.Credentials) != 1 {
				t.Fatalf("the agent has %d assignments, want the one", len(got.Credentials))
			}
			sweep(t, s, b, "sk-bulk-template-canary")
		})
	}
}

// TestDashboard_AssignPickerFew: with few credentials the picker is a
// <select> of them all, labelled Credential.
func TestDashboard_AssignPickerFew(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	for i := range 25 {
		s.createCredential(key, "cred-"+strings.Repeat("x", i+1), "v", "api.example.com")
	}
	s.createAgent(key, "bot")
	_, page, _ := b.get("/agents")
	if strings.Count(page, "<option") != 25 || !strings.Contains(page, `name="credentialId"`) || !strings.Contains(page, `">Credential</label>`) {
		t.Fatalf("agents page with 25 credentials:\n%s", page)
	}
	s.createCredential(key, "one-more", "v", "api.example.com")
	if _, page, _ = b.get("/agents"); strings.Contains(page, "<option") || !strings.Contains(page, `name="credential"`) {
		t.Fatal("26 credentials still get a select")
	}
}

// BenchmarkDashboard_TenThousandCredentials times the server's answer to
// each paged dashboard page over a workspace of 10,000 credentials on
// SQLite (the target: under 50 ms each), side by side with the
// unpaged GET /api/v1/credentials of all 10,000 as the baseline
// ("x-unpaged" is the page's time over the baseline's):
//
//	go test -run '^$' -bench DashboardTenThousand ./server/
func BenchmarkDashboard_TenThousandCredentials(b *testing.B) {
	st, err := store.Open(b.Context(), store.Config{DataDir: b.TempDir(), ServerKey: mustKeyTB(b), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, Signup: server.SignupOpen, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path, key string) string {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s = %d %s", path, res.StatusCode, body)
		}
		return string(body)
	}
	tok := csrfRE.FindStringSubmatch(get("/signup", ""))
	res, err := c.PostForm(hs.URL+"/signup", url.Values{"email": {"ada@example.com"}, "password": {teamPassword}, "workspace": {"Acme"}, "csrf": {tok[1]}})
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	key := regexp.MustCompile(`ak_ws_[A-Za-z0-9_]+`).FindString(string(body))
	tmpl := apiCreate(b, hs.URL, key)
	if _, err := st.DB().ExecContext(b.Context(), bulkInsert, 10_000, tmpl); err != nil {
		b.Fatal(err)
	}
	var list credentialPageAnswer
	if err := json.Unmarshal([]byte(get("/api/v1/credentials?limit=1000&cursor=", key)), &list); err != nil {
		b.Fatal(err)
	}
	middle := list.NextCursor // the credentials after the first 1,000

	var base float64 // ns per unpaged list, measured first
	for _, p := range []struct{ name, path string }{
		{"baseline: API list of all 10,001", "/api/v1/credentials"},
		{"credentials first page", "/credentials"},
		{"credentials page 21", "/credentials?cursor=" + url.QueryEscape(middle)},
		{"credentials filtered", "/credentials?q=bulk-1099"},
		{"assign suggestions", "/credentials/options?credential=bulk-10"},
		{"agents", "/agents"},
		{"audit", "/audit"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				get(p.path, key)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if base == 0 || strings.HasPrefix(p.name, "baseline") {
				base = ns
			}
			b.ReportMetric(ns/1e6, "ms/op")
			b.ReportMetric(ns/base, "x-unpaged")
		})
	}
}

// bulkInsert is manyCredentials' statement: $1 copies of credential $2.
const bulkInsert = `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1)
	INSERT INTO credentials (id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at)
	SELECT 'cred_bulk' || (100000 + i), workspace_id, 'bulk-' || (100000 + i), 'bulk-' || (100000 + i), type, allowed_hosts, sealed, key_version, created_at, updated_at
	FROM credentials, seq WHERE id = $2`

func mustKeyTB(tb testing.TB) agentkeys.Key {
	k, err := agentkeys.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// apiCreate makes the template credential over the API and returns its id.
func apiCreate(tb testing.TB, base, key string) string {
	body := strings.NewReader(`{"name":"bulk-template","type":"API_KEY","value":"sk-bulk-template-canary","allowedHosts":["api.example.com"]}`)
	req, _ := http.NewRequest("POST", base+"/api/v1/credentials", body)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var c agentkeys.Credential
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil || c.ID == "" {
		tb.Fatalf("create credential: %d %v", res.StatusCode, err)
	}
	return c.ID
}

// TestDashboard_AgentsPaged: /agents shows 20 agents a page with Next and
// Previous links (each agent carries its assignments and an Assign form, so
// an unpaged list outgrows the page-weight budget at about 30 agents); a
// page past the end says so; a page that is not a number is a 400.
func TestDashboard_AgentsPaged(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	for i := range 45 {
		s.createAgent(key, fmt.Sprintf("bot-%02d", i))
	}
	countAgents := func(page string) int { return strings.Count(page, `<section class="card agent">`) }
	st, page, _ := b.get("/agents")
	if st != http.StatusOK || countAgents(page) != 20 || !strings.Contains(page, `href="/agents?page=2">Next</a>`) ||
		strings.Contains(page, ">Previous</a>") || !strings.Contains(page, "45 agents") {
		t.Fatalf("first page = %d, %d agents:\n%s", st, countAgents(page), page)
	}
	st, page, _ = b.get("/agents?page=3")
	if st != http.StatusOK || countAgents(page) != 5 || !strings.Contains(page, `href="/agents?page=2">Previous</a>`) || strings.Contains(page, ">Next</a>") {
		t.Fatalf("last page = %d, %d agents:\n%s", st, countAgents(page), page)
	}
	st, page, _ = b.get("/agents?page=9")
	if st != http.StatusOK || countAgents(page) != 0 || !strings.Contains(page, "No agents on this page.") || !strings.Contains(page, `href="/agents?page=3">Previous</a>`) {
		t.Fatalf("page past the end = %d:\n%s", st, page)
	}
	for _, bad := range []string{"0", "-1", "two", "1.5"} {
		if st, page, _ = b.get("/agents?page=" + bad); st != http.StatusBadRequest || !strings.Contains(page, "is not a page number") {
			t.Fatalf("page=%s = %d:\n%s", bad, st, page)
		}
	}
}
