package cmd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
)

// TestWebhooksCommands: add, list, update, test, deliveries, redeliver and
// remove against a live server with its dispatcher running; the secret is
// printed by add only; the local vault refuses with exit 2.
func TestWebhooksCommands(t *testing.T) {
	local := newEnv(t)
	local.init()
	if r := local.run("webhooks", "list"); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "login") {
		t.Fatalf("local vault: exit %d %q", r.code, r.stderr)
	}

	k, _ := agentkeys.NewKey()
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: k})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true,
		Webhooks: webhook.Config{Poll: 20 * time.Millisecond, Backoff: []time.Duration{50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.RunWebhooks(ctx) }()
	t.Cleanup(func() { cancel(); <-done; hs.Close(); st.Close() })
	res, err := client.Signup(t.Context(), client.Config{BaseURL: hs.URL}, client.SignupInput{Email: "o@example.com", Password: "correct horse battery", Workspace: "W"})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer rcv.Close()

	e := newEnv(t)
	e.vars["AGENTKEYS_API_URL"], e.vars["AGENTKEYS_API_KEY"] = hs.URL, res.APIKey
	var added struct{ Webhook client.WebhookEndpoint }
	json.Unmarshal([]byte(e.must("webhooks", "add", "--url", rcv.URL+"/h", "--all-events", "--json")), &added)
	h := added.Webhook
	if !strings.HasPrefix(h.Secret, "whsec_") || len(h.Events) != 4 || !h.Enabled {
		t.Fatalf("add = %+v", h)
	}
	for _, args := range [][]string{{"webhooks", "list"}, {"webhooks", "list", "--json"}} {
		if out := e.must(args...); strings.Contains(out, h.Secret) || !strings.Contains(out, h.ID) {
			t.Fatalf("%v: %s", args, out)
		}
	}
	if r := e.run("webhooks", "add", "--url", "https://10.0.0.1/h", "--all-events"); r.code != cmd.ExitUsage {
		t.Fatalf("private address: exit %d %q", r.code, r.stderr)
	}
	if r := e.run("webhooks", "add", "--url", "https://example.com/h"); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "--event") {
		t.Fatalf("no events: exit %d %q", r.code, r.stderr)
	}
	if out := e.must("webhooks", "update", h.ID, "--disable"); !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %s", out)
	}
	e.must("webhooks", "update", h.ID, "--enable", "--event", "credential.expired")
	e.must("webhooks", "test", h.ID)
	var ds struct{ Deliveries []client.WebhookDelivery }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		json.Unmarshal([]byte(e.must("webhooks", "deliveries", h.ID, "--json")), &ds)
		if len(ds.Deliveries) == 1 && ds.Deliveries[0].Status == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v", ds)
		}
	}
	if out := e.must("webhooks", "deliveries", h.ID); !strings.Contains(out, "webhook.test") || !strings.Contains(out, "succeeded") {
		t.Fatalf("deliveries table: %s", out)
	}
	e.must("webhooks", "redeliver", h.ID, ds.Deliveries[0].ID)
	for deadline := time.Now().Add(10 * time.Second); hits.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redelivery not sent: %d hits", hits.Load())
		}
	}
	if r := e.run("webhooks", "remove", h.ID); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("remove without --yes: exit %d %q", r.code, r.stderr)
	}
	e.must("webhooks", "remove", h.ID, "--yes")
	if r := e.run("webhooks", "test", h.ID); r.code != cmd.ExitNotFound {
		t.Fatalf("test after remove: exit %d %q", r.code, r.stderr)
	}
}
