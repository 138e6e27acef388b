package server

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// BillingConfig turns on billing with Stripe (serve --billing stripe).
type BillingConfig struct {
	// StripeKey is the secret API key (sk_…); WebhookSecret the webhook
	// endpoint's signing secret (whsec_…).
	StripeKey     string
	WebhookSecret string
	// Prices maps the paid plans (starter, pro, scale) to Stripe Price ids.
	Prices map[string]string
	// APIURL replaces Stripe's API address (tests: stripe-mock).
	APIURL string
	// HTTPClient, when set, is the Stripe client's (tests).
	HTTPClient *http.Client
}

// webhookTolerance is how old a Stripe-Signature timestamp may be.
const webhookTolerance = 5 * time.Minute

// maxWebhookBytes caps a Stripe event's body.
const maxWebhookBytes = 512 << 10

// checkBilling refuses a half configuration. Returns EINVALID saying
// which setting is missing.
func checkBilling(b *BillingConfig) error {
	switch {
	case b.StripeKey == "":
		return agentkeys.Errorf(agentkeys.EINVALID, "--billing stripe needs the Stripe secret key: set STRIPE_SECRET_KEY or --stripe-key-file")
	case b.WebhookSecret == "":
		return agentkeys.Errorf(agentkeys.EINVALID, "--billing stripe needs the webhook signing secret: set STRIPE_WEBHOOK_SECRET")
	}
	for _, p := range []string{agentkeys.PlanStarter, agentkeys.PlanPro, agentkeys.PlanScale} {
		if b.Prices[p] == "" {
			return agentkeys.Errorf(agentkeys.EINVALID, "--billing stripe needs the Stripe Price id of plan %s: set --stripe-price-%s (or STRIPE_PRICE_%s)", p, p, strings.ToUpper(p))
		}
	}
	return nil
}

func newStripe(b *BillingConfig) *stripe.Client {
	cfg := &stripe.BackendConfig{HTTPClient: b.HTTPClient, LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if b.APIURL != "" {
		cfg.URL = stripe.String(b.APIURL)
	}
	return stripe.NewClient(b.StripeKey, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
}

func (s *Server) billingOff() error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "billing is off on this server (it runs without --billing stripe): every workspace is on the plan its operator sets")
}

// stripeErr is a Stripe API failure, without Stripe's text (it may name
// ids of the account).
func (s *Server) stripeErr(r *http.Request, what string, err error) error {
	s.log.WarnContext(r.Context(), "stripe call failed", "call", what, "error", err.Error())
	return agentkeys.Errorf(agentkeys.EUPSTREAM, "Stripe did not answer the %s request: try again later", what)
}

