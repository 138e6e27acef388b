package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// periodClock is an injected periodClock tests move.
type periodClock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *periodClock { c := &periodClock{}; c.set(t); return c }
func (c *periodClock) set(t time.Time)  { c.t.Store(&t) }
func (c *periodClock) now() time.Time   { return *c.t.Load() }

// reachedEvents records the usage.limit_reached hook's calls.
type reachedEvents struct {
	mu  sync.Mutex
	evs []store.LimitReachedEvent
}

func (r *reachedEvents) hook(_ context.Context, ev store.LimitReachedEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *reachedEvents) all() []store.LimitReachedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.LimitReachedEvent(nil), r.evs...)
}

// TestPlans_APIRefusesPastLimit: on a Free workspace (serve --billing) the
// 4th credential and the 2nd agent are 403 PLAN_LIMIT_REACHED and nothing
// is created; the status shows the plan in the seed's shape.
func TestPlans_APIRefusesPastLimit(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), configure: func(c *store.Config) { c.DefaultPlan = agentkeys.PlanFree }})
			_, key := s.signup("Acme")
			for _, n := range []string{"a", "b", "c"} {
				s.createCredential(key, n, "v", "api.example.com")
			}
			s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "d", "type": "API_KEY", "value": "v", "allowedHosts": []string{"api.example.com"}}).
				want(t, 403, agentkeys.EPLANLIMIT)
			s.createAgent(key, "bot")
			s.do("POST", "/api/v1/agents", key, map[string]any{"name": "bot2"}).want(t, 403, agentkeys.EPLANLIMIT)
			a := s.do("GET", "/api/v1/workspace/status", key, nil)
			a.want(t, 200, "")
			var st struct {
				Workspace struct {
					Plan   string           `json:"plan"`
					Usage  agentkeys.Usage  `json:"usage"`
					Limits agentkeys.Limits `json:"limits"`
				} `json:"workspace"`
			}
			a.decode(t, &st)
			if st.Workspace.Plan != "free" || st.Workspace.Usage.Credentials != 3 || st.Workspace.Usage.Agents != 1 ||
				st.Workspace.Limits != (agentkeys.Limits{Credentials: 3, Agents: 1, RequestsPerMonth: 100}) {
				t.Fatalf("status = %s", a.body)
			}
		})
	}
}

// TestHostedProxy_RequestLimit: a workspace allowed 12 requests a period
// forwards 12; from then on the hosted proxy answers 429
// USAGE_LIMIT_REACHED with Retry-After (seconds to the end of the calendar
// month), forwards nothing and audits the refusal; usage.limit_reached is
// raised once. A raised limit applies at once; the next period (the
// injected periodClock moves) starts from 0.
func TestHostedProxy_RequestLimit(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			clk := newClock(time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC))
			var reached reachedEvents
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true, now: clk.now, configure: func(c *store.Config) {
				c.DefaultPlan = agentkeys.PlanFree
				c.LimitReached = reached.hook
			}})
			up := newUpstream(t)
			wsID, key := s.signup("Acme")
			limit := int64(12)
			if err := s.store.SetPlan(t.Context(), wsID, store.PlanChange{Requests: &limit}); err != nil {
				t.Fatal(err)
			}
			c := s.createCredential(key, "c", "limit-secret", up.host())
			ag := s.createAgent(key, "bot")
			g := s.assign(key, ag.ID, c.ID)
			var ok, refused int
			for range 15 {
				a := proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/x")
				switch a.status {
				case 200:
					ok++
				case 429:
					a.want(t, 429, agentkeys.EUSAGELIMIT)
					if ra := a.header.Get("Retry-After"); ra != "3600" {
						t.Fatalf("Retry-After = %q, want 3600 (seconds to the end of March)", ra)
					}
					refused++
				default:
					t.Fatalf("proxy answered %d: %s", a.status, a.body)
				}
			}
			if ok != 12 || refused != 3 || len(up.received()) != 12 {
				t.Fatalf("forwarded %d, refused %d, upstream got %d; want 12, 3, 12", ok, refused, len(up.received()))
			}
			evs := reached.all()
			if len(evs) != 1 || evs[0].WorkspaceID != wsID || evs[0].Limit != 12 || evs[0].Period.Key != "2026-03" {
				t.Fatalf("limit_reached events %+v, want one for %s, limit 12, 2026-03", evs, wsID)
			}
			a := s.do("GET", "/api/v1/audit", key, nil)
			var page struct{ Events []*agentkeys.AuditEvent }
			json.Unmarshal(a.body, &page)
			denied := 0
			for _, e := range page.Events {
				if e.Code == agentkeys.EUSAGELIMIT && e.Decision == agentkeys.DecisionDenied && e.Status == 429 {
					denied++
				}
			}
			if denied != 3 {
				t.Fatalf("%d refusals audited, want 3: %s", denied, a.body)
			}
			if st := status(t, s, key); st.Usage.RequestsThisMonth != 12 {
				t.Fatalf("requests this period = %d, want 12", st.Usage.RequestsThisMonth)
			}

			// The operator raises the limit (serve set-plan): the running
			// server lets 2 more through at once.
			limit = 14
			if err := s.store.SetPlan(t.Context(), wsID, store.PlanChange{Requests: &limit}); err != nil {
				t.Fatal(err)
			}
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/x").want(t, 200, "")
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/x").want(t, 200, "")
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/x").want(t, 429, agentkeys.EUSAGELIMIT)
			if len(reached.all()) != 1 {
				t.Fatal("limit_reached raised twice in one period")
			}

			// A new period: usage starts over.
			clk.set(time.Date(2026, 4, 1, 0, 0, 1, 0, time.UTC))
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/y").want(t, 200, "")
			if st := status(t, s, key); st.Usage.RequestsThisMonth != 1 {
				t.Fatalf("requests in April = %d, want 1", st.Usage.RequestsThisMonth)
			}
		})
	}
}

