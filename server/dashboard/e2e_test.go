package dashboard_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDashboard_Browser runs e2e/e2e.mjs: playwright-core drives Debian's
// chromium through the seed's Getting Started steps 1–5 on a built
// `agentkeys serve --allow-loopback-targets` (SQLite) — sign up, add a
// credential whose allowed host is a loopback upstream, create an agent,
// assign, read the token — and this test then runs the curl example the
// page showed, which reaches the upstream with the credential injected.
// Screenshots (desktop and phone width) go to a temporary directory, or to
// AGENTKEYS_SCREENSHOTS when set. It needs node, `npm ci` in e2e and
// /usr/bin/chromium (or CHROMIUM); without them it skips, except under
// CI=true.
func TestDashboard_Browser(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if testing.Short() {
		t.Skip("builds the binary and starts a browser; skipped with -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: the dashboard's browser test needs it")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		skip("%s is missing: apt-get install chromium", chromium)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		skip("curl is not installed: the test runs the page's curl example")
	}
	dir, _ := filepath.Abs("e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		skip("server/dashboard/e2e/node_modules is missing: run `npm ci --prefix server/dashboard/e2e`")
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "agentkeys")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/agentkeys/agentkeys/cmd/agentkeys").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var mu sync.Mutex
	var seen []string // Authorization headers and bodies the upstream got
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		io.WriteString(w, `{"id":"email_1"}`)
	}))
	defer up.Close()
	upHost := strings.TrimPrefix(up.URL, "http://")

	key := make([]byte, 32)
	rand.Read(key)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--allow-loopback-targets", "--data-dir", filepath.Join(tmp, "server"))
	srv.Env = append(os.Environ(), "AGENTKEYS_HOME="+filepath.Join(tmp, "home"), "AGENTKEYS_SERVER_KEY="+base64.StdEncoding.EncodeToString(key), "AGENTKEYS_DATABASE_URL=")
	stdout, _ := srv.StdoutPipe()
	var stderr strings.Builder
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	lines := bufio.NewReader(stdout)
	var dashboard string
	for dashboard == "" {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("serve printed no dashboard URL (%v); stderr: %s", err, stderr.String())
		}
		if m := regexp.MustCompile(`^dashboard: (http://127\.0\.0\.1:\d+)/$`).FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			dashboard = m[1]
		}
	}
	go io.Copy(io.Discard, lines)

	shots := os.Getenv("AGENTKEYS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	const canary = "re_dashboard_canary_5b1e"
	c := exec.CommandContext(ctx, node, "e2e.mjs")
	c.Dir = dir
	c.Env = append(os.Environ(), "AGENTKEYS_URL="+dashboard, "UPSTREAM_HOST="+upHost, "CANARY="+canary, "SCREENSHOTS="+shots, "CHROMIUM="+chromium)
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "e2e: PASS") {
		t.Fatalf("node e2e.mjs: %v\n%s\nserver stderr: %s", err, out, stderr.String())
	}
	var res struct{ Token, Curl string }
	m := regexp.MustCompile(`e2e: RESULT (.*)`).FindSubmatch(out)
	if m == nil || json.Unmarshal(m[1], &res) != nil {
		t.Fatalf("no result in:\n%s", out)
	}

	// Step 5: the seed's curl, as the token page showed it. The page's
	// target is https://<allowed host>/; the loopback upstream speaks
	// plain HTTP, so only the scheme is changed.
	script := strings.ReplaceAll(res.Curl, "https://"+upHost, "http://"+upHost)
	if !strings.Contains(script, "X-Target-Url: http://"+upHost) || !strings.HasPrefix(script, "curl -X POST "+dashboard+"/v1/proxy") {
		t.Fatalf("curl example:\n%s", res.Curl)
	}
	script = strings.Replace(script, "curl ", curl+" -sS --fail-with-body ", 1)
	got, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "email_1") {
		t.Fatalf("the page's curl: %v\n%s", err, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != `Bearer `+canary+` {"text": "Sent via AgentKeys"}` {
		t.Fatalf("upstream got %q, want the credential injected and the example's body", seen)
	}
	if strings.Contains(stderr.String(), canary) || strings.Contains(stderr.String(), res.Token) {
		t.Fatal("the server's logs hold a secret")
	}
	shotsList, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	t.Logf("%d screenshots in %s", len(shotsList), shots)
}
