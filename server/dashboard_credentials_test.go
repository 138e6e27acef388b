package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

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