func status(t *testing.T, s *testServer, key string) *agentkeys.WorkspaceStatus {
	t.Helper()
	a := s.do("GET", "/api/v1/workspace/status", key, nil)
	a.want(t, 200, "")
	var st struct{ Workspace *agentkeys.WorkspaceStatus }
	a.decode(t, &st)
	return st.Workspace
}

// TestHostedProxy_RequestLimitReplicas: two replicas on one PostgreSQL
// database, 8 concurrent clients each (96 requests), a limit of 30:
// together they forward exactly 30 — leases never pass the limit, and a
// replica refuses only once its own lease is used (server/store/quota.go)
// — and raise one limit_reached.
func TestHostedProxy_RequestLimitReplicas(t *testing.T) {
	url := dbKinds()[1].url(t)
	var reached reachedEvents
	cfg := func(c *store.Config) { c.DefaultPlan = agentkeys.PlanFree; c.LimitReached = reached.hook }
	key0 := mustKey(t)
	s1 := newTestServer(t, serverOpts{databaseURL: url, key: key0, allowLoopback: true, configure: cfg})
	s2 := newTestServer(t, serverOpts{databaseURL: url, key: key0, allowLoopback: true, configure: cfg})
	up := newUpstream(t)
	wsID, key := s1.signup("Acme")
	limit := int64(30)
	if err := s1.store.SetPlan(t.Context(), wsID, store.PlanChange{Requests: &limit}); err != nil {
		t.Fatal(err)
	}
	c := s1.createCredential(key, "c", "v", up.host())
	ag := s1.createAgent(key, "bot")
	g := s1.assign(key, ag.ID, c.ID)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		base := []string{s1.url, s2.url}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 6 {
				a := proxyGet(t, base, g.ProxyToken, "", up.URL+"/r")
				switch a.status {
				case 200:
					ok.Add(1)
				case 429:
					refused.Add(1)
				default:
					t.Errorf("proxy answered %d: %s", a.status, a.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := int64(len(up.received())); n != ok.Load() || n != 30 {
		t.Fatalf("forwarded %d (upstream %d), refused %d; want 30 forwarded", ok.Load(), n, refused.Load())
	}
	t.Logf("forwarded %d of 96 with a limit of 30 across two replicas", ok.Load())
	if evs := reached.all(); len(evs) != 1 {
		t.Fatalf("limit_reached raised %d times, want once", len(evs))
	}
}

// TestHostedProxy_RequestLimitStripePeriod: with a Stripe subscription the
// period is Stripe's: usage counts from its start, Retry-After runs to its
// end, and the limit is the subscribed plan's (with the operator's
// override).
func TestHostedProxy_RequestLimitStripePeriod(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			clk := newClock(time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC))
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true, now: clk.now,
				configure: func(c *store.Config) { c.DefaultPlan = agentkeys.PlanFree }})
			up := newUpstream(t)
			wsID, key := s.signup("Acme")
			c := s.createCredential(key, "c", "v", up.host())
			g := s.assign(key, s.createAgent(key, "bot").ID, c.ID)
			// Calendar March, before the subscription: 2 requests.
			for range 2 {
				proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/a").want(t, 200, "")
			}
			sub := "sub_1"
			start, end := time.Date(2026, 3, 20, 11, 0, 0, 0, time.UTC), time.Date(2026, 4, 20, 11, 0, 0, 0, time.UTC)
			if _, err := s.store.ApplyBilling(t.Context(), "evt_1", store.BillingUpdate{WorkspaceID: wsID, Customer: "cus_1", Subscription: &sub,
				Plan: agentkeys.PlanStarter, Status: store.BillingActive, PeriodStart: start, PeriodEnd: end}); err != nil {
				t.Fatal(err)
			}
			clk.set(time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC))
			limit := int64(3)
			if err := s.store.SetPlan(t.Context(), wsID, store.PlanChange{Requests: &limit}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/b").want(t, 200, "")
			}
			a := proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/b")
			a.want(t, 429, agentkeys.EUSAGELIMIT)
			if want := fmt.Sprint(int(end.Sub(clk.now()).Seconds())); a.header.Get("Retry-After") != want {
				t.Fatalf("Retry-After = %s, want %s (to the Stripe period's end)", a.header.Get("Retry-After"), want)
			}
			if st := status(t, s, key); st.Plan != agentkeys.PlanStarter || st.Usage.RequestsThisMonth != 3 {
				t.Fatalf("status: plan %s, %d requests this period; want starter, 3 (the 2 of before the period not counted)", st.Plan, st.Usage.RequestsThisMonth)
			}
		})
	}
}
