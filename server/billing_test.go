package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

const webhookSecret = "whsec_test_agentkeys"

var testPrices = map[string]string{"starter": "price_starter", "pro": "price_pro", "scale": "price_scale"}

// stripeRecorder keeps the form of every request the server sent Stripe.
type stripeRecorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path string
	form         url.Values
}

func (s *stripeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, form})
	s.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (s *stripeRecorder) last(path string) *recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.reqs) - 1; i >= 0; i-- {
		if s.reqs[i].path == path {
			return &s.reqs[i]
		}
	}
	return nil
}

func billingServer(t *testing.T, db dbKind) (*testServer, *stripeRecorder) {
	t.Helper()
	rec := &stripeRecorder{}
	s := newTestServer(t, serverOpts{databaseURL: db.url(t), configure: func(c *store.Config) { c.DefaultPlan = agentkeys.PlanFree },
		billing: &server.BillingConfig{StripeKey: "sk_test_123", WebhookSecret: webhookSecret, Prices: testPrices,
			APIURL: testkit.StripeMock(t), HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}}})
	return s, rec
}

// TestBilling_CheckoutAndPortal: against stripe-mock, checkout creates the
// workspace's customer once and a subscription-mode Checkout Session for
// the plan's Price; the portal opens for that customer. Bad input is 400
// and calls nothing; without --billing the endpoints are 404.
func TestBilling_CheckoutAndPortal(t *testing.T) {
	s, rec := billingServer(t, dbKinds()[0])
	_, key := s.signup("Acme")
	s.do("POST", "/api/v1/billing/portal", key, nil).want(t, 400, agentkeys.EINVALID)
	a := s.do("POST", "/api/v1/billing/checkout", key, map[string]any{"plan": "pro"})
	a.want(t, 200, "")
	var out struct{ URL string }
	a.decode(t, &out)
	if out.URL == "" {
		t.Fatalf("checkout answered %s", a.body)
	}
	cust := rec.last("/v1/customers")
	sess := rec.last("/v1/checkout/sessions")
	if cust == nil || sess == nil {
		t.Fatalf("stripe calls: %+v", rec.reqs)
	}
	if sess.form.Get("mode") != "subscription" || sess.form.Get("line_items[0][price]") != "price_pro" ||
		sess.form.Get("line_items[0][quantity]") != "1" || sess.form.Get("customer") == "" || sess.form.Get("metadata[plan]") != "pro" {
		t.Fatalf("checkout session request %v", sess.form)
	}
	customer := sess.form.Get("customer")
	s.do("POST", "/api/v1/billing/checkout", key, map[string]any{"plan": "scale"}).want(t, 200, "")
	if n := len(rec.reqsTo("/v1/customers")); n != 1 {
		t.Fatalf("%d customers created, want 1", n)
	}
	if f := rec.last("/v1/checkout/sessions").form; f.Get("customer") != customer || f.Get("line_items[0][price]") != "price_scale" {
		t.Fatalf("second checkout %v", f)
	}
	a = s.do("POST", "/api/v1/billing/portal", key, nil)
	a.want(t, 200, "")
	if p := rec.last("/v1/billing_portal/sessions"); p == nil || p.form.Get("customer") != customer {
		t.Fatalf("portal request %+v", p)
	}
	before := len(rec.reqs)
	for _, plan := range []string{"free", "enterprise", "gold", ""} {
		s.do("POST", "/api/v1/billing/checkout", key, map[string]any{"plan": plan}).want(t, 400, agentkeys.EINVALID)
	}
	if len(rec.reqs) != before {
		t.Fatal("refused checkouts called Stripe")
	}
	a = s.do("GET", "/api/v1/billing", key, nil)
	a.want(t, 200, "")
	sendEvent(t, s, "whsec_wrong", time.Now(), event("evt_x", "invoice.payment_failed", map[string]any{"customer": customer})).want(t, 400, agentkeys.EINVALID)
	// Canary: the Stripe key and the signing secret are in no log line.
	if logs := s.logs.String(); bytes.Contains([]byte(logs), []byte("sk_test_123")) || bytes.Contains([]byte(logs), []byte(webhookSecret)) {
		t.Fatal("a Stripe secret reached the log")
	}

	off := newTestServer(t, serverOpts{})
	_, k2 := off.signup("Self")
	off.do("POST", "/api/v1/billing/checkout", k2, map[string]any{"plan": "pro"}).want(t, 404, agentkeys.ENOTFOUND)
	off.do("GET", "/api/v1/billing", k2, nil).want(t, 404, agentkeys.ENOTFOUND)
}

