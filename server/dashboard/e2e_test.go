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

	"github.com/agentkeys/agentkeys/internal/testkit"
)

// TestDashboard_Browser runs e2e/e2e.mjs: playwright-core drives Debian's
// chromium through the seed's Getting Started steps 1–5 on a built
// `agentkeys serve --allow-loopback-targets` (SQLite) — sign up, add a
// credential whose allowed host is a loopback upstream, create an agent,
// assign, read the token — and this test then runs the curl example the
// page showed, which reaches the upstream with the credential injected.
// Then the assignment is revoked in the browser, a member is invited on
// Settings → Team and accepts the link in a second browser (setting a
// password), is offered no delete while a forged one gets 403, and the same curl is refused without reaching the
// upstream.
// Last the script crawls every page reachable by GET links, as the owner
// and as a member: on each no secret in the HTML, no request answered
// 4xx/5xx, no console error, no serious or critical axe-core violation in
// the light or the dark colour scheme, and a first load (cache disabled)
// of at most 150 KiB; the test logs the page weights.
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
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--allow-loopback-targets", "--data-dir", filepath.Join(tmp, "server"))
	srv.Env = append(os.Environ(), "AGENTKEYS_HOME="+filepath.Join(tmp, "home"), "AGENTKEYS_SERVER_KEY="+base64.StdEncoding.EncodeToString(key), "AGENTKEYS_DATABASE_URL=")
	stdout, _ := srv.StdoutPipe()
	stderr := &testkit.SyncBuffer{} // written by exec's goroutine while the test reads it
	srv.Stderr = stderr
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
	nodeErr := &testkit.SyncBuffer{}
	c := exec.CommandContext(ctx, node, "e2e.mjs")
	c.Dir = dir
	c.Env = append(os.Environ(), "AGENTKEYS_URL="+dashboard, "UPSTREAM_HOST="+upHost, "CANARY="+canary, "SCREENSHOTS="+shots, "CHROMIUM="+chromium)
	c.Stderr = nodeErr
	stdin, _ := c.StdinPipe()
	nodeOut, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); c.Process.Kill(); c.Wait() }()
	out := bufio.NewReader(nodeOut)
	var seenOut strings.Builder
	// await reads the script's output until a line starting with prefix.
	await := func(prefix string) string {
		for {
			line, err := out.ReadString('\n')
			seenOut.WriteString(line)
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix))
			}
			if err != nil {
				t.Fatalf("node e2e.mjs ended before %q: %v\n%s\n%s\nserver stderr: %s", prefix, err, seenOut.String(), nodeErr.String(), stderr.String())
			}
		}
	}
	var res struct{ Token, Curl string }
	if err := json.Unmarshal([]byte(await("e2e: RESULT ")), &res); err != nil {
		t.Fatal(err)
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
	if seen := received(); len(seen) != 1 || seen[0] != `Bearer `+canary+` {"text": "Sent via AgentKeys"}` {
		t.Fatalf("upstream got %q, want the credential injected and the example's body", seen)
	}

	// Revoke in the UI: the same curl is refused and reaches nothing.
	io.WriteString(stdin, "next\n")
	await("e2e: REVOKED")
	await("e2e: MEMBER") // a second browser as a member: no delete offered, a forged one refused (403)
	await("e2e: PASS")
	await("e2e: CRAWLED")
	var weights []string
	for _, line := range strings.Split(seenOut.String(), "\n") {
		if w, ok := strings.CutPrefix(line, "e2e: WEIGHT "); ok {
			weights = append(weights, w)
		}
	}
	if len(weights) < 4 {
		t.Fatalf("the crawl weighed %d pages:\n%s", len(weights), seenOut.String())
	}
	t.Logf("first-load weight (bytes, uncompressed, cache disabled), budget 153600:\n%s", strings.Join(weights, "\n"))
	got, err = exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
	if err == nil || !strings.Contains(string(got), "401") && !strings.Contains(string(got), "403") {
		t.Fatalf("the curl after revoking: %v\n%s", err, got)
	}
	if seen := received(); len(seen) != 1 {
		t.Fatalf("the upstream was reached after revoking: %q", seen)
	}
	if strings.Contains(stderr.String(), canary) || strings.Contains(stderr.String(), res.Token) {
		t.Fatal("the server's logs hold a secret")
	}
	shotsList, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	t.Logf("%d screenshots in %s", len(shotsList), shots)
}
