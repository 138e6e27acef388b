package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

// upstream is a loopback API that records requests. /status/N answers N.
type upstream struct{ *testkit.Upstream }

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	return &upstream{testkit.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		if r.URL.Path == "/status/404" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"nope"}`)
			return
		}
		io.WriteString(w, "hello from upstream")
	})}
}

func (u *upstream) host() string                       { return u.Host() }
func (u *upstream) last(t *testing.T) testkit.Received { return u.Last(t) }
func (u *upstream) count() int                         { return u.Count() }

func TestProxy_OneOff(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Local API", "--value", "sk-live-injected", "--allow-host", up.host())
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Local API"))

	// GET: the body goes to stdout, the credential to the upstream.
	out := e.must("proxy", tok, up.URL+"/v1/things?limit=2")
	got := up.last(t)
	if out != "hello from upstream" || got.Method != "GET" || got.Path != "/v1/things" || got.RawQuery != "limit=2" {
		t.Errorf("GET: out %q, upstream %+v", out, got)
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer sk-live-injected" {
		t.Errorf("upstream Authorization %q", a)
	}

	// POST with a JSON body, a header, and --include.
	out = e.must("proxy", tok, up.URL+"/emails", "--method", "POST", "--data", `{"to":"a@example.com"}`, "-H", "Idempotency-Key: 42", "-H", "Authorization: Bearer agent-tries-this", "--include")
	got = up.last(t)
	if got.Method != "POST" || got.Body != `{"to":"a@example.com"}` || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("Idempotency-Key") != "42" {
		t.Errorf("POST upstream: %+v", got)
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer sk-live-injected" {
		t.Errorf("injection did not replace the agent's Authorization: %q", a)
	}
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "X-Upstream: yes\r\n") || !strings.Contains(out, agentkeys.HeaderRequestID) || !strings.HasSuffix(out, "\r\n\r\nhello from upstream") {
		t.Errorf("--include output: %q", out)
	}

	// --data @file and --data - (stdin); --data alone means POST.
	file := filepath.Join(t.TempDir(), "body.txt")
	os.WriteFile(file, []byte("from a file"), 0o600)
	e.must("proxy", tok, up.URL+"/f", "--data", "@"+file)
	if got := up.last(t); got.Method != "POST" || got.Body != "from a file" || got.Header.Get("Content-Type") != "" {
		t.Errorf("@file: %+v", got)
	}
	e.mustStdin("from stdin", "proxy", tok, up.URL+"/s", "-X", "PUT", "--data", "-")
	if got := up.last(t); got.Method != "PUT" || got.Body != "from stdin" {
		t.Errorf("stdin: %+v", got)
	}
	if r := e.run("proxy", tok, up.URL+"/f", "--data", "@"+file+".missing"); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: %d %q", r.code, r.stderr)
	}

	// A body over the proxy's 10 MiB limit: exit 2, one error line.
	big := filepath.Join(t.TempDir(), "big.bin")
	os.WriteFile(big, bytes.Repeat([]byte("a"), 11<<20), 0o600)
	if r := e.run("proxy", tok, up.URL+"/big", "--data", "@"+big); r.code != cmd.ExitUsage || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
		t.Errorf("too large: %d %q", r.code, r.stderr)
	}

	// A 404 is printed and exits 0; with --fail it exits 8.
	if r := e.run("proxy", tok, up.URL+"/status/404"); r.code != 0 || r.stdout != `{"error":"nope"}` {
		t.Errorf("404 without --fail: %d %q", r.code, r.stdout)
	}
	r := e.run("proxy", tok, up.URL+"/status/404", "--fail")
	if r.code != cmd.ExitHTTPStatus || r.stdout != `{"error":"nope"}` || r.stderr != "error: the upstream answered with HTTP 404\n" {
		t.Errorf("404 with --fail: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// Refusals: nothing reaches the upstream.
	n := up.count()
	r = e.run("proxy", tok, "https://evil.example.com/steal")
	if r.code != cmd.ExitUnauthorized || !strings.HasPrefix(r.stderr, "error: destination evil.example.com is not on this credential's allowed hosts") {
		t.Errorf("evil host: %d %q", r.code, r.stderr)
	}
	// The owner path by credential name, and the workspace key.
	if out := e.must("proxy", "--credential", "local api", up.URL+"/owner"); out != "hello from upstream" {
		t.Errorf("owner: %q", out)
	}
	n++
	e.must("agents", "revoke", "bot", "--credential", "Local API")
	r = e.run("proxy", tok, up.URL+"/after-revoke")
	if r.code != cmd.ExitUnauthorized || r.stdout != "" {
		t.Errorf("revoked token: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if up.count() != n {
		t.Errorf("refused requests reached the upstream: %d, want %d", up.count(), n)
	}

	// Upstream down: exit 7.
	down := httptest.NewServer(http.NotFoundHandler())
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	e.must("credentials", "add", "--name", "Down", "--value", "x", "--allow-host", downHost)
	if r := e.run("proxy", "--credential", "Down", "http://"+downHost+"/"); r.code != cmd.ExitUpstream || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("upstream down: %d %q", r.code, r.stderr)
	}

	// The audit log has every request, the refusals included.
	var audit struct {
		Events []*agentkeys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(e.must("audit", "--json", "--agent", "bot")), &audit); err != nil {
		t.Fatal(err)
	}
	var denied, allowed int
	for _, ev := range audit.Events {
		switch ev.Decision {
		case agentkeys.DecisionDenied:
			denied++
		case agentkeys.DecisionAllowed:
			allowed++
		}
		if ev.AgentName != "bot" || strings.Contains(ev.Path, "?") {
			t.Errorf("audit row: %+v", ev)
		}
	}
	if allowed != 6 || denied != 3 || len(audit.Events) != 9 {
		t.Errorf("audit for bot: %d allowed, %d denied, want 6 and 3 (evil host, too large, the revoked token: its row names the agent)", allowed, denied)
	}
	// Every one-off call recorded its outcome before the vault was closed.
	var all struct {
		Events []*agentkeys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(e.must("audit", "--json")), &all); err != nil {
		t.Fatal(err)
	}
	for _, ev := range all.Events {
		if ev.Decision == agentkeys.DecisionPending {
			t.Errorf("row left pending: %+v", ev)
		}
	}
	if out := e.must("audit", "--credential", "Down", "--limit", "1"); !strings.Contains(out, "error\tUPSTREAM_UNREACHABLE") {
		t.Errorf("audit of the failed request: %q", out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = testkit.SyncBuffer

func TestAudit_Follow(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Local", "--value", "v", "--allow-host", up.host())
	e.must("proxy", "--credential", "Local", up.URL+"/before")

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan result, 1)
	go func() {
		done <- e.runCtx(ctx, func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.Out = out }, "audit", "--follow", "--json", "--interval", "20ms")
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), `"/before"`) })
	e.must("proxy", "--credential", "Local", up.URL+"/during")
	waitFor(t, func() bool { return strings.Contains(out.String(), `"/during"`) })
	cancel()
	r := <-done
	if r.code != 0 {
		t.Fatalf("follow ended with %d: %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("follow printed %d lines: %q", len(lines), lines)
	}
	for i, want := range []string{"/before", "/during"} {
		var ev agentkeys.AuditEvent
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil || ev.Path != want || ev.Decision != agentkeys.DecisionAllowed || ev.Status != 200 {
			t.Errorf("line %d: %v %+v", i, err, ev)
		}
	}
}

// startUp runs `agentkeys up` with args until ctx ends, and returns the
// base URL it printed, its stderr, and where its result comes.
func (e *testEnv) startUp(t *testing.T, ctx context.Context, args ...string) (base string, errOut *syncBuffer, done <-chan result) {
	t.Helper()
	out := &syncBuffer{}
	errOut = &syncBuffer{}
	res := make(chan result, 1)
	go func() {
		res <- e.runCtx(ctx, func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.Out, ios.ErrOut = out, errOut }, append([]string{"up"}, args...)...)
	}()
	waitFor(t, func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if v, ok := strings.CutPrefix(l, "export AGENTKEYS_PROXY_URL="); ok {
				base = v
				return true
			}
		}
		return false
	})
	return base, errOut, res
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUp_NonLoopbackListen: --listen on every interface warns, and the
// Host guard then accepts IP literals and loopback names but still refuses
// domain names (DNS rebinding).
func TestUp_NonLoopbackListen(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Local", "--value", "sk-x", "--allow-host", up.host())
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Local"))

	ctx, cancel := context.WithCancel(context.Background())
	base, errOut, done := e.startUp(t, ctx, "--listen", "0.0.0.0:0")
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("URL %q", base)
	}
	if !strings.Contains(errOut.String(), "warning: listening on") || !strings.Contains(errOut.String(), "not loopback") {
		t.Errorf("no warning: %q", errOut.String())
	}
	for host, want := range map[string]int{
		"evil.example.com":  http.StatusForbidden,
		"evil.example.com.": http.StatusForbidden,
		"192.0.2.10:8787":   http.StatusOK, // an IP literal, as a container would use
		"localhost":         http.StatusOK,
		"127.0.0.1":         http.StatusOK,
	} {
		req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
		if resp.Header.Get(agentkeys.HeaderRequestID) == "" {
			t.Errorf("Host %s: no %s on the answer", host, agentkeys.HeaderRequestID)
		}
	}
	// Other paths: a JSON 404, also with a request id.
	resp, err := http.Get(base + "/v1/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(agentkeys.HeaderRequestID) == "" {
		t.Errorf("/v1/other: %d %v", resp.StatusCode, resp.Header)
	}
	cancel()
	if r := <-done; r.code != 0 {
		t.Errorf("up exit %d: %s", r.code, errOut.String())
	}
}

func TestUp_ListenBusy(t *testing.T) {
	e := newEnv(t)
	e.init()
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	r := e.run("up", "--listen", strings.TrimPrefix(busy.URL, "http://"))
	if r.code != cmd.ExitUnavailable || !strings.HasPrefix(r.stderr, "error: cannot listen on ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("busy port: %d %q", r.code, r.stderr)
	}
}

// TestUp_ShutdownTimeoutRecordsCutOffRequests: a request still running when
// --shutdown-timeout runs out is cut off, and its audit outcome is recorded
// before the vault is closed (the row does not stay "pending").
func TestUp_ShutdownTimeoutRecordsCutOffRequests(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Slow", "--value", "sk-x", "--allow-host", strings.TrimPrefix(slow.URL, "http://"))
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Slow"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, errOut, done := e.startUp(t, ctx, "--listen", "127.0.0.1:0", "--shutdown-timeout", "50ms")
	go func() {
		req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(agentkeys.HeaderTargetURL, slow.URL+"/slow")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	cancel()
	if r := <-done; r.code == 0 {
		t.Errorf("up exit 0 although a request was cut off: %s", errOut.String())
	}
	if strings.Contains(errOut.String(), "outcome not written") {
		t.Errorf("the vault was closed before the cut-off request's outcome was recorded:\n%s", errOut.String())
	}
	var audit struct {
		Events []*agentkeys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(e.must("audit", "--json", "--credential", "Slow")), &audit); err != nil {
		t.Fatal(err)
	}
	if len(audit.Events) != 1 || audit.Events[0].Decision == agentkeys.DecisionPending {
		for _, ev := range audit.Events {
			t.Logf("row: %+v", ev)
		}
		t.Fatalf("want one completed row for the cut-off request, got %d", len(audit.Events))
	}
}
