package server_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

var whsecRE = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)

// listWebhooks is the workspace's endpoints as the API shows them.
func (s *testServer) listWebhooks(key string) []store.Webhook {
	s.t.Helper()
	var out struct{ Webhooks []store.Webhook }
	a := s.do("GET", "/api/v1/webhooks", key, nil)
	a.want(s.t, http.StatusOK, "")
	a.decode(s.t, &out)
	return out.Webhooks
}

// TestDashboardWebhooks_Endpoint: Settings → Webhooks end to end on both
// databases, with a real receiver on loopback: bad input refused with the
// form kept and nothing written; an endpoint added (its secret shown once,
// with a copy button); a test event and a redelivery received and
// verified; the secret rotated (shown once, deliveries signed with the new
// one); edited, disabled and deleted. Each secret is on its one page
// only; no credential value is on any page or in the log.
func TestDashboardWebhooks_Endpoint(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			rcv := startReceiver(t)
			s := webhookServer(t, db, serverOpts{})
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			const canary = "sk-dash-webhooks-canary-5d1e"
			s.createCredential(key, "Stripe", canary, "api.stripe.com")
			hookURL := rcv.url + "/hooks/dash"

			st, page, _ := b.get("/settings/webhooks")
			if st != http.StatusOK || !strings.Contains(page, "<h1>Webhooks</h1>") || !strings.Contains(page, "No endpoints yet") ||
				!strings.Contains(page, `href="/settings/webhooks"`) {
				t.Fatalf("empty list = %d %s", st, page)
			}
			for _, e := range store.WebhookEvents {
				if !strings.Contains(page, `name="events" value="`+e+`"`) {
					t.Fatalf("no checkbox for %s:\n%s", e, page)
				}
			}

			// Bad input: the API's status and message, the form as typed, nothing written.
			st, page = b.post("/settings/webhooks", url.Values{"url": {"ftp://hooks.example.com/x"}, "events": {store.EventCredentialError}})
			if st != http.StatusBadRequest || !strings.Contains(page, "webhook url must be https (got ftp://)") ||
				!strings.Contains(page, `value="ftp://hooks.example.com/x"`) || !strings.Contains(page, `value="credential.error" checked`) ||
				strings.Contains(page, `value="credential.expired" checked`) {
				t.Fatalf("bad URL = %d %s", st, page)
			}
			st, page = b.post("/settings/webhooks", url.Values{"url": {hookURL}})
			if st != http.StatusBadRequest || !strings.Contains(page, "missing events: subscribe to one or more of") || !strings.Contains(page, `value="`+hookURL+`"`) {
				t.Fatalf("no events = %d %s", st, page)
			}
			if hs := s.listWebhooks(key); len(hs) != 0 {
				t.Fatalf("refused forms wrote %+v", hs)
			}

			// Add: the secret once, with a copy button.
			st, page = b.post("/settings/webhooks", url.Values{"url": {hookURL}, "description": {"ops pager"},
				"events": {store.EventCredentialExpired, store.EventCredentialError}})
			// html/template writes a "+" of the secret as &#43;: read the text as the browser does.
			secret := whsecRE.FindString(html.UnescapeString(page))
			if st != http.StatusCreated || secret == "" || !strings.Contains(html.UnescapeString(page), `id="webhook-secret">`+secret+`</pre>`) ||
				!strings.Contains(page, `<button type="button" class="copy" data-copy="#webhook-secret">Copy</button>`) {
				t.Fatalf("add = %d %s", st, page)
			}
			hs := s.listWebhooks(key)
			if len(hs) != 1 || hs[0].URL != hookURL || hs[0].Description != "ops pager" || !hs[0].Enabled ||
				!slices.Equal(hs[0].Events, []string{store.EventCredentialExpired, store.EventCredentialError}) {
				t.Fatalf("added %+v", hs)
			}
			id := hs[0].ID
			rcv.control(map[string]any{"secret": secret})
			_, page, _ = b.get("/settings/webhooks")
			if !strings.Contains(page, `href="/settings/webhooks/`+id+`"`) || !strings.Contains(page, "credential.expired, credential.error") ||
				!strings.Contains(page, "None yet") {
				t.Fatalf("list after add:\n%s", page)
			}

			// Send test event: received, both signatures verify with the secret shown.
			b.get("/settings/webhooks/" + id)
			st, page = b.post("/settings/webhooks/"+id+"/test", url.Values{})
			if st != http.StatusOK || !strings.Contains(page, "Test event queued") {
				t.Fatalf("send test = %d %s", st, page)
			}
			got := rcv.waitLog(1)
			if len(got) != 1 || !got[0].SeedVerified || !got[0].StandardVerified || got[0].Path != "/hooks/dash" {
				t.Fatalf("received %+v", got)
			}
			ds := s.waitSettled(key, id, 1)
			_, page, _ = b.get("/settings/webhooks/" + id)
			if !strings.Contains(page, ds[0].EventID) || !strings.Contains(page, ">succeeded<") || !strings.Contains(page, "HTTP 200") ||
				!strings.Contains(page, "<code>webhook.test</code>") {
				t.Fatalf("deliveries after the test:\n%s", page)
			}
			if _, page, _ = b.get("/settings/webhooks"); !strings.Contains(page, ">succeeded</span> · HTTP 200") {
				t.Fatalf("list without the last delivery's status:\n%s", page)
			}

			// Redeliver: the same event again, as a new delivery.
			b.get("/settings/webhooks/" + id)
			st, page = b.post("/settings/webhooks/"+id+"/deliveries/"+ds[0].ID+"/redeliver", url.Values{})
			if st != http.StatusOK || !strings.Contains(page, "Redelivery queued") {
				t.Fatalf("redeliver = %d %s", st, page)
			}
			got = rcv.waitLog(2)
			if len(got) != 2 || got[1].eventID(t) != got[0].eventID(t) || !got[1].SeedVerified {
				t.Fatalf("redelivery received %+v", got)
			}
			if ds = s.waitSettled(key, id, 2); len(ds) != 2 || ds[0].EventID != ds[1].EventID {
				t.Fatalf("deliveries after redelivery %+v", ds)
			}

			// Rotate: a new secret, once; the next delivery verifies with it only.
			st, page = b.post("/settings/webhooks/"+id+"/rotate-secret", url.Values{})
			rotated := whsecRE.FindString(html.UnescapeString(page))
			if st != http.StatusOK || rotated == "" || rotated == secret || !strings.Contains(page, "New signing secret") {
				t.Fatalf("rotate = %d %s", st, page)
			}
			rcv.control(map[string]any{"secret": rotated})
			b.get("/settings/webhooks/" + id)
			b.post("/settings/webhooks/"+id+"/test", url.Values{})
			if got = rcv.waitLog(3); len(got) != 3 || !got[2].SeedVerified || !got[2].StandardVerified {
				t.Fatalf("after rotation received %+v", got)
			}

			// Edit: bad input refused as typed, nothing changed; then a good edit.
			before := s.listWebhooks(key)[0]
			for _, bad := range []struct {
				form url.Values
				msg  string
			}{
				{url.Values{"url": {"https://10.1.2.3/hook"}, "events": {store.EventUsageLimitReached}, "enabled": {"on"}}, "webhook url 10.1.2.3 is refused"},
				{url.Values{"url": {hookURL + "/v2"}, "enabled": {"on"}}, "missing events"},
				{url.Values{"url": {hookURL}, "events": {"credential.deleted"}, "enabled": {"on"}}, `unknown event &#34;credential.deleted&#34;`},
			} {
				st, page = b.post("/settings/webhooks/"+id, bad.form)
				if st != http.StatusBadRequest || !strings.Contains(page, bad.msg) || !strings.Contains(page, `value="`+bad.form.Get("url")+`"`) {
					t.Fatalf("edit %v = %d %s", bad.form, st, page)
				}
			}
			if after := s.listWebhooks(key)[0]; !after.UpdatedAt.Equal(before.UpdatedAt) || after.URL != hookURL {
				t.Fatalf("refused edits changed the endpoint: %+v", after)
			}
			st, page = b.post("/settings/webhooks/"+id, url.Values{"url": {hookURL + "/v2"}, "description": {""}, "events": {store.EventCredentialExpiringSoon}})
			if st != http.StatusOK || !strings.Contains(page, "Endpoint saved.") || !strings.Contains(page, ">Disabled</span> — disabled by a user") {
				t.Fatalf("edit = %d %s", st, page)
			}
			h := s.listWebhooks(key)[0]
			if h.URL != hookURL+"/v2" || h.Enabled || h.Description != "" || !slices.Equal(h.Events, []string{store.EventCredentialExpiringSoon}) {
				t.Fatalf("edited %+v", h)
			}
			if _, page, _ = b.get("/settings/webhooks"); !strings.Contains(page, `<span class="badge bad">No</span> <small>(disabled by a user)</small>`) {
				t.Fatalf("list of a disabled endpoint:\n%s", page)
			}

			// Delete after a confirmation page.
			st, page, _ = b.get("/settings/webhooks/" + id + "/delete")
			if st != http.StatusOK || !strings.Contains(page, "Delete endpoint?") || !strings.Contains(page, `action="/settings/webhooks/`+id+`/delete"`) {
				t.Fatalf("confirm = %d %s", st, page)
			}
			st, page = b.post("/settings/webhooks/"+id+"/delete", url.Values{})
			if st != http.StatusOK || !strings.Contains(page, "Endpoint deleted.") || !strings.Contains(page, "No endpoints yet") {
				t.Fatalf("delete = %d %s", st, page)
			}
			if hs := s.listWebhooks(key); len(hs) != 0 {
				t.Fatalf("after delete %+v", hs)
			}
			if st, _, _ = b.get("/settings/webhooks/" + id); st != http.StatusNotFound {
				t.Fatalf("a deleted endpoint's page = %d, want 404", st)
			}

			// Canary sweep: each secret on its one page; no credential value anywhere.
			for name, v := range map[string]string{"the first secret": secret, "the rotated secret": rotated} {
				n := 0
				for _, p := range b.pages {
					if strings.Contains(html.UnescapeString(p), v) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("%s is on %d pages, want 1 (its one-time page)", name, n)
				}
			}
			for i, p := range b.pages {
				if strings.Contains(p, canary) {
					t.Fatalf("page %d holds the credential's value:\n%s", i, p)
				}
			}
			for _, v := range []string{canary, secret, rotated} {
				if strings.Contains(s.logs.String(), v) {
					t.Fatalf("the log holds %q", v)
				}
			}
		})
	}
}

