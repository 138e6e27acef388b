package agentkeys_test

import (
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestPlans_Table: the seed's "Limits & Pricing", exactly.
func TestPlans_Table(t *testing.T) {
	want := map[string]struct {
		l     agentkeys.Limits
		price int
	}{
		"free":       {agentkeys.Limits{Credentials: 3, Agents: 1, RequestsPerMonth: 100}, 0},
		"starter":    {agentkeys.Limits{Credentials: 25, Agents: 5, RequestsPerMonth: 10_000}, 1900},
		"pro":        {agentkeys.Limits{Credentials: 100, Agents: 25, RequestsPerMonth: 100_000}, 7900},
		"scale":      {agentkeys.Limits{Credentials: 500, Agents: 100, RequestsPerMonth: 500_000}, 19900},
		"enterprise": {agentkeys.Limits{}, -1},
		"unlimited":  {agentkeys.Limits{}, 0},
	}
	if len(agentkeys.Plans()) != len(want) {
		t.Fatalf("%d plans, want %d", len(agentkeys.Plans()), len(want))
	}
	for name, w := range want {
		p, ok := agentkeys.LookupPlan(name)
		if !ok || p.Limits != w.l || p.PriceCents != w.price {
			t.Errorf("plan %s = %+v (%v), want %+v at %d cents", name, p, ok, w.l, w.price)
		}
	}
}

func TestPlans_PlanAllowing(t *testing.T) {
	for _, tc := range []struct {
		current, limit string
		n              int64
		want           string
	}{
		{"free", agentkeys.LimitCredentials, 4, "starter"},
		{"free", agentkeys.LimitRequests, 13, "starter"}, // a custom limit below Free's: the next plan up
		{"starter", agentkeys.LimitAgents, 6, "pro"},
		{"free", agentkeys.LimitAgents, 30, "scale"},
		{"scale", agentkeys.LimitCredentials, 501, "enterprise"},
		{"enterprise", agentkeys.LimitCredentials, 10, "enterprise"},
		{"unlimited", agentkeys.LimitCredentials, 4, "starter"},
	} {
		if got := agentkeys.PlanAllowing(tc.current, tc.limit, tc.n); got != tc.want {
			t.Errorf("PlanAllowing(%s, %s, %d) = %s, want %s", tc.current, tc.limit, tc.n, got, tc.want)
		}
	}
}