func (s *stripeRecorder) reqsTo(path string) []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []recorded
	for _, r := range s.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// sendEvent posts a Stripe event signed the way Stripe signs (stripe-go's
// test helper) at time at, with secret.
func sendEvent(t *testing.T, s *testServer, secret string, at time.Time, ev map[string]any) *answer {
	t.Helper()
	body, _ := json.Marshal(ev)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.url+"/api/v1/billing/webhook", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", sp.Header)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func event(id, typ string, obj map[string]any) map[string]any {
	return map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2020-08-27", "created": time.Now().Unix(),
		"data": map[string]any{"object": obj}}
}

// TestBilling_Webhook: signed events are applied once (a redelivery
// changes nothing), bad and stale signatures are 400 with nothing changed,
// unknown types 200 and ignored; checkout → pro, subscription updated →
// scale with Stripe's period, payment failed → past_due (plan kept),
// subscription deleted → Free. On SQLite and PostgreSQL.
func TestBilling_Webhook(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s, _ := billingServer(t, db)
			wsID, key := s.signup("Acme")
			plan := func() (string, *agentkeys.Limits, map[string]any) {
				st := status(t, s, key)
				a := s.do("GET", "/api/v1/billing", key, nil)
				var b struct{ Billing map[string]any }
				a.decode(t, &b)
				return st.Plan, &st.Limits, b.Billing
			}
			now := time.Now()
			completed := event("evt_checkout", "checkout.session.completed", map[string]any{"id": "cs_1", "object": "checkout.session",
				"client_reference_id": wsID, "customer": "cus_acme", "subscription": "sub_acme", "metadata": map[string]any{"plan": "pro", "workspace": wsID}})

			sendEvent(t, s, "whsec_wrong", now, completed).want(t, 400, agentkeys.EINVALID)
			sendEvent(t, s, webhookSecret, now.Add(-10*time.Minute), completed).want(t, 400, agentkeys.EINVALID)
			if p, _, _ := plan(); p != "free" {
				t.Fatalf("a refused event changed the plan to %s", p)
			}
			a := sendEvent(t, s, webhookSecret, now, completed)
			a.want(t, 200, "")
			if p, l, b := plan(); p != "pro" || l.Credentials != 100 || b["status"] != "active" {
				t.Fatalf("after checkout: plan %s limits %+v billing %v", p, l, b)
			}
			// The operator moves the workspace; a redelivered event does not undo it.
			if err := s.store.SetPlan(t.Context(), wsID, store.PlanChange{Plan: "starter"}); err != nil {
				t.Fatal(err)
			}
			a = sendEvent(t, s, webhookSecret, now, completed)
			a.want(t, 200, "")
			if p, _, _ := plan(); p != "starter" || !bytes.Contains(a.body, []byte(`"applied":false`)) {
				t.Fatalf("redelivery applied again: plan %s, %s", p, a.body)
			}
			sendEvent(t, s, webhookSecret, now, event("evt_other", "charge.succeeded", map[string]any{"id": "ch_1", "object": "charge"})).want(t, 200, "")

			start, end := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
			sendEvent(t, s, webhookSecret, now, event("evt_upd", "customer.subscription.updated", map[string]any{"id": "sub_acme", "object": "subscription",
				"customer": "cus_acme", "status": "active", "items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_1", "object": "subscription_item",
					"current_period_start": start.Unix(), "current_period_end": end.Unix(), "price": map[string]any{"id": "price_scale", "object": "price"}}}}})).want(t, 200, "")
			if p, _, b := plan(); p != "scale" || b["periodEnd"] != "2026-06-10T00:00:00Z" {
				t.Fatalf("after the update: plan %s billing %v", p, b)
			}
			sendEvent(t, s, webhookSecret, now, event("evt_fail", "invoice.payment_failed", map[string]any{"id": "in_1", "object": "invoice", "customer": "cus_acme"})).want(t, 200, "")
			if p, _, b := plan(); p != "scale" || b["status"] != "past_due" {
				t.Fatalf("after a failed payment: plan %s billing %v", p, b)
			}
			if st := status(t, s, key); st.BillingStatus != "past_due" {
				t.Fatalf("status does not warn of the failed payment: %+v", st)
			}
			sendEvent(t, s, webhookSecret, now, event("evt_del", "customer.subscription.deleted", map[string]any{"id": "sub_acme", "object": "subscription",
				"customer": "cus_acme", "status": "canceled"})).want(t, 200, "")
			if p, _, b := plan(); p != "free" || b["status"] != "canceled" || b["periodEnd"] != nil {
				t.Fatalf("after the deletion: plan %s billing %v", p, b)
			}
		})
	}
}
