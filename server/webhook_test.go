package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
)

// needTool skips the test when the tool is missing (fails under CI=true).
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true)", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// receiver is testdata/webhook_receiver.py: a process of its own that
// verifies both signatures of every delivery and can be told to fail.
type receiver struct {
	t   *testing.T
	url string // base URL, http://127.0.0.1:port
}

type received struct {
	Path             string  `json:"path"`
	Time             float64 `json:"time"`
	Body             string  `json:"body"` // base64
	Signature        string  `json:"signature"`
	WebhookID        string  `json:"webhookId"`
	WebhookTimestamp string  `json:"webhookTimestamp"`
	WebhookSignature string  `json:"webhookSignature"`
	Attempt          string  `json:"attempt"`
	SeedVerified     bool    `json:"seedVerified"`
	StandardVerified bool    `json:"standardVerified"`
	Status           int     `json:"status"`
}

func (r received) body(t *testing.T) []byte {
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r received) eventID(t *testing.T) string {
	var p struct{ ID string }
	if err := json.Unmarshal(r.body(t), &p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	needTool(t, "python3")
	portFile := filepath.Join(t.TempDir(), "port")
	cmd := exec.Command("python3", "testdata/webhook_receiver.py", portFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(portFile)
		if err == nil {
			return &receiver{t: t, url: "http://127.0.0.1:" + strings.TrimSpace(string(b))}
		}
		if time.Now().After(deadline) {
			t.Fatal("the receiver did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *receiver) control(v map[string]any) {
	r.t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(r.url+"/_control", "application/json", strings.NewReader(string(b)))
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
}

func (r *receiver) log() []received {
	r.t.Helper()
	resp, err := http.Get(r.url + "/_log")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []received
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// waitLog waits until the receiver got n deliveries (and then a moment
// longer, to catch any extra one), and returns them.
func (r *receiver) waitLog(n int) []received {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := r.log()
		if len(got) >= n {
			time.Sleep(300 * time.Millisecond)
			return r.log()
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the receiver got %d deliveries, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastWebhooks are delivery settings that make a test's retries quick.
func fastWebhooks() webhook.Config {
	return webhook.Config{Backoff: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
		Poll: 20 * time.Millisecond, ScanEvery: time.Hour, Timeout: 2 * time.Second, Lease: 3 * time.Second}
}

// webhookServer is a test server with loopback targets allowed and its
// dispatcher running.
func webhookServer(t *testing.T, db dbKind, o serverOpts) *testServer {
	t.Helper()
	o.databaseURL = db.url(t)
	o.allowLoopback = true
	if o.webhooks.Poll == 0 {
		o.webhooks = fastWebhooks()
	}
	s := newTestServer(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.srv.RunWebhooks(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

type webhookAnswer struct {
	Webhook store.Webhook `json:"webhook"`
}

func (s *testServer) createWebhook(key, url string, events ...string) store.Webhook {
	s.t.Helper()
	a := s.do("POST", "/api/v1/webhooks", key, map[string]any{"url": url, "events": events})
	a.want(s.t, http.StatusCreated, "")
	var out webhookAnswer
	a.decode(s.t, &out)
	if !strings.HasPrefix(out.Webhook.Secret, "whsec_") || !strings.HasPrefix(out.Webhook.ID, "wh_") {
		s.t.Fatalf("create answer = %s", a.body)
	}
	return out.Webhook
}

func (s *testServer) deliveries(key, id string) []store.Delivery {
	s.t.Helper()
	a := s.do("GET", "/api/v1/webhooks/"+id+"/deliveries", key, nil)
	a.want(s.t, http.StatusOK, "")
	var out struct{ Deliveries []store.Delivery }
	a.decode(s.t, &out)
	return out.Deliveries
}

// waitDelivery waits until the webhook's newest delivery is settled.
func (s *testServer) waitSettled(key, id string, n int) []store.Delivery {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds := s.deliveries(key, id)
		settled := 0
		for _, d := range ds {
			if d.Status != store.DeliveryPending {
				settled++
			}
		}
		if settled >= n {
			return ds
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("deliveries not settled: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhooks_SignedVerifiedSecretOnce: a test event reaches the receiver
// with both signatures verifying (the seed's Python snippet in the
// receiver, the seed's TypeScript snippet run with node), the payload is
// the seed's shape, and the secret is shown only at creation and rotation.
func TestWebhooks_SignedVerifiedSecretOnce(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			rcv := startReceiver(t)
			s := webhookServer(t, db, serverOpts{})
			wsID, key := s.signup("Hooks")
			h := s.createWebhook(key, rcv.url+"/hooks/agentkeys", store.EventCredentialExpired, store.EventCredentialError)
			rcv.control(map[string]any{"secret": h.Secret})
			for _, path := range []string{"/api/v1/webhooks", "/api/v1/webhooks/" + h.ID} {
				if a := s.do("GET", path, key, nil); strings.Contains(string(a.body), h.Secret) || strings.Contains(string(a.body), `"secret"`) {
					t.Fatalf("GET %s shows the secret: %s", path, a.body)
				}
			}
			a := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil)
			a.want(t, http.StatusAccepted, "")
			got := rcv.waitLog(1)
			if len(got) != 1 {
				t.Fatalf("receiver got %d deliveries, want 1", len(got))
			}
			d := got[0]
			if !d.SeedVerified || !d.StandardVerified || d.Path != "/hooks/agentkeys" || d.Attempt != "1" {
				t.Fatalf("delivery = %+v", d)
			}
			var p map[string]any
			if err := json.Unmarshal(d.body(t), &p); err != nil {
				t.Fatal(err)
			}
			if len(p) != 5 || p["event"] != store.EventWebhookTest || p["workspaceId"] != wsID || !strings.HasPrefix(p["id"].(string), "evt_") || p["id"] != d.WebhookID {
				t.Fatalf("payload = %s", d.body(t))
			}
			if _, err := time.Parse(time.RFC3339, p["timestamp"].(string)); err != nil || !strings.HasSuffix(p["timestamp"].(string), "Z") {
				t.Fatalf("timestamp %v", p["timestamp"])
			}
			// The seed's TypeScript snippet, run with node.
			needTool(t, "node")
			{
				verify := func(secret string) string {
					cmd := exec.Command("node", "testdata/webhook_verify.mjs", d.Body, d.Signature)
					cmd.Env = append(os.Environ(), "AGENTKEYS_WEBHOOK_SECRET="+secret)
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Fatalf("node: %v: %s", err, out)
					}
					return strings.TrimSpace(string(out))
				}
				if v := verify(h.Secret); v != "verified" {
					t.Fatalf("node says %q with the right secret", v)
				}
				if v := verify("whsec_wrong"); v != "refused" {
					t.Fatalf("node says %q with a wrong secret", v)
				}
			}
			// Go: the same checks, and the Go SDK's verifiers.
			if !webhook.Verify(h.Secret, d.body(t), d.Signature) || webhook.Verify("whsec_x", d.body(t), d.Signature) {
				t.Fatal("webhook.Verify disagrees")
			}
			if !client.VerifyWebhook(d.body(t), d.Signature, h.Secret) {
				t.Fatal("client.VerifyWebhook refuses a real delivery")
			}
			hdr := http.Header{}
			hdr.Set("webhook-id", d.WebhookID)
			hdr.Set("webhook-timestamp", d.WebhookTimestamp)
			hdr.Set("webhook-signature", d.WebhookSignature)
			if err := client.VerifyStandardWebhook(d.body(t), hdr, h.Secret, client.DefaultWebhookTolerance, time.Now()); err != nil {
				t.Fatalf("client.VerifyStandardWebhook: %v", err)
			}
			// Rotation: a new secret, shown once; deliveries use it.
			a = s.do("POST", "/api/v1/webhooks/"+h.ID+"/rotate-secret", key, nil)
			a.want(t, http.StatusOK, "")
			var rot webhookAnswer
			a.decode(t, &rot)
			if !strings.HasPrefix(rot.Webhook.Secret, "whsec_") || rot.Webhook.Secret == h.Secret {
				t.Fatalf("rotate answer = %s", a.body)
			}
			rcv.control(map[string]any{"secret": rot.Webhook.Secret})
			s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
			if got := rcv.waitLog(2); len(got) != 2 || !got[1].SeedVerified || !got[1].StandardVerified {
				t.Fatalf("after rotation: %+v", got)
			}
			// The secret never reached the logs.
			if strings.Contains(s.logs.String(), h.Secret) || strings.Contains(s.logs.String(), rot.Webhook.Secret) {
				t.Fatal("a webhook secret is in the server's log")
			}
		})
	}
}

// TestWebhooks_Retries: failing twice then succeeding is 3 attempts of one
// event id; failing always is 4 attempts, then failed and kept; redeliver
// sends the same event again.
func TestWebhooks_Retries(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			rcv := startReceiver(t)
			s := webhookServer(t, db, serverOpts{})
			_, key := s.signup("Retries")
			h := s.createWebhook(key, rcv.url+"/h", store.EventCredentialExpired)
			rcv.control(map[string]any{"secret": h.Secret, "fail": 2})
			s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
			got := rcv.waitLog(3)
			if len(got) != 3 {
				t.Fatalf("got %d attempts, want 3", len(got))
			}
			for i, r := range got {
				if r.eventID(t) != got[0].eventID(t) || r.Attempt != strconv.Itoa(i+1) || !r.SeedVerified || !r.StandardVerified {
					t.Fatalf("attempt %d = %+v", i+1, r)
				}
				if i > 0 && r.Time-got[i-1].Time < 0.07 {
					t.Errorf("attempt %d came %.3fs after the one before: no backoff", i+1, r.Time-got[i-1].Time)
				}
			}
			ds := s.waitSettled(key, h.ID, 1)
			if len(ds) != 1 || ds[0].Status != store.DeliverySucceeded || len(ds[0].Attempts) != 3 ||
				ds[0].Attempts[0].StatusCode != 500 || ds[0].Attempts[2].StatusCode != 200 || ds[0].EventID != got[0].eventID(t) {
				t.Fatalf("deliveries = %+v", ds)
			}

			rcv.control(map[string]any{"mode": "fail"})
			s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
			got = rcv.waitLog(3 + 4)
			if len(got) != 7 {
				t.Fatalf("got %d requests, want 3 + 4", len(got))
			}
			ds = s.waitSettled(key, h.ID, 2)
			failed := ds[0]
			if failed.Status != store.DeliveryFailed || len(failed.Attempts) != 4 || failed.Attempts[3].Error == "" {
				t.Fatalf("failed delivery = %+v", failed)
			}
			var hook webhookAnswer
			s.do("GET", "/api/v1/webhooks/"+h.ID, key, nil).decode(t, &hook)
			if !hook.Webhook.Enabled || hook.Webhook.FailingSince == nil {
				t.Fatalf("after a failure the endpoint = %+v", hook.Webhook)
			}

			rcv.control(map[string]any{"mode": "ok"})
			a := s.do("POST", "/api/v1/webhooks/"+h.ID+"/deliveries/"+failed.ID+"/redeliver", key, nil)
			a.want(t, http.StatusAccepted, "")
			got = rcv.waitLog(8)
			if len(got) != 8 || got[7].eventID(t) != failed.EventID || got[7].Status != 200 {
				t.Fatalf("redelivery: %+v", got[len(got)-1])
			}
			s.waitSettled(key, h.ID, 3)
			hook = webhookAnswer{}
			s.do("GET", "/api/v1/webhooks/"+h.ID, key, nil).decode(t, &hook)
			if hook.Webhook.FailingSince != nil {
				t.Fatalf("a success did not clear failingSince: %+v", hook.Webhook)
			}
			s.do("POST", "/api/v1/webhooks/"+h.ID+"/deliveries/whd_nope/redeliver", key, nil).want(t, http.StatusNotFound, agentkeys.ENOTFOUND)
		})
	}
}

// fakeClock is an injected clock tests move.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestWebhooks_EventsByCause: expiry (7-day warning, then expired, each
// once, re-armed by a new expiresAt), credential.error from an upstream's
// 401 (a flood is one event) and usage.limit_reached once per period.
func TestWebhooks_EventsByCause(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			rcv := startReceiver(t)
			clock := &fakeClock{t: time.Now()}
			s := webhookServer(t, db, serverOpts{now: clock.now})
			wsID, key := s.signup("Causes")
			h := s.createWebhook(key, rcv.url+"/h", store.WebhookEvents...)
			rcv.control(map[string]any{"secret": h.Secret})
			events := func(n int) []map[string]any {
				t.Helper()
				var out []map[string]any
				for _, r := range rcv.waitLog(n) {
					var p map[string]any
					json.Unmarshal(r.body(t), &p)
					out = append(out, p)
				}
				if len(out) != n {
					t.Fatalf("got %d events, want %d: %v", len(out), n, out)
				}
				return out
			}

			// Expiry: 10 days out, nothing; 6 days out, expiring_soon once.
			expires := clock.now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
			a := s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "Resend Production", "type": "API_KEY", "value": "re_canary_value",
				"allowedHosts": []string{"api.resend.com"}, "expiresAt": expires})
			a.want(t, http.StatusCreated, "")
			var cred agentkeys.Credential
			a.decode(t, &cred)
			if n, err := s.store.ScanExpiry(t.Context()); err != nil || n != 0 {
				t.Fatalf("scan 10 days out: %d %v", n, err)
			}
			clock.set(expires.Add(-6 * 24 * time.Hour))
			for range 2 {
				if _, err := s.store.ScanExpiry(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			ev := events(1)[0]
			data := ev["data"].(map[string]any)
			if ev["event"] != store.EventCredentialExpiringSoon || ev["workspaceId"] != wsID || data["credentialId"] != cred.ID ||
				data["credentialName"] != "Resend Production" || data["expiresAt"] != expires.Format(time.RFC3339) {
				t.Fatalf("expiring_soon = %v", ev)
			}
			clock.set(expires.Add(time.Second))
			s.store.ScanExpiry(t.Context())
			s.store.ScanExpiry(t.Context())
			if ev := events(2)[1]; ev["event"] != store.EventCredentialExpired {
				t.Fatalf("expired = %v", ev)
			}
			// A new expiresAt re-arms both.
			renewed := expires.Add(3 * 24 * time.Hour)
			s.do("PATCH", "/api/v1/credentials/"+cred.ID, key, map[string]any{"expiresAt": renewed}).want(t, http.StatusOK, "")
			s.store.ScanExpiry(t.Context())
			if ev := events(3)[2]; ev["event"] != store.EventCredentialExpiringSoon || ev["data"].(map[string]any)["expiresAt"] != renewed.Format(time.RFC3339) {
				t.Fatalf("re-armed = %v", ev)
			}

			// credential.error: the target answers 401 to injected requests.
			clock.set(time.Now())
			up := newUpstreamStatus(t, http.StatusUnauthorized)
			c2 := s.createCredential(key, "Upstream", "up_canary_value", up.Host())
			ag := s.createAgent(key, "bot")
			g := s.assign(key, ag.ID, c2.ID)
			for range 3 {
				proxyGet(t, s.url, g.ProxyToken, "", "http://"+up.Host()+"/v1/me").want(t, http.StatusUnauthorized, "")
			}
			evs := events(4)
			ev = evs[3]
			data = ev["data"].(map[string]any)
			if ev["event"] != store.EventCredentialError || data["credentialId"] != c2.ID || data["status"] != float64(401) ||
				data["host"] != up.Host() || data["agentId"] != ag.ID || data["agentName"] != "bot" {
				t.Fatalf("credential.error = %v", ev)
			}

			// usage.limit_reached: once per period.
			for range 2 {
				if _, err := s.store.RaiseUsageLimitReached(t.Context(), wsID, "2026-12", map[string]any{"limit": 1000, "used": 1000}); err != nil {
					t.Fatal(err)
				}
			}
			ev = events(5)[4]
			data = ev["data"].(map[string]any)
			if ev["event"] != store.EventUsageLimitReached || data["period"] != "2026-12" || data["limit"] != float64(1000) {
				t.Fatalf("usage.limit_reached = %v", ev)
			}
			// No payload carries a credential value.
			for _, r := range rcv.log() {
				if b := string(r.body(t)); strings.Contains(b, "canary") {
					t.Fatalf("a payload carries a credential value: %s", b)
				}
			}
		})
	}
}

// newUpstreamStatus is an API on loopback that answers every request with
// status.
func newUpstreamStatus(t *testing.T, status int) *upstream {
	t.Helper()
	return &upstream{testkit.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })}
}

