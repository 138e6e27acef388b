package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Settings → Billing: the plan, a usage bar per limit, Upgrade (a Stripe
// Checkout Session) and Manage billing (the Stripe Customer Portal). Every
// action is the billing API's (PermManageBilling: the owner); on a server
// without billing the page shows the plan and its limits and how the
// operator sets them.

// stripeOrigins are where Checkout and the Customer Portal live. The
// billing page's forms answer with a 303 to them, and browsers hold a
// redirect after a form submission to the page's form-action.
const stripeOrigins = "https://checkout.stripe.com https://billing.stripe.com"

// usageBar is one limit and how much of it the workspace uses.
type usageBar struct {
	ID, Label   string
	Used, Limit int64 // Limit 0: unlimited
}

// Low and High are the meter's thresholds: 75 % and 90 % of the limit.
func (u usageBar) Low() int64  { return u.Limit * 3 / 4 }
func (u usageBar) High() int64 { return u.Limit * 9 / 10 }

// Text is the bar's words, such as "1,200 of 10,000 (12%)" or
// "3 · no limit".
func (u usageBar) Text() string {
	if u.Limit == 0 {
		return count(u.Used) + " · no limit"
	}
	return fmt.Sprintf("%s of %s (%d%%)", count(u.Used), count(u.Limit), u.Percent())
}

// Percent is how much of the limit is used, rounded down.
func (u usageBar) Percent() int64 {
	if u.Limit == 0 {
		return 0
	}
	return u.Used * 100 / u.Limit
}

// planOffer is a plan the workspace may move to through Checkout.
type planOffer struct {
	agentkeys.Plan
}

// Summary is the plan's price and limits, such as "$19/month · 25
// credentials, 5 agents, 10,000 requests a period".
func (p planOffer) Summary() string {
	return fmt.Sprintf("%s/month · %s credentials, %s agents, %s requests a period", dollars(int64(p.PriceCents)),
		count(int64(p.Limits.Credentials)), count(int64(p.Limits.Agents)), count(p.Limits.RequestsPerMonth))
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

type billingPage struct {
	Status agentkeys.WorkspaceStatus
	// Billing is the subscription; nil when the server runs without
	// billing.
	Billing *agentkeys.BillingStatus
	Usage   []usageBar
	// Upgrades are the priced plans above the current one, offered while
	// the workspace has no live subscription (a subscribed workspace
	// changes plan in the Customer Portal, not with a second one).
	Upgrades []planOffer
	// Subscribed reports a subscription the Customer Portal manages.
	Subscribed bool
}

// NextInvoice is the next invoice's amount, such as "79.00 USD".
func (p billingPage) NextInvoice() string {
	if p.Billing == nil || p.Billing.NextInvoice == nil {
		return ""
	}
	n := p.Billing.NextInvoice
	return fmt.Sprintf("%d.%02d %s", n.AmountDue/100, n.AmountDue%100, strings.ToUpper(n.Currency))
}

func dollars(cents int64) string {
	if cents%100 == 0 {
		return fmt.Sprintf("$%d", cents/100)
	}
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}

// billingNotices are the messages a return from Stripe asks for (?done=).
var billingNotices = map[string]string{
	"stripe":    "Back from Stripe. A change appears here once Stripe confirms it to this server: reload in a moment.",
	"cancelled": "Checkout cancelled: nothing was charged.",
}

// allowStripeForms lets the billing page's forms be redirected to Stripe.
func allowStripeForms(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"), "form-action 'self'", "form-action 'self' "+stripeOrigins, 1))
}

func (d *Dashboard) billing(w http.ResponseWriter, r *http.Request, s *session) {
	d.billingWith(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) billingWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	var p billingPage
	var b struct{ Billing *agentkeys.BillingStatus }
	st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/billing", nil, &b)
	switch {
	case err == nil:
		p.Billing = b.Billing
	case st == http.StatusNotFound && agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND:
		// The server runs without billing (the route's permission passed).
	default:
		d.failErr(w, r, s, st, err)
		return
	}
	var ws struct{ Workspace agentkeys.WorkspaceStatus }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/workspace/status", nil, &ws); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p.Status = ws.Workspace
	u, l := p.Status.Usage, p.Status.Limits
	p.Usage = []usageBar{
		{ID: "credentials", Label: "Credentials", Used: int64(u.Credentials), Limit: int64(l.Credentials)},
		{ID: "agents", Label: "Agents", Used: int64(u.Agents), Limit: int64(l.Agents)},
		{ID: "requests", Label: "Proxied requests this period", Used: u.RequestsThisMonth, Limit: l.RequestsPerMonth},
	}
	if p.Billing != nil {
		p.Subscribed = p.Billing.Status != "" && p.Billing.Status != "canceled"
		cur, _ := agentkeys.LookupPlan(p.Status.Plan)
		for _, pl := range agentkeys.Plans() {
			priced := pl.Name == agentkeys.PlanStarter || pl.Name == agentkeys.PlanPro || pl.Name == agentkeys.PlanScale
			if !p.Subscribed && priced && cur.Name != agentkeys.PlanEnterprise && pl.PriceCents > cur.PriceCents {
				p.Upgrades = append(p.Upgrades, planOffer{pl})
			}
		}
	}
	allowStripeForms(w)
	d.render(w, r, status, "billing", s, view{Title: "Billing", Current: "settings/billing", Error: msg,
		Notice: billingNotices[r.URL.Query().Get("done")], Data: p})
}

// toStripe answers a billing action: a 303 to the URL the API gave, or
// the billing page with the API's refusal. A refusal of the role itself is
// the error page with the API's status (the billing page would be refused
// too).
func (d *Dashboard) toStripe(w http.ResponseWriter, r *http.Request, s *session, path string, in any) {
	var out struct{ URL string }
	st, err := d.cfg.API(r, s.actor, "POST", path, in, &out)
	if err != nil {
		if st < 400 {
			st = agentkeys.StatusForCode(agentkeys.ErrorCode(err))
		}
		if st == http.StatusForbidden || st == http.StatusUnauthorized {
			d.failErr(w, r, s, st, err)
			return
		}
		d.billingWith(w, r, s, st, agentkeys.ErrorMessage(err))
		return
	}
	if u, perr := url.Parse(out.URL); perr != nil || u.Scheme != "https" || u.Host == "" {
		d.cfg.Logger.ErrorContext(r.Context(), "dashboard billing: Stripe gave no https URL", "path", path)
		d.billingWith(w, r, s, http.StatusBadGateway, "Stripe did not answer with a page to go to: try again later.")
		return
	}
	http.Redirect(w, r, out.URL, http.StatusSeeOther)
}

func (d *Dashboard) billingCheckout(w http.ResponseWriter, r *http.Request, s *session) {
	d.toStripe(w, r, s, "/api/v1/billing/checkout", map[string]string{"plan": r.PostFormValue("plan")})
}

func (d *Dashboard) billingPortal(w http.ResponseWriter, r *http.Request, s *session) {
	d.toStripe(w, r, s, "/api/v1/billing/portal", nil)
}

// billingReturn is where Stripe sends the browser back (the API's success,
// cancel and portal return URLs): the billing page with a notice.
func (d *Dashboard) billingReturn(w http.ResponseWriter, r *http.Request, s *session) {
	done := "stripe"
	if strings.HasSuffix(r.URL.Path, "/cancelled") {
		done = "cancelled"
	}
	http.Redirect(w, r, "/settings/billing?done="+done, http.StatusSeeOther)
}
