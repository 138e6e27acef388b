package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// postNoFollow submits a form like post but keeps a redirect's answer
// (the Location) instead of following it.
func (b *browser) postNoFollow(path string, form url.Values) (int, string) {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// checkoutURL is the URL stripe-mock gives every Checkout Session, as the
// API passes it on.
func checkoutURL(t *testing.T, s *testServer, key string) string {
	t.Helper()
	a := s.do("POST", "/api/v1/billing/checkout", key, map[string]any{"plan": "starter"})
	a.want(t, http.StatusOK, "")
	var out struct{ URL string }
	a.decode(t, &out)
	return out.URL
}

// TestDashboardBilling_Stripe: Settings → Billing against stripe-mock on
// both databases: the Free plan with a meter per limit and Upgrade to each
// priced plan; Upgrade answers 303 to the Checkout Session's URL (for the
// plan's Price); bad input and Manage billing before a subscription are
// refused on the page with the API's status and message, calling Stripe
// for nothing; once Stripe reports the subscription the page shows it and
// Manage billing answers 303 to the portal. Stripe's return URLs land on
// the page. No page holds a Stripe secret.
func TestDashboardBilling_Stripe(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s, rec := billingServer(t, db)
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			s.createCredential(key, "Stripe", "sk-billing-page-canary", "api.stripe.com")

			st, page, h := b.get("/settings/billing")
			if st != http.StatusOK || !strings.Contains(page, "<h1>Billing</h1>") || !strings.Contains(page, "Plan: free") ||
				!strings.Contains(page, `<label for="usage-credentials">Credentials</label>`) ||
				!strings.Contains(page, `<meter id="usage-credentials" min="0" max="3" low="2" high="2" optimum="0" value="1">`) ||
				!strings.Contains(page, "1 of 3 (33%)") || !strings.Contains(page, "$19/month · 25 credentials, 5 agents, 10,000 requests a period") || !strings.Contains(page, `<meter id="usage-requests" min="0" max="100"`) ||
				strings.Contains(page, "Manage billing") || strings.Contains(page, "set-plan") {
				t.Fatalf("billing page = %d %s", st, page)
			}
			for _, plan := range []string{"starter", "pro", "scale"} {
				if !strings.Contains(page, `name="plan" value="`+plan+`"`) || !strings.Contains(page, `aria-label="Upgrade to `+plan+`"`) {
					t.Fatalf("no Upgrade to %s:\n%s", plan, page)
				}
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://checkout.stripe.com https://billing.stripe.com") {
				t.Fatalf("the billing page's forms may not go to Stripe: CSP %q", csp)
			}

			// Refused on the page: a plan Checkout does not sell; the portal before any customer.
			before := len(rec.reqs)
			st, page = b.post("/settings/billing/checkout", url.Values{"plan": {"gold"}})
			if st != http.StatusBadRequest || !strings.Contains(page, `plan must be starter, pro or scale (got &#34;gold&#34;)`) || !strings.Contains(page, "Plan: free") {
				t.Fatalf("bad plan = %d %s", st, page)
			}
			st, page = b.post("/settings/billing/portal", url.Values{})
			if st != http.StatusBadRequest || !strings.Contains(page, "this workspace has no subscription yet") {
				t.Fatalf("portal before a subscription = %d %s", st, page)
			}
			if len(rec.reqs) != before {
				t.Fatalf("refused billing actions called Stripe: %+v", rec.reqs[before:])
			}

			// Upgrade: 303 to the Checkout Session, for the plan's Price.
			st, loc := b.postNoFollow("/settings/billing/checkout", url.Values{"plan": {"pro"}})
			sess := rec.last("/v1/checkout/sessions")
			if st != http.StatusSeeOther || !strings.HasPrefix(loc, "https://") || sess == nil || sess.form.Get("line_items[0][price]") != "price_pro" ||
				sess.form.Get("success_url") != s.url+"/billing/done" || sess.form.Get("cancel_url") != s.url+"/billing/cancelled" {
				t.Fatalf("upgrade = %d %q, session %+v", st, loc, sess)
			}
			if want := checkoutURL(t, s, key); loc != want {
				t.Fatalf("upgrade went to %q, the Checkout Session is %q", loc, want)
			}
			for path, notice := range map[string]string{"/billing/cancelled": "Checkout cancelled", "/billing/done": "Back from Stripe"} {
				if st, page, _ = b.get(path); st != http.StatusOK || !strings.Contains(page, notice) || !strings.Contains(page, "<h1>Billing</h1>") {
					t.Fatalf("%s = %d %s", path, st, page)
				}
			}

			// Stripe reports the subscription: the page shows it; plan changes go through the portal.
			customer := sess.form.Get("customer")
			wsID := s.listWorkspaceID(key)
			sendEvent(t, s, webhookSecret, time.Now(), event("evt_dash_checkout", "checkout.session.completed", map[string]any{"id": "cs_1", "object": "checkout.session",
				"client_reference_id": wsID, "customer": customer, "subscription": "sub_dash", "metadata": map[string]any{"plan": "pro", "workspace": wsID}})).want(t, 200, "")
			_, page, _ = b.get("/settings/billing")
			if !strings.Contains(page, "Plan: pro") || !strings.Contains(page, "Subscription active") || !strings.Contains(page, `action="/settings/billing/portal"`) ||
				strings.Contains(page, `action="/settings/billing/checkout"`) || !strings.Contains(page, `max="100" low="75" high="90" optimum="0" value="1"`) {
				t.Fatalf("billing page after checkout:\n%s", page)
			}
			st, loc = b.postNoFollow("/settings/billing/portal", url.Values{})
			if p := rec.last("/v1/billing_portal/sessions"); st != http.StatusSeeOther || !strings.HasPrefix(loc, "https://") || p == nil || p.form.Get("customer") != customer {
				t.Fatalf("manage billing = %d %q, portal request %+v", st, loc, p)
			}

			for i, p := range b.pages {
				for _, v := range []string{"sk_test_123", webhookSecret, "sk-billing-page-canary"} {
					if strings.Contains(p, v) {
						t.Fatalf("page %d holds %q:\n%s", i, v, p)
					}
				}
			}
		})
	}
}

