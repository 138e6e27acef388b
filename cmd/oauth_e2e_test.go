package cmd_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

// mockOAuth is oauth2-mock-server (cmd/testdata/oauth2-mock-server, pinned
// by its package-lock.json) running as a subprocess.
type mockOAuth struct {
	url    string
	revoke string // while this file exists, refreshes answer invalid_grant
	mu     sync.Mutex
	lines  []string
}

// waitRefreshes waits (at most 10 s) until the mock has logged want
// refreshes: its log lines are read from its output as they come, after the
// call that caused them may have returned.
func (m *mockOAuth) waitRefreshes(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for m.refreshes() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return m.refreshes()
}

func (m *mockOAuth) refreshes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.lines {
		if strings.HasPrefix(l, "refresh ") {
			n++
		}
	}
	return n
}

func startMockOAuth(t *testing.T) *mockOAuth {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if _, err := exec.LookPath("node"); err != nil {
		skip("node is not installed: the oauth2-mock-server end-to-end test needs it")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "oauth2-mock-server"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oauth2-mock-server", "package.json")); err != nil {
		skip("cmd/testdata/oauth2-mock-server/node_modules is missing: run `npm ci --prefix cmd/testdata/oauth2-mock-server`")
	}
	m := &mockOAuth{revoke: filepath.Join(t.TempDir(), "revoked")}
	ctx, cancel := context.WithCancel(context.Background())
	c := exec.CommandContext(ctx, "node", "server.mjs")
	c.Dir = dir
	c.Env = append(os.Environ(), "REVOKE_FILE="+m.revoke)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); c.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			m.lines = append(m.lines, sc.Text())
			m.mu.Unlock()
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				ready <- u
			}
		}
	}()
	select {
	case m.url = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("oauth2-mock-server did not start")
	}
	return m
}

// TestBinary_OAuthMockServerE2E: connect (PKCE, loopback), forced refresh,
// refresh inside `up` before expiry with the rotated refresh token, and
// invalid_grant, all against oauth2-mock-server.
func TestBinary_OAuthMockServerE2E(t *testing.T) {
	bin := agentkeysBinary(t)
	m := startMockOAuth(t)
	api := testkit.NewUpstream(t, nil)
	apiHost := strings.TrimPrefix(api.URL, "http://")
	e := newEnv(t)
	e.init()
	e.mustBin("mock-client-secret\n", "oauth", "apps", "add", "custom", "--client-id", "agentkeys-e2e", "--auth-url", m.url+"/authorize",
		"--token-url", m.url+"/token", "--allow-host", apiHost, "--scope", "read", "--client-secret", "-")

	connectTracker(t, bin, e, m.url+"/authorize?", testkit.ApproveURL)
	first := e.secret(t)
	if strings.Count(first.Value, ".") != 2 || first.RefreshToken == "" {
		t.Fatal("the stored access token is not the mock server's JWT, or there is no refresh token")
	}

	if out := e.mustBin("", "credentials", "refresh", "Tracker"); !strings.Contains(out, "access token expires") || m.waitRefreshes(1) != 1 {
		t.Fatalf("refresh: %q, refreshes %d", out, m.refreshes())
	}
	second := e.secret(t)
	// (The mock's JWTs are deterministic within a second; its refresh
	// tokens are fresh UUIDs.)
	if second.RefreshToken == first.RefreshToken || strings.Count(second.Value, ".") != 2 {
		t.Fatal("the rotated pair was not stored")
	}

	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Tracker"))
	url, _ := e.startOAuthUp(t)
	e.expire(t)
	if status, body, err := proxyGet(url, tok, api.URL+"/v1/things"); err != nil || status != 200 {
		t.Fatalf("through up: %d %s %v", status, body, err)
	}
	third := e.secret(t)
	got := api.All()
	if m.waitRefreshes(2) != 2 || third.RefreshToken == second.RefreshToken || len(got) != 1 || got[0].Header.Get("Authorization") != "Bearer "+third.Value {
		t.Fatalf("up did not refresh before injecting (refreshes %d)", m.refreshes())
	}

	os.WriteFile(m.revoke, nil, 0o600)
	e.expire(t)
	status, body, err := proxyGet(url, tok, api.URL+"/v1/things")
	if err != nil || status != 401 || !strings.Contains(body, agentkeys.ECREDENTIAL) || !strings.Contains(body, "agentkeys credentials connect") {
		t.Fatalf("after revoke: %d %s %v", status, body, err)
	}
}
