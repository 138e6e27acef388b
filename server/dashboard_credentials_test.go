package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// manyCredentials adds n credentials named bulk-100001… (in that order)
// to key's workspace in one statement, copying the row of one made
// through the API: listing reads only metadata, so the copies' sealed
// values (bound to the template's id) are never opened. Returns the
// template, named bulk-template (last in the list's order).
func (s *testServer) manyCredentials(key string, n int) *agentkeys.Credential {
	s.t.Helper()
	c := s.createCredential(key, "bulk-template", "sk-bulk-template-canary", "api.example.com")
	_, err := s.store.DB().ExecContext(s.t.Context(), `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1)
		INSERT INTO credentials (id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at)
		SELECT 'cred_bulk' || (100000 + i), workspace_id, 'bulk-' || (100000 + i), 'bulk-' || (100000 + i), type, allowed_hosts, sealed, key_version, created_at, updated_at
		FROM credentials, seq WHERE id = $2`, n, c.ID)
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
