package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

func freeConfig(b backend, t *testing.T) store.Config {
	cfg := b.config(t)
	cfg.DefaultPlan = agentkeys.PlanFree
	return cfg
}

func credInput(name string) *agentkeys.CredentialInput {
	return &agentkeys.CredentialInput{Name: name, Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "v-" + name},
		AllowedHosts: []string{"api.example.com"}}
}

func counts(t *testing.T, w *store.Workspace) (creds, agents int) {
	t.Helper()
	st, err := w.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Usage.Credentials, st.Usage.Agents
}

// TestPlans_CreatePastLimit: a Free workspace holds 3 credentials and 1
// agent; one more is PLAN_LIMIT_REACHED naming the limit and the plan that
// allows it, and nothing is created. Without --billing (the default plan)
// workspaces are unlimited.
func TestPlans_CreatePastLimit(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, freeConfig(b, t))
			ws := mustWorkspace(t, s, "Acme")
			w := s.Workspace(ws.ID)
			st, _ := w.Status(t.Context())
			if st.Plan != agentkeys.PlanFree || st.Limits != (agentkeys.Limits{Credentials: 3, Agents: 1, RequestsPerMonth: 100}) {
				t.Fatalf("new workspace: plan %q limits %+v, want free 3/1/100", st.Plan, st.Limits)
			}
			for i := range 3 {
				if _, err := w.CreateCredential(t.Context(), credInput(fmt.Sprint("c", i))); err != nil {
					t.Fatal(err)
				}
			}
			_, err := w.CreateCredential(t.Context(), credInput("c3"))
			wantCode(t, err, agentkeys.EPLANLIMIT)
			if msg := err.Error(); !strings.Contains(msg, "credentials") || !strings.Contains(msg, "starter") || !strings.Contains(msg, "free") {
				t.Fatalf("message %q should name the limit, the plan and the plan that allows more", msg)
			}
			if _, err := w.CreateAgent(t.Context(), "a0"); err != nil {
				t.Fatal(err)
			}
			_, err = w.CreateAgent(t.Context(), "a1")
			wantCode(t, err, agentkeys.EPLANLIMIT)
			if c, a := counts(t, w); c != 3 || a != 1 {
				t.Fatalf("after refusals: %d credentials, %d agents; want 3 and 1", c, a)
			}

			// Plans off: unlimited.
			s2 := mustOpen(t, b.config(t))
			w2 := s2.Workspace(mustWorkspace(t, s2, "Self").ID)
			for i := range 5 {
				if _, err := w2.CreateAgent(t.Context(), fmt.Sprint("a", i)); err != nil {
					t.Fatal(err)
				}
			}
			if st, _ := w2.Status(t.Context()); st.Plan != agentkeys.PlanUnlimited || st.Limits != (agentkeys.Limits{}) {
				t.Fatalf("self-hosted workspace: plan %q limits %+v, want unlimited", st.Plan, st.Limits)
			}
		})
	}
}

// TestPlans_ConcurrentCreates: 64 concurrent creates on a Free workspace
// leave exactly 3 credentials; every other one is PLAN_LIMIT_REACHED.
func TestPlans_ConcurrentCreates(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, freeConfig(b, t))
			w := s.Workspace(mustWorkspace(t, s, "Acme").ID)
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[string]int{}
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := w.CreateCredential(t.Context(), credInput(fmt.Sprint("c", i)))
					mu.Lock()
					codes[agentkeys.ErrorCode(err)]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if codes[""] != 3 || codes[agentkeys.EPLANLIMIT] != 61 {
				t.Fatalf("outcomes %v, want 3 created and 61 PLAN_LIMIT_REACHED", codes)
			}
			if c, _ := counts(t, w); c != 3 {
				t.Fatalf("%d credentials stored, want 3", c)
			}
		})
	}
}

// TestPlans_SetPlan: the operator's plan and limits take effect at once;
// a downgrade below usage keeps everything and refuses new creations; bad
// input changes nothing.
func TestPlans_SetPlan(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, freeConfig(b, t))
			id := mustWorkspace(t, s, "Acme").ID
			w := s.Workspace(id)
			ctx := t.Context()
			if err := s.SetPlan(ctx, id, store.PlanChange{Plan: agentkeys.PlanPro}); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if _, err := w.CreateCredential(ctx, credInput(fmt.Sprint("c", i))); err != nil {
					t.Fatal(err)
				}
			}
			// Downgrade below usage: all 5 stay, a 6th is refused.
			if err := s.SetPlan(ctx, id, store.PlanChange{Plan: agentkeys.PlanFree}); err != nil {
				t.Fatal(err)
			}
			_, err := w.CreateCredential(ctx, credInput("c5"))
			wantCode(t, err, agentkeys.EPLANLIMIT)
			if c, _ := counts(t, w); c != 5 {
				t.Fatalf("after the downgrade: %d credentials, want the 5 kept", c)
			}
			// Custom limits on top of the plan.
			if err := s.SetPlan(ctx, id, store.PlanChange{Credentials: i64(6), Requests: i64(20000)}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.CreateCredential(ctx, credInput("c5")); err != nil {
				t.Fatalf("within the custom limit: %v", err)
			}
			st, _ := w.Status(ctx)
			if st.Plan != agentkeys.PlanFree || st.Limits != (agentkeys.Limits{Credentials: 6, Agents: 1, RequestsPerMonth: 20000}) {
				t.Fatalf("status after custom limits: %q %+v", st.Plan, st.Limits)
			}
			// Enterprise: the operator's limits only (none: unlimited).
			if err := s.SetPlan(ctx, id, store.PlanChange{Plan: agentkeys.PlanEnterprise, Agents: i64(2)}); err != nil {
				t.Fatal(err)
			}
			if st, _ := w.Status(ctx); st.Limits != (agentkeys.Limits{Agents: 2}) {
				t.Fatalf("enterprise limits %+v, want agents 2 only", st.Limits)
			}

			for name, ch := range map[string]store.PlanChange{
				"UnknownPlan": {Plan: "gold"},
				"Negative":    {Credentials: i64(-1)},
				"Nothing":     {},
			} {
				wantCode(t, s.SetPlan(ctx, id, ch), agentkeys.EINVALID)
				_ = name
			}
			wantCode(t, s.SetPlan(ctx, "ws_nope", store.PlanChange{Plan: agentkeys.PlanPro}), agentkeys.ENOTFOUND)
			if st, _ := w.Status(ctx); st.Plan != agentkeys.PlanEnterprise || st.Limits != (agentkeys.Limits{Agents: 2}) {
				t.Fatalf("refused changes changed the plan: %q %+v", st.Plan, st.Limits)
			}
		})
	}
}
