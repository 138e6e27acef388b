package cmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// planVault reports a workspace on a plan.
type planVault struct{ agentkeys.Vault }

func (planVault) Status(context.Context) (*agentkeys.WorkspaceStatus, error) {
	return &agentkeys.WorkspaceStatus{ID: "ws_1", Name: "Acme", Plan: "free", Mode: agentkeys.ModeRemote, Location: "https://x",
		Usage:  agentkeys.Usage{Credentials: 3, Agents: 0, RequestsThisMonth: 25},
		Limits: agentkeys.Limits{Credentials: 3, Agents: 1, RequestsPerMonth: 100}}, nil
}

// TestStatus_LimitBars: `status` draws a bar per limit and says when one
// is reached; unlimited counts have no bar.
func TestStatus_LimitBars(t *testing.T) {
	io, _, out, _ := cmd.Test()
	err := cmd.RunStatus(t.Context(), &cmd.StatusOptions{IO: io, Vault: func(context.Context) (agentkeys.Vault, error) { return planVault{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Plan:         free",
		"Credentials:  [####################] 3 of 3 (100%) — limit reached",
		"Agents:       [--------------------] 0 of 1 (0%)",
		"Requests:     [#####---------------] 25 of 100 this period (25%)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestServe_SetPlan: `serve set-plan` changes a running server's limits at
// once; bad input exits non-zero and changes nothing.
func TestServe_SetPlan(t *testing.T) {
	e := serveEnv(t)
	r, _ := serveCmd(t, e, nil, nil, "create-workspace", "--email", "o@example.com", "--workspace", "Acme", "--json")
	var cw struct {
		Workspace struct{ ID string }
		APIKey    string `json:"apiKey"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cw); err != nil {
		t.Fatalf("create-workspace: %s %s", r.stdout, r.stderr)
	}
	// --billing stripe refuses to start without its Stripe settings.
	var opts *cmd.ServeOptions
	serveCmd(t, e, func(_ context.Context, o *cmd.ServeOptions) error { opts = o; return nil }, nil,
		"--listen", "127.0.0.1:0", "--billing", "stripe")
	if err := cmd.RunServe(t.Context(), opts); agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Fatalf("serve --billing stripe without a key: %v", err)
	}
	e.vars["STRIPE_SECRET_KEY"] = "sk_test_123"
	e.vars["STRIPE_WEBHOOK_SECRET"] = "whsec_x"
	e.vars["STRIPE_PRICE_STARTER"], e.vars["STRIPE_PRICE_PRO"] = "price_s", "price_p"
	serveCmd(t, e, func(_ context.Context, o *cmd.ServeOptions) error { opts = o; return nil }, nil,
		"--listen", "127.0.0.1:0", "--billing", "stripe", "--stripe-price-scale", "price_sc")
	if opts.Prices["scale"] != "price_sc" || opts.Prices["pro"] != "price_p" {
		t.Fatalf("prices %v", opts.Prices)
	}
	sios, _, _, _ := cmd.Test()
	opts.IO = sios
	ready := make(chan string, 1)
	opts.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmd.RunServe(ctx, opts) }()
	defer func() { cancel(); <-done }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	create := func(name string) int {
		body := `{"name":"` + name + `","type":"API_KEY","value":"v","allowedHosts":["api.example.com"]}`
		req, _ := http.NewRequest("POST", base+"/api/v1/credentials", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cw.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if r, _ := serveCmd(t, e, nil, nil, "set-plan", "--workspace", cw.Workspace.ID, "--plan", "free"); r.code != 0 ||
		!strings.Contains(r.stdout, "plan free: credentials 3, agents 1, requests 100") {
		t.Fatalf("set-plan: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	for i, want := range []int{201, 201, 201, 403} {
		if got := create(fmt.Sprint("c", i)); got != want {
			t.Fatalf("credential %d: %d, want %d", i, got, want)
		}
	}
	if r, _ := serveCmd(t, e, nil, nil, "set-plan", "--workspace", cw.Workspace.ID, "--credentials", "4"); r.code != 0 {
		t.Fatalf("set-plan --credentials: exit %d %s", r.code, r.stderr)
	}
	if got := create("c3"); got != 201 {
		t.Fatalf("after raising the limit: %d, want 201", got)
	}
	for name, args := range map[string][]string{
		"NoWorkspace": {"set-plan", "--plan", "pro"},
		"NoChange":    {"set-plan", "--workspace", cw.Workspace.ID},
		"BadPlan":     {"set-plan", "--workspace", cw.Workspace.ID, "--plan", "gold"},
		"Negative":    {"set-plan", "--workspace", cw.Workspace.ID, "--agents", "-1"},
		"Unknown":     {"set-plan", "--workspace", "ws_nope", "--plan", "pro"},
	} {
		if r, _ := serveCmd(t, e, nil, nil, args...); r.code == 0 {
			t.Errorf("%s: exit %d, want a refusal", name, r.code)
		}
	}
	if got := create("c4"); got != 403 {
		t.Fatalf("refused set-plans changed the limit: %d", got)
	}
}

// TestBilling_CLI: `billing`, `billing upgrade` and `billing portal`
// against a server whose Stripe is a real stripe-mock process; the local
// vault and a server without billing say what to do instead.
func TestBilling_CLI(t *testing.T) {
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: mustServerKey(t), DefaultPlan: agentkeys.PlanFree})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, Billing: &server.BillingConfig{StripeKey: "sk_test_123", WebhookSecret: "whsec_x",
		Prices: map[string]string{"starter": "price_s", "pro": "price_p", "scale": "price_sc"}, APIURL: testkit.StripeMock(t)}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ws, err := st.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "o@example.com", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}

	local := newEnv(t)
	local.init()
	if r := local.run("billing"); r.code == 0 || !strings.Contains(r.stderr, "agentkeys login --server") {
		t.Fatalf("billing on the local vault: exit %d %s", r.code, r.stderr)
	}

	e := newEnv(t)
	e.vars["AGENTKEYS_API_URL"], e.vars["AGENTKEYS_API_KEY"] = hs.URL, ws.APIKey
	out := e.must("billing")
	if !strings.Contains(out, "Plan:         free") || !strings.Contains(out, "no subscription") {
		t.Fatalf("billing printed %q", out)
	}
	if r := e.run("billing", "portal"); r.code == 0 || !strings.Contains(r.stderr, "billing upgrade") {
		t.Fatalf("portal before a subscription: exit %d %s", r.code, r.stderr)
	}
	if u := strings.TrimSpace(e.must("billing", "upgrade", "pro")); !strings.HasPrefix(u, "https://") {
		t.Fatalf("upgrade printed %q, want the Checkout URL", u)
	}
	if u := strings.TrimSpace(e.must("billing", "portal")); !strings.HasPrefix(u, "https://") {
		t.Fatalf("portal printed %q, want the portal URL", u)
	}
	var js struct{ Billing agentkeys.BillingStatus }
	if err := json.Unmarshal([]byte(e.must("billing", "--json")), &js); err != nil || js.Billing.Plan != "free" {
		t.Fatalf("billing --json: %+v %v", js, err)
	}
	if r := e.run("billing", "upgrade", "enterprise"); r.code != 2 {
		t.Fatalf("upgrade enterprise: exit %d, want 2", r.code)
	}
}

func mustServerKey(t *testing.T) agentkeys.Key {
	t.Helper()
	k, err := agentkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
