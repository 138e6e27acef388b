package agentkeys

import (
	"context"
	"strconv"
	"time"
)

// Plan names. Free to Scale are the seed's "Limits & Pricing"; Unlimited
// is every workspace of a self-hosted server (plans off) and of the local
// vault; Enterprise has the limits its server's operator sets per
// workspace (`agentkeys serve set-plan`).
const (
	PlanFree       = "free"
	PlanStarter    = "starter"
	PlanPro        = "pro"
	PlanScale      = "scale"
	PlanEnterprise = "enterprise"
	PlanUnlimited  = "unlimited"
)

// Plan is one row of the plan table: its limits (0: unlimited) and its
// monthly price in US cents (-1: by arrangement).
type Plan struct {
	Name       string `json:"name"`
	Limits     Limits `json:"limits"`
	PriceCents int    `json:"priceCents"`
}

// plans is the one table of plans, cheapest first.
var plans = []Plan{
	{Name: PlanFree, Limits: Limits{Credentials: 3, Agents: 1, RequestsPerMonth: 100}, PriceCents: 0},
	{Name: PlanStarter, Limits: Limits{Credentials: 25, Agents: 5, RequestsPerMonth: 10_000}, PriceCents: 1900},
	{Name: PlanPro, Limits: Limits{Credentials: 100, Agents: 25, RequestsPerMonth: 100_000}, PriceCents: 7900},
	{Name: PlanScale, Limits: Limits{Credentials: 500, Agents: 100, RequestsPerMonth: 500_000}, PriceCents: 19900},
	{Name: PlanEnterprise, PriceCents: -1},
	{Name: PlanUnlimited, PriceCents: 0},
}

// Plans returns the plan table, cheapest first (a copy).
func Plans() []Plan { return append([]Plan(nil), plans...) }

// LookupPlan returns the plan named name (exactly, lower case).
func LookupPlan(name string) (Plan, bool) {
	for _, p := range plans {
		if p.Name == name {
			return p, true
		}
	}
	return Plan{}, false
}

// PlanNames lists the plan names, for messages.
func PlanNames() []string {
	out := make([]string, len(plans))
	for i, p := range plans {
		out[i] = p.Name
	}
	return out
}

// Limit names, as PLAN_LIMIT_REACHED and USAGE_LIMIT_REACHED name them.
const (
	LimitCredentials = "credentials"
	LimitAgents      = "agents"
	LimitRequests    = "requestsPerMonth"
)

// Of returns the limit named name (0: unlimited).
func (l Limits) Of(name string) int64 {
	switch name {
	case LimitCredentials:
		return int64(l.Credentials)
	case LimitAgents:
		return int64(l.Agents)
	case LimitRequests:
		return l.RequestsPerMonth
	}
	return 0
}

// PlanAllowing returns the cheapest priced plan (Free to Scale) above the
// plan current (any of them when current is not priced, e.g. unlimited)
// whose limit named limit allows n; Enterprise when none does or when the
// workspace is on Enterprise already (its limits are the operator's).
func PlanAllowing(current, limit string, n int64) string {
	if current == PlanEnterprise {
		return PlanEnterprise
	}
	cur, _ := LookupPlan(current)
	above := cur.PriceCents < 0 || cur.Name == "" || cur.Name == PlanUnlimited
	for _, p := range plans {
		if p.Name == current {
			above = true
			continue
		}
		if !above || p.PriceCents < 0 || p.Name == PlanUnlimited {
			continue
		}
		if v := p.Limits.Of(limit); v == 0 || n <= v {
			return p.Name
		}
	}
	return PlanEnterprise
}

// PlanLimitError is the PLAN_LIMIT_REACHED refusal of creating one more
// credential or agent than the workspace's plan allows: it names the limit
// and the plan that would allow one more.
func PlanLimitError(limit, plan string, max int64) *Error {
	what := map[string]string{LimitCredentials: "credentials", LimitAgents: "agents"}[limit]
	return Errorf(EPLANLIMIT, "the %s plan allows %d %s and this workspace has them all (limit %s): delete one, or %s",
		plan, max, what, limit, upgradeHint(PlanAllowing(plan, limit, max+1)))
}

// upgradeHint says how to move to plan.
func upgradeHint(plan string) string {
	if plan == PlanEnterprise {
		return "ask the server's operator for the enterprise plan (higher limits)"
	}
	return "upgrade to the " + plan + " plan (`agentkeys billing upgrade " + plan + "`, or ask the server's operator)"
}

// UsageLimitError is the USAGE_LIMIT_REACHED refusal of a proxied request
// once the workspace used its requests for the period; RetryAfter is the
// time left until the period ends.
type UsageLimitError struct {
	Err        *Error // code EUSAGELIMIT
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *UsageLimitError) Error() string { return e.Err.Message }

// Unwrap lets errors.As find the *Error.
func (e *UsageLimitError) Unwrap() error { return e.Err }

// RetryAfterSeconds is the Retry-After header's value: whole seconds,
// rounded up, at least 1.
func (e *UsageLimitError) RetryAfterSeconds() string {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// NewUsageLimitError returns the refusal of a request of a workspace on
// plan that used its limit of requests in the period ending at end.
func NewUsageLimitError(plan string, limit int64, now, end time.Time) *UsageLimitError {
	return &UsageLimitError{
		Err: Errorf(EUSAGELIMIT, "this workspace used its %d requests for the period (plan %s, limit %s), which ends %s: wait, or %s",
			limit, plan, LimitRequests, end.UTC().Format(time.RFC3339), upgradeHint(PlanAllowing(plan, LimitRequests, limit+1))),
		RetryAfter: end.Sub(now),
	}
}

// RequestLimiter is implemented by a ProxyBackend that limits how many
// requests a workspace may forward (the hosted server's plans). The proxy
// calls AdmitRequest once per request, after every other check and before
// the request's audit row is begun; a refusal (a *UsageLimitError) is
// answered and audited like any other, and nothing is forwarded.
type RequestLimiter interface {
	AdmitRequest(ctx context.Context, r *Route) error
}

// BillingStatus is a hosted workspace's subscription: GET /api/v1/billing.
type BillingStatus struct {
	Plan string `json:"plan"`
	// Status is Stripe's subscription status ("active", "past_due",
	// "canceled", …); empty before the first subscription.
	Status      string       `json:"status"`
	PeriodEnd   *time.Time   `json:"periodEnd,omitempty"`
	NextInvoice *NextInvoice `json:"nextInvoice,omitempty"`
}

// NextInvoice is the amount Stripe will charge next, in the currency's
// smallest unit.
type NextInvoice struct {
	AmountDue int64  `json:"amountDue"`
	Currency  string `json:"currency"`
}

// BillingService is implemented by the Vault of a workspace on a server
// with billing (the client package): front-ends type-assert it.
type BillingService interface {
	// Billing returns the subscription. Returns ENOTFOUND when the server
	// runs without billing.
	Billing(ctx context.Context) (*BillingStatus, error)
	// Checkout returns the URL of a Stripe Checkout Session subscribing
	// the workspace to plan (starter, pro or scale).
	Checkout(ctx context.Context, plan string) (string, error)
	// BillingPortal returns the URL of the Stripe Customer Portal.
	BillingPortal(ctx context.Context) (string, error)
}
