package server_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

var (
	auditRowRE = regexp.MustCompile(`<tr data-key="`)
	pollRE     = regexp.MustCompile(`<tr class="poll" hx-get="([^"]+)" hx-trigger="every 5s"`)
)

// auditRows counts the event rows of an audit page or fragment.
func auditRows(page string) int { return len(auditRowRE.FindAllString(page, -1)) }

// pollURL is the live rows' URL of an audit page or fragment ("" for none).
func pollURL(page string) string {
	if m := pollRE.FindStringSubmatch(page); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// TestDashboard_Audit: the audit page lists proxied requests and admin
// actions newest first, filters by agent, credential (by name), decision
// and dates, pages with Older and Newest, and its live row fetches bring
// only new events that match the filter (none and a 286 "stop" when the
// range has ended). Bad filters are 400 or 404 with a message. No page
// holds a credential value, a query string or a header the agent sent.
func TestDashboard_Audit(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			b.pages = nil // the welcome page showed the key, once
			const canary, queryCanary = "audit-canary-77c1", "audit-query-canary-2b9e"
			credA := s.createCredential(key, "Alpha", canary, up.host())
			credB := s.createCredential(key, "Beta", canary+"-b", up.host())
			agX, agY := s.createAgent(key, "xbot"), s.createAgent(key, "ybot")
			gX, gY := s.assign(key, agX.ID, credA.ID), s.assign(key, agY.ID, credB.ID)
			for range 52 {
				proxyGet(t, s.url, gX.ProxyToken, "", "http://"+up.host()+"/ok?key="+queryCanary).want(t, http.StatusOK, "")
			}
			proxyGet(t, s.url, gY.ProxyToken, "", "http://"+up.host()+"/y").want(t, http.StatusOK, "")
			proxyGet(t, s.url, gY.ProxyToken, "", "http://evil.example.com/steal").want(t, http.StatusForbidden, agentkeys.EDESTINATION)

			st, page, _ := b.get("/audit")
			if st != http.StatusOK || auditRows(page) != 50 || pollURL(page) == "" || !strings.Contains(page, "GET evil.example.com/steal") {
				t.Fatalf("/audit = %d with %d rows, poll %q:\n%.2000s", st, auditRows(page), pollURL(page), page)
			}
			older := regexp.MustCompile(`href="(/audit\?before=\d+)">Older`).FindStringSubmatch(page)
			if older == nil {
				t.Fatal("no Older link on a full first page")
			}
			_, page, _ = b.get(older[1])
			// 54 proxied requests and the admin actions (credentials, agents,
			// assignments) after the first 50.
			if n := auditRows(page); n < 4 || pollURL(page) != "" || !strings.Contains(page, `href="/audit?">Newest`) && !strings.Contains(page, `href="/audit">Newest`) {
				t.Fatalf("older page: %d rows, poll %q:\n%.3000s", n, pollURL(page), page)
			}

			for name, c := range map[string]struct {
				query string
				rows  int
			}{
				"agent":              {"agent=" + agY.ID, 2},
				"credential by name": {"credential=beta", 2},
				"decision":           {"decision=denied", 1},
				"agent and decision": {"agent=" + agX.ID + "&decision=denied", 0},
				"today":              {"from=" + time.Now().UTC().Format("2006-01-02") + "&to=" + time.Now().UTC().Format("2006-01-02") + "&agent=" + agY.ID, 2},
				"yesterday":          {"to=" + time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"), 0},
			} {
				st, page, _ := b.get("/audit?" + c.query)
				if st != http.StatusOK || auditRows(page) != c.rows {
					t.Errorf("%s: %d with %d rows, want %d", name, st, auditRows(page), c.rows)
				}
				if name == "yesterday" && (pollURL(page) != "" || !strings.Contains(page, "No events match this filter")) {
					t.Errorf("a range that has ended still polls, or says nothing:\n%s", page)
				}
			}
			for name, c := range map[string]struct {
				query  string
				status int
				msg    string
			}{
				"bad decision":    {"decision=maybe", http.StatusBadRequest, "decision must be one of allowed, denied, error, admin"},
				"bad date":        {"from=01/02/2026", http.StatusBadRequest, "is not a date (YYYY-MM-DD)"},
				"range backwards": {"from=2026-02-02&to=2026-01-01", http.StatusBadRequest, "ends before it starts"},
				"no credential":   {"credential=Gamma", http.StatusNotFound, "Gamma"},
			} {
				st, page, _ := b.get("/audit?" + c.query)
				if st != c.status || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, c.msg) || auditRows(page) != 0 {
					t.Errorf("%s: %d, want %d with %q:\n%s", name, st, c.status, c.msg, page)
				}
			}

			// Live rows: what arrived since the page, matching its filter.
			_, page, _ = b.get("/audit")
			live := pollURL(page)
			_, yPage, _ := b.get("/audit?agent=" + agY.ID)
			yLive := pollURL(yPage)
			if yLive == "" || !strings.Contains(yLive, "agent="+agY.ID) {
				t.Fatalf("filtered poll URL %q", yLive)
			}
			req, _ := http.NewRequest("GET", s.url+live, nil)
			req.Header.Set("HX-Request", "true")
			if st, frag, _ := b.send(req); st != http.StatusOK || auditRows(frag) != 0 || pollURL(frag) != live {
				t.Fatalf("nothing new: %d, %d rows, poll %q (was %q)", st, auditRows(frag), pollURL(frag), live)
			}
			proxyGet(t, s.url, gX.ProxyToken, "", "http://"+up.host()+"/fresh").want(t, http.StatusOK, "")
			_, frag, _ := b.get(live)
			if auditRows(frag) != 1 || !strings.Contains(frag, "/fresh") || strings.Contains(frag, "<html") || pollURL(frag) == live || pollURL(frag) == "" {
				t.Fatalf("one new event: %d rows, poll %q:\n%s", auditRows(frag), pollURL(frag), frag)
			}
			if _, frag, _ = b.get(pollURL(frag)); auditRows(frag) != 0 {
				t.Fatalf("the next poll repeats rows:\n%s", frag)
			}
			if _, frag, _ = b.get(yLive); auditRows(frag) != 0 || pollURL(frag) != yLive {
				t.Fatalf("a filter that excludes the new event shows it:\n%s", frag)
			}
			ended := "/audit/rows?after=1&to=" + time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
			if st, frag, _ := b.get(ended); st != 286 || frag != "" {
				t.Fatalf("polling a range that has ended = %d %q, want 286 (htmx stops)", st, frag)
			}
			if st, _, _ := b.get("/audit/rows?after=x"); st != http.StatusBadRequest {
				t.Fatalf("a bad after = %d", st)
			}

			// Admin actions are rows too; a member may view the log (audit:view).
			s.invite(key, "max@example.com", "member")
			if _, page, _ := b.get("/audit?decision=admin"); auditRows(page) < 1 || !strings.Contains(page, "invitation.created") || !strings.Contains(page, "by ada@example.com") {
				t.Fatalf("admin rows:\n%s", page)
			}
			m := newBrowser(s)
			m.logIn("max@example.com")
			if st, page, _ := m.get("/audit?agent=" + agY.ID); st != http.StatusOK || auditRows(page) != 2 {
				t.Fatalf("member's audit = %d with %d rows", st, auditRows(page))
			}
			sweep(t, s, b, canary, queryCanary, gX.ProxyToken, gY.ProxyToken, key)
			sweep(t, s, m, canary, queryCanary, gX.ProxyToken, gY.ProxyToken, key)
		})
	}
}