// TestDashboardWebhooks_DeliveriesPaged: an endpoint's page shows its
// newest 20 deliveries and links to the older ones (the API's before=),
// which hold the rest in order; a before= that is not one of the
// endpoint's deliveries is 400. On both databases.
func TestDashboardWebhooks_DeliveriesPaged(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true}) // no dispatcher: deliveries stay pending
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			h := s.createWebhook(key, "http://127.0.0.1:9/hook", store.EventCredentialExpired)
			for range 25 {
				s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
			}
			all := s.deliveries(key, h.ID)
			if len(all) != 25 {
				t.Fatalf("%d deliveries, want 25", len(all))
			}
			rowRE := regexp.MustCompile(`/deliveries/(whd_[A-Za-z0-9_]+)/redeliver`)
			ids := func(page string) []string {
				var out []string
				for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
					out = append(out, m[1])
				}
				return out
			}
			want := func(ds []store.Delivery) []string {
				var out []string
				for _, d := range ds {
					out = append(out, d.ID)
				}
				return out
			}
			_, page, _ := b.get("/settings/webhooks/" + h.ID)
			older := `href="/settings/webhooks/` + h.ID + `?before=` + all[19].ID + `#deliveries"`
			if got := ids(page); !slices.Equal(got, want(all[:20])) || !strings.Contains(page, older) || strings.Contains(page, ">Newest<") {
				t.Fatalf("page 1 rows %v, want %v:\n%s", got, want(all[:20]), page)
			}
			st, page, _ := b.get("/settings/webhooks/" + h.ID + "?before=" + all[19].ID)
			if got := ids(page); st != http.StatusOK || !slices.Equal(got, want(all[20:])) || strings.Contains(page, "Older deliveries") || !strings.Contains(page, ">Newest<") {
				t.Fatalf("page 2 = %d rows %v, want %v:\n%s", st, got, want(all[20:]), page)
			}
			if st, _, _ = b.get("/settings/webhooks/" + h.ID + "?before=whd_nope"); st != http.StatusBadRequest {
				t.Fatalf("a bad before= = %d, want 400", st)
			}
			s.do("GET", "/api/v1/webhooks/"+h.ID+"/deliveries?before=whd_nope", key, nil).want(t, http.StatusBadRequest, agentkeys.EINVALID)
			a := s.do("GET", "/api/v1/webhooks/"+h.ID+"/deliveries?limit=3&before="+all[3].ID, key, nil)
			var out struct{ Deliveries []store.Delivery }
			a.decode(t, &out)
			if !slices.Equal(want(out.Deliveries), want(all[4:7])) {
				t.Fatalf("API page after %s = %v, want %v", all[3].ID, want(out.Deliveries), want(all[4:7]))
			}
		})
	}
}