// TestWebhooks_URLRefusals: private, metadata and loopback endpoints are
// refused at creation (400, nothing written); an endpoint whose address is
// refused only at connect time fails its attempts with the reason.
func TestWebhooks_URLRefusals(t *testing.T) {
	s := newTestServer(t, serverOpts{webhooks: fastWebhooks()})
	_, key := s.signup("SSRF")
	for _, u := range []string{
		"https://169.254.169.254/latest/meta-data", "https://10.0.0.1/h", "https://[::1]/h", "http://127.0.0.1:9/h",
		"http://example.com/h", "ftp://example.com/h", "https://user:pw@example.com/h", "not a url", "https://localhost/h",
	} {
		a := s.do("POST", "/api/v1/webhooks", key, map[string]any{"url": u, "events": []string{store.EventCredentialExpired}})
		a.want(t, http.StatusBadRequest, agentkeys.EINVALID)
	}
	s.do("POST", "/api/v1/webhooks", key, map[string]any{"url": "https://example.com/h", "events": []string{"nope"}}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
	s.do("POST", "/api/v1/webhooks", key, map[string]any{"url": "https://example.com/h", "events": []string{}}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
	var list struct{ Webhooks []store.Webhook }
	s.do("GET", "/api/v1/webhooks", key, nil).decode(t, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("refusals wrote %v", list.Webhooks)
	}
	h := s.createWebhook(key, "https://example.com/h", store.EventCredentialExpired)
	s.do("PATCH", "/api/v1/webhooks/"+h.ID, key, map[string]any{"url": "https://10.1.2.3/h"}).want(t, http.StatusBadRequest, agentkeys.EINVALID)

	// Connect time: a name that resolves to a refused address is refused
	// by the dialer after DNS. The URL check knows "localhost", so the
	// endpoint is pointed at it directly in the store's table.
	rcv := startReceiver(t)
	local := strings.Replace(rcv.url, "127.0.0.1", "localhost", 1) + "/h" // resolved by DNS, then refused
	if _, err := s.store.DB().Exec(`UPDATE webhooks SET url = $1 WHERE id = $2`, local, h.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.srv.RunWebhooks(ctx) }()
	defer func() { cancel(); <-done }()
	s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := s.deliveries(key, h.ID)
		if len(ds) == 1 && len(ds[0].Attempts) > 0 {
			if a := ds[0].Attempts[0]; a.StatusCode != 0 || !strings.Contains(a.Error, "refused") || !strings.Contains(a.Error, "loopback") {
				t.Fatalf("attempt = %+v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(rcv.log()); n != 0 {
		t.Fatalf("the loopback receiver was reached %d times", n)
	}
}

// TestWebhooks_ReplicasSendEachAttemptOnce: two servers on one PostgreSQL
// database share the outbox; every event reaches the receiver exactly once.
func TestWebhooks_ReplicasSendEachAttemptOnce(t *testing.T) {
	pg := dbKinds()[1]
	dbURL := pg.url(t)
	rcv := startReceiver(t)
	key0 := mustKey(t)
	a := webhookServer(t, dbKind{"PostgreSQL", func(*testing.T) string { return dbURL }}, serverOpts{key: key0})
	b := webhookServer(t, dbKind{"PostgreSQL", func(*testing.T) string { return dbURL }}, serverOpts{key: key0})
	_, key := a.signup("Replicas")
	var hooks []store.Webhook
	for i := range 4 {
		hooks = append(hooks, a.createWebhook(key, rcv.url+"/h"+strconv.Itoa(i), store.EventCredentialExpired))
	}
	rcv.control(map[string]any{"secret": ""})
	const n = 10
	for i := range n {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		for _, h := range hooks {
			srv.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
		}
	}
	got := rcv.waitLog(n * len(hooks))
	if len(got) != n*len(hooks) {
		t.Fatalf("receiver got %d deliveries, want %d", len(got), n*len(hooks))
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.eventID(t)] || r.Attempt != "1" {
			t.Fatalf("event %s sent twice (attempt %s)", r.eventID(t), r.Attempt)
		}
		seen[r.eventID(t)] = true
	}
}

// TestWebhooks_TimeoutAndDisable: an endpoint that hangs past the timeout
// fails the attempt ("no answer"); one failing without a success for 5
// days (injected clock) is disabled, and GET says why.
func TestWebhooks_TimeoutAndDisable(t *testing.T) {
	rcv := startReceiver(t)
	clock := &fakeClock{t: time.Now()}
	wh := fastWebhooks()
	wh.Timeout, wh.Backoff = 300*time.Millisecond, []time.Duration{}
	s := webhookServer(t, dbKinds()[0], serverOpts{now: clock.now, webhooks: wh})
	_, key := s.signup("Disable")
	h := s.createWebhook(key, rcv.url+"/h", store.EventCredentialExpired)
	rcv.control(map[string]any{"secret": h.Secret, "mode": "hang"})
	s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
	ds := s.waitSettled(key, h.ID, 1)
	if a := ds[0].Attempts; ds[0].Status != store.DeliveryFailed || len(a) != 1 || a[0].StatusCode != 0 || !strings.Contains(a[0].Error, "no answer within") {
		t.Fatalf("hung delivery = %+v", ds[0])
	}

	rcv.control(map[string]any{"mode": "fail"})
	clock.set(clock.now().Add(5*24*time.Hour + time.Minute))
	s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
	s.waitSettled(key, h.ID, 2)
	var got webhookAnswer
	s.do("GET", "/api/v1/webhooks/"+h.ID, key, nil).decode(t, &got)
	if got.Webhook.Enabled || !strings.Contains(got.Webhook.DisabledReason, "5 days") || !strings.Contains(got.Webhook.DisabledReason, "HTTP 500") {
		t.Fatalf("after 5 days of failures: %+v", got.Webhook)
	}
	// Disabled: nothing more is sent; enabling clears the record.
	before := len(rcv.log())
	s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", key, nil).want(t, http.StatusAccepted, "")
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.log()); n != before {
		t.Fatalf("a disabled endpoint got %d more requests", n-before)
	}
	got = webhookAnswer{}
	s.do("PATCH", "/api/v1/webhooks/"+h.ID, key, map[string]any{"enabled": true}).decode(t, &got)
	if !got.Webhook.Enabled || got.Webhook.DisabledReason != "" || got.Webhook.FailingSince != nil {
		t.Fatalf("re-enabled: %+v", got.Webhook)
	}
}

// TestWebhooks_SlowEndpointHoldsUpNoOne: while one workspace's endpoint
// hangs, another's deliveries arrive at once and the API answers; the
// hanging endpoint has one delivery in flight at a time.
func TestWebhooks_SlowEndpointHoldsUpNoOne(t *testing.T) {
	slow, fast := startReceiver(t), startReceiver(t)
	wh := fastWebhooks()
	wh.Timeout, wh.Workers = 2*time.Second, 4
	s := webhookServer(t, dbKinds()[0], serverOpts{webhooks: wh})
	_, keyA := s.signup("Slow")
	_, keyB := s.signup("Fast")
	hs := s.createWebhook(keyA, slow.url+"/h", store.EventCredentialExpired)
	hf := s.createWebhook(keyB, fast.url+"/h", store.EventCredentialExpired)
	slow.control(map[string]any{"secret": hs.Secret, "mode": "hang"})
	fast.control(map[string]any{"secret": hf.Secret})
	for range 3 {
		s.do("POST", "/api/v1/webhooks/"+hs.ID+"/test", keyA, nil).want(t, http.StatusAccepted, "")
	}
	slow.waitLog(1)
	start := time.Now()
	for range 3 {
		s.do("POST", "/api/v1/webhooks/"+hf.ID+"/test", keyB, nil).want(t, http.StatusAccepted, "")
	}
	if got := fast.waitLog(3); len(got) != 3 || time.Since(start) > 3*time.Second {
		t.Fatalf("the fast endpoint got %d deliveries in %s", len(got), time.Since(start))
	}
	if n := len(slow.log()); n != 1 {
		t.Fatalf("the hanging endpoint has %d deliveries in flight, want 1", n)
	}
}