// listWorkspaceID is the id of the workspace key belongs to.
func (s *testServer) listWorkspaceID(key string) string {
	s.t.Helper()
	return status(s.t, s, key).ID
}

// TestDashboardBilling_OwnerOnly: an admin and a member get the API's 403
// for the billing page and for Upgrade and Manage billing posted directly,
// and Stripe is called for nothing; so is a form without the owner's CSRF
// token.
func TestDashboardBilling_OwnerOnly(t *testing.T) {
	s, rec := billingServer(t, dbKinds()[0])
	owner := newBrowser(s)
	ownerKey := owner.signUp("ada@example.com", "Acme")
	owner.get("/settings/billing")
	for _, tok := range []string{"", "not-the-token"} {
		if st, page := owner.post("/settings/billing/checkout", url.Values{"plan": {"pro"}, "csrf": {tok}}); st != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Fatalf("checkout with token %q = %d %s", tok, st, page)
		}
	}
	s.invite(ownerKey, "ida@example.com", "admin")
	s.invite(ownerKey, "max@example.com", "member")
	for _, email := range []string{"ida@example.com", "max@example.com"} {
		b := newBrowser(s)
		b.logIn(email)
		if st, page, _ := b.get("/settings/billing"); st != http.StatusForbidden || !strings.Contains(page, "billing:manage") || strings.Contains(page, "Upgrade") {
			t.Fatalf("%s: billing page = %d %s", email, st, page)
		}
		for _, p := range []string{"/settings/billing/checkout", "/settings/billing/portal"} {
			st, page := b.postNoFollow(p, url.Values{"plan": {"pro"}})
			if st != http.StatusForbidden || page != "" {
				t.Fatalf("%s: POST %s = %d to %q", email, p, st, page)
			}
			if st, page := b.post(p, url.Values{"plan": {"pro"}}); st != http.StatusForbidden || !strings.Contains(page, "billing:manage") {
				t.Fatalf("%s: POST %s = %d %s", email, p, st, page)
			}
		}
	}
	if len(rec.reqs) != 0 {
		t.Fatalf("refused billing actions called Stripe: %+v", rec.reqs)
	}
	var bs struct{ Billing agentkeys.BillingStatus }
	s.do("GET", "/api/v1/billing", ownerKey, nil).decode(t, &bs)
	if bs.Billing.Plan != agentkeys.PlanFree || bs.Billing.Status != "" {
		t.Fatalf("refused actions changed billing: %+v", bs.Billing)
	}
}

// TestDashboardBilling_SelfHosted: on a server without Stripe the owner's
// page shows the plan and its limits (unlimited, then the operator's
// set-plan) and how the operator sets them, with no Upgrade; a checkout
// posted anyway is the API's 404, shown on the page.
func TestDashboardBilling_SelfHosted(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	b := newBrowser(s)
	key := b.signUp("ada@example.com", "Acme")
	wsID := s.listWorkspaceID(key)
	st, page, _ := b.get("/settings/billing")
	if st != http.StatusOK || !strings.Contains(page, "Plan: unlimited") || !strings.Contains(page, "0 · no limit") || strings.Contains(page, "<meter") ||
		!strings.Contains(page, "agentkeys serve set-plan --workspace "+wsID+" --plan pro") || strings.Contains(page, "Upgrade") || strings.Contains(page, "Manage billing") {
		t.Fatalf("self-hosted billing page = %d %s", st, page)
	}
	if err := s.store.SetPlan(t.Context(), wsID, store.PlanChange{Plan: agentkeys.PlanStarter}); err != nil {
		t.Fatal(err)
	}
	if _, page, _ = b.get("/settings/billing"); !strings.Contains(page, "Plan: starter") || !strings.Contains(page, `<meter id="usage-agents" min="0" max="5"`) || strings.Contains(page, "Upgrade") {
		t.Fatalf("self-hosted page on starter:\n%s", page)
	}
	st, page = b.post("/settings/billing/checkout", url.Values{"plan": {"pro"}})
	if st != http.StatusNotFound || !strings.Contains(page, "billing is off on this server") {
		t.Fatalf("checkout without Stripe = %d %s", st, page)
	}
}