// TestDashboardWebhooks_Refusals: forms without the session's CSRF token
// are 403 and change nothing; a member (no webhooks:configure) gets the
// API's 403 for the page and for every action posted directly, and
// nothing changes; an admin may configure webhooks.
func TestDashboardWebhooks_Refusals(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	owner := newBrowser(s)
	ownerKey := owner.signUp("ada@example.com", "Acme")
	h := s.createWebhook(ownerKey, "http://127.0.0.1:9/hook", store.EventCredentialExpired)
	other := newBrowser(s)
	other.signUp("bob@example.com", "Bobs")
	owner.get("/settings/webhooks/" + h.ID)
	for name, tok := range map[string]string{"missing": "", "another session's": other.csrf} {
		for _, p := range []string{"/settings/webhooks", "/settings/webhooks/" + h.ID, "/settings/webhooks/" + h.ID + "/rotate-secret",
			"/settings/webhooks/" + h.ID + "/test", "/settings/webhooks/" + h.ID + "/delete"} {
			st, page := owner.post(p, url.Values{"url": {"http://127.0.0.1:9/evil"}, "events": {store.EventCredentialError}, "csrf": {tok}})
			if st != http.StatusForbidden || !strings.Contains(page, "CSRF") || whsecRE.MatchString(page) {
				t.Fatalf("%s token, POST %s = %d %s", name, p, st, page)
			}
		}
	}
	unchanged := func(who string) {
		t.Helper()
		hs := s.listWebhooks(ownerKey)
		if len(hs) != 1 || hs[0].URL != h.URL || !hs[0].UpdatedAt.Equal(h.UpdatedAt) || len(s.deliveries(ownerKey, h.ID)) != 0 {
			t.Fatalf("refused forms (%s) changed the endpoints: %+v", who, hs)
		}
	}
	unchanged("CSRF")

	s.invite(ownerKey, "max@example.com", "member")
	m := newBrowser(s)
	m.logIn("max@example.com")
	for _, p := range []string{"/settings/webhooks", "/settings/webhooks/" + h.ID, "/settings/webhooks/" + h.ID + "/delete"} {
		if st, page, _ := m.get(p); st != http.StatusForbidden || !strings.Contains(page, "webhooks:configure") {
			t.Fatalf("member GET %s = %d %s", p, st, page)
		}
	}
	for _, p := range []string{"/settings/webhooks", "/settings/webhooks/" + h.ID, "/settings/webhooks/" + h.ID + "/rotate-secret",
		"/settings/webhooks/" + h.ID + "/test", "/settings/webhooks/" + h.ID + "/delete"} {
		st, page := m.post(p, url.Values{"url": {"http://127.0.0.1:9/evil"}, "events": {store.EventCredentialError}, "enabled": {"on"}})
		if st != http.StatusForbidden || !strings.Contains(page, "webhooks:configure") || whsecRE.MatchString(page) {
			t.Fatalf("member POST %s = %d %s", p, st, page)
		}
	}
	unchanged("member")

	s.invite(ownerKey, "ida@example.com", "admin")
	a := newBrowser(s)
	a.logIn("ida@example.com")
	if st, page, _ := a.get("/settings/webhooks"); st != http.StatusOK || !strings.Contains(page, h.URL) {
		t.Fatalf("admin GET = %d %s", st, page)
	}
}