// TestAudit_TimeRange: GET /api/v1/audit takes since and until (RFC 3339)
// and refuses a bad time or a range that ends before it starts.
func TestAudit_TimeRange(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	up := newUpstream(t)
	_, key := s.signup("Acme")
	c := s.createCredential(key, "Alpha", "v", up.host())
	g := s.assign(key, s.createAgent(key, "bot").ID, c.ID)
	proxyGet(t, s.url, g.ProxyToken, "", "http://"+up.host()+"/a").want(t, http.StatusOK, "")
	s.do("PATCH", "/api/v1/workspace", key, map[string]string{"name": "Acme 2"}).want(t, http.StatusOK, "") // an admin event
	now := time.Now().UTC()
	count := func(q string) int {
		t.Helper()
		a := s.do("GET", "/api/v1/audit?"+q, key, nil)
		a.want(t, http.StatusOK, "")
		var out struct{ Events []agentkeys.AuditEvent }
		a.decode(t, &out)
		return len(out.Events)
	}
	hour := func(d int) string { return url.QueryEscape(now.Add(time.Duration(d) * time.Hour).Format(time.RFC3339)) }
	all := count("")
	for q, want := range map[string]int{
		"since=" + hour(-1) + "&until=" + hour(1): all,
		"since=" + hour(1):                        0,
		"until=" + hour(-1):                       0,
		"decision=allowed&since=" + hour(-1):      1,
		"decision=admin&since=" + hour(-1):        1,
		"decision=admin&until=" + hour(-1):        0,
	} {
		if got := count(q); got != want || all < 2 {
			t.Errorf("%s: %d events, want %d (of %d)", q, got, want, all)
		}
	}
	for q, msg := range map[string]string{
		"since=yesterday":                         "since must be an RFC 3339 time",
		"until=2026-01-01":                        "until must be an RFC 3339 time",
		"since=" + hour(1) + "&until=" + hour(-1): "ends before it starts",
		"since=" + hour(0) + "&until=" + hour(0):  "ends before it starts",
	} {
		a := s.do("GET", "/api/v1/audit?"+q, key, nil)
		a.want(t, http.StatusBadRequest, agentkeys.EINVALID)
		if !strings.Contains(string(a.body), msg) {
			t.Errorf("%s: %s, want %q", q, a.body, msg)
		}
	}
}