// billingCheckout answers POST /api/v1/billing/checkout {"plan"} with the
// URL of a Stripe Checkout Session (subscription mode) for the plan's Price.
func (s *Server) billingCheckout(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	if s.stripe == nil {
		return s.billingOff()
	}
	var in struct {
		Plan string `json:"plan"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	price := s.cfg.Billing.Prices[in.Plan]
	if price == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "plan must be starter, pro or scale (got %q)", in.Plan)
	}
	b, err := ws.Billing(r.Context())
	if err != nil {
		return err
	}
	customer := b.Customer
	if customer == "" {
		c, err := s.stripe.V1Customers.Create(r.Context(), &stripe.CustomerCreateParams{
			Metadata: map[string]string{"workspace": ws.ID()},
		})
		if err != nil {
			return s.stripeErr(r, "customer", err)
		}
		if err := ws.SetCustomer(r.Context(), c.ID); err != nil {
			return err
		}
		customer = c.ID
	}
	base := s.baseURL(r)
	sess, err := s.stripe.V1CheckoutSessions.Create(r.Context(), &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(ws.ID()),
		LineItems:         []*stripe.CheckoutSessionCreateLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		Metadata:          map[string]string{"workspace": ws.ID(), "plan": in.Plan},
		SuccessURL:        stripe.String(base + "/billing/done"),
		CancelURL:         stripe.String(base + "/billing/cancelled"),
	})
	if err != nil {
		return s.stripeErr(r, "checkout", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": sess.URL})
	return nil
}

// billingPortal answers POST /api/v1/billing/portal with the URL of the
// Stripe Customer Portal for the workspace's customer.
func (s *Server) billingPortal(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	if s.stripe == nil {
		return s.billingOff()
	}
	if err := noQuery(r); err != nil {
		return err
	}
	b, err := ws.Billing(r.Context())
	if err != nil {
		return err
	}
	if b.Customer == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "this workspace has no subscription yet: start one with `agentkeys billing upgrade PLAN`")
	}
	sess, err := s.stripe.V1BillingPortalSessions.Create(r.Context(), &stripe.BillingPortalSessionCreateParams{
		Customer:  stripe.String(b.Customer),
		ReturnURL: stripe.String(s.baseURL(r) + "/billing/done"),
	})
	if err != nil {
		return s.stripeErr(r, "portal", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": sess.URL})
	return nil
}

// billingInfo answers GET /api/v1/billing: plan, status, period end, and
// the next invoice's amount when Stripe tells it.
func (s *Server) billingInfo(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	if s.stripe == nil {
		return s.billingOff()
	}
	if err := noQuery(r); err != nil {
		return err
	}
	b, err := ws.Billing(r.Context())
	if err != nil {
		return err
	}
	out := &agentkeys.BillingStatus{Plan: b.Plan, Status: b.Status, PeriodEnd: b.PeriodEnd}
	if b.Subscription != "" {
		inv, err := s.stripe.V1Invoices.CreatePreview(r.Context(), &stripe.InvoiceCreatePreviewParams{
			Customer: stripe.String(b.Customer), Subscription: stripe.String(b.Subscription)})
		if err == nil {
			out.NextInvoice = &agentkeys.NextInvoice{AmountDue: inv.AmountDue, Currency: string(inv.Currency)}
		} else {
			s.log.WarnContext(r.Context(), "stripe: no invoice preview", "error", err.Error())
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"billing": out})
	return nil
}

// billingWebhook answers POST /api/v1/billing/webhook: Stripe's events,
// verified with the signing secret (Stripe-Signature, 5 minutes'
// tolerance), applied once per event id. Unknown types are acknowledged
// and ignored.
func (s *Server) billingWebhook(w http.ResponseWriter, r *http.Request) error {
	if s.stripe == nil {
		return s.billingOff()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBytes+1))
	if err != nil || len(body) > maxWebhookBytes {
		return agentkeys.Errorf(agentkeys.EINVALID, "the event body could not be read or is too large")
	}
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.cfg.Billing.WebhookSecret,
		webhook.ConstructEventOptions{Tolerance: webhookTolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "the Stripe-Signature header does not verify (wrong signing secret, or older than 5 minutes)")
	}
	u, ok, err := billingUpdate(&ev, s.cfg.Billing.Prices)
	if err != nil {
		return err
	}
	applied := false
	if ok {
		if applied, err = s.store.ApplyBilling(r.Context(), ev.ID, u); err != nil {
			return err
		}
	}
	s.log.InfoContext(r.Context(), "stripe event", "event", ev.ID, "type", string(ev.Type), "applied", applied)
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "applied": applied})
	return nil
}

// billingUpdate turns a Stripe event into the change it makes; ok false
// for event types the server does not act on.
func billingUpdate(ev *stripe.Event, prices map[string]string) (store.BillingUpdate, bool, error) {
	var u store.BillingUpdate
	bad := func() (store.BillingUpdate, bool, error) {
		return u, false, agentkeys.Errorf(agentkeys.EINVALID, "event %s has no readable %s object", ev.ID, ev.Type)
	}
	if ev.Data == nil {
		return bad()
	}
	planOf := func(price string) string {
		for plan, id := range prices {
			if id == price {
				return plan
			}
		}
		return ""
	}
	switch ev.Type {
	case "checkout.session.completed":
		var cs stripe.CheckoutSession
		if err := cs.UnmarshalJSON(ev.Data.Raw); err != nil {
			return bad()
		}
		u.WorkspaceID = cs.ClientReferenceID
		if u.WorkspaceID == "" {
			u.WorkspaceID = cs.Metadata["workspace"]
		}
		if cs.Customer != nil {
			u.Customer = cs.Customer.ID
		}
		if cs.Subscription != nil {
			u.Subscription = &cs.Subscription.ID
		}
		u.Plan, u.Status = cs.Metadata["plan"], store.BillingActive
		if _, ok := prices[u.Plan]; !ok {
			return bad()
		}
		return u, u.WorkspaceID != "", nil
	case "customer.subscription.updated", "customer.subscription.created", "customer.subscription.deleted":
		var sub stripe.Subscription
		if err := sub.UnmarshalJSON(ev.Data.Raw); err != nil || sub.Customer == nil {
			return bad()
		}
		u.Customer = sub.Customer.ID
		if ev.Type == "customer.subscription.deleted" {
			empty := ""
			u.Plan, u.Status, u.Subscription, u.ClearPeriod = agentkeys.PlanFree, store.BillingCanceled, &empty, true
			return u, true, nil
		}
		u.Subscription, u.Status = &sub.ID, string(sub.Status)
		if sub.Items != nil && len(sub.Items.Data) > 0 {
			it := sub.Items.Data[0]
			if it.Price != nil {
				u.Plan = planOf(it.Price.ID)
			}
			if it.CurrentPeriodEnd > it.CurrentPeriodStart {
				u.PeriodStart, u.PeriodEnd = time.Unix(it.CurrentPeriodStart, 0), time.Unix(it.CurrentPeriodEnd, 0)
			}
		}
		return u, true, nil
	case "invoice.payment_failed":
		var inv stripe.Invoice
		if err := inv.UnmarshalJSON(ev.Data.Raw); err != nil || inv.Customer == nil {
			return bad()
		}
		u.Customer, u.Status = inv.Customer.ID, store.BillingPastDue
		return u, true, nil
	}
	return u, false, nil
}
