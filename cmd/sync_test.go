package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

// startServe runs `agentkeys serve` as a process (SQLite in a temporary
// data directory, or PostgreSQL at dbURL) and returns its URL and the API
// key of a workspace signed up on it.
func startServe(t *testing.T, bin, dbURL string) (url, apiKey string, e *testEnv) {
	t.Helper()
	e = serveEnv(t)
	dataDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve", "--listen", addr, "--data-dir", dataDir}
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	c := exec.Command(bin, args...)
	c.Env = e.environ()
	stdout, _ := c.StdoutPipe()
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		t.Fatalf("serve: first line %q (%v); stderr: %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	url = "http://" + addr
	resp, err := http.Post(url+"/api/v1/signup", "application/json",
		strings.NewReader(`{"email":"sync@example.com","password":"correct horse battery","workspace":"Sync"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		APIKey string `json:"apiKey"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.APIKey == "" {
		t.Fatalf("signup: %d %v", resp.StatusCode, err)
	}
	return url, out.APIKey, e
}

// startUp runs `agentkeys up` as a process for e and returns its proxy URL.
func startUp(t *testing.T, bin string, e *testEnv, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up := exec.CommandContext(ctx, bin, append([]string{"up", "--listen", "127.0.0.1:0"}, args...)...)
	up.Env = e.environ()
	stdout, _ := up.StdoutPipe()
	var stderr strings.Builder
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		up.Wait()
		if t.Failed() {
			t.Logf("up's stderr:\n%s", stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export AGENTKEYS_PROXY_URL="); ok {
			go io.Copy(io.Discard, stdout)
			return v
		}
	}
	t.Fatalf("up printed no URL; stderr: %s", stderr.String())
	return ""
}

// TestSync_Binary: device A enables sync against a real `agentkeys serve`;
// device B joins with the phrase on stdin and runs `up`; a pxr_ token made
// on A works on B's proxy; revoked on A and synced, B's running proxy
// refuses it within the sync interval.
func TestSync_Binary(t *testing.T) {
	bin := agentkeysBinary(t)
	srvURL, apiKey, _ := startServe(t, bin, "")

	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	host := strings.TrimPrefix(upstream.URL, "http://")

	a := newEnv(t)
	a.init()
	a.must("credentials", "add", "--name", "Echo API", "--value", "sk-synced-value", "--allow-host", host)
	tok := strings.TrimSpace(a.must("agents", "create", "--name", "bot", "--credential", "Echo API"))
	r := a.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(apiKey + "\n") },
		"sync", "enable", "--server", srvURL, "--api-key", "-", "--name", "laptop")
	if r.code != 0 {
		t.Fatalf("sync enable: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	phrase := strings.TrimSpace(r.stdout)
	if len(strings.Fields(phrase)) != 24 || strings.Contains(r.stderr, phrase) {
		t.Fatalf("enable printed %q (stderr %q)", r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, apiKey) || strings.Contains(r.stdout+r.stderr, "sk-synced-value") {
		t.Fatal("enable printed a secret")
	}

	b := newEnv(t)
	b.init()
	// A typo in the phrase: refused with the word's position, nothing written.
	words := strings.Fields(phrase)
	words[4] += "q"
	r = b.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(strings.Join(words, " ")) },
		"sync", "join", "--server", srvURL, "--api-key", apiKey)
	if r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "word 5 of the recovery phrase") {
		t.Fatalf("join with a typo: %d %s", r.code, r.stderr)
	}
	if out := b.must("sync", "status"); !strings.Contains(out, "sync: off") {
		t.Fatalf("status after a refused join: %s", out)
	}
	b.mustStdin(phrase+"\n", "sync", "join", "--server", srvURL, "--api-key", apiKey, "--name", "desktop")
	var st cmd.SyncStatus
	if err := json.Unmarshal([]byte(b.must("sync", "status", "--json")), &st); err != nil || !st.Enabled || st.Pending != 0 || st.LastSync == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
	var devs struct {
		Devices []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(b.must("sync", "devices", "--json")), &devs); err != nil || len(devs.Devices) != 2 ||
		devs.Devices[0].Name != "laptop" || devs.Devices[1].Name != "desktop" || !devs.Devices[1].Current {
		t.Fatalf("devices: %+v %v", devs, err)
	}

	proxyURL := startUp(t, bin, b, "--sync-interval", "1s")
	call := func() int {
		req, _ := http.NewRequest("GET", proxyURL+"/v1/proxy", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(); code != 200 {
		t.Fatalf("A's token on B's proxy: %d", code)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != "Bearer sk-synced-value" {
		t.Fatalf("upstream saw %q", seen)
	}
	mu.Unlock()

	a.must("agents", "revoke", "bot", "--credential", "Echo API")
	a.must("sync")
	revoked := time.Now()
	for call() == 200 {
		if time.Since(revoked) > 10*time.Second {
			t.Fatal("B's running proxy still accepts the token 10 s after the revocation was synced")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revocation on A refused by B's proxy after %v (interval 1 s)", time.Since(revoked).Round(time.Millisecond))

	// A's own `up`, syncing only every minute, pushes a local change
	// within about a second of it.
	startUp(t, bin, a, "--sync-interval", "1m")
	time.Sleep(300 * time.Millisecond) // up's first sync
	a.must("credentials", "add", "--name", "made-while-up", "--value", "v", "--allow-host", host)
	changed := time.Now()
	// B's own up (or this sync) pulls it; only A's up can have pushed it.
	for b.must("sync"); !strings.Contains(b.must("credentials", "list"), "made-while-up"); b.must("sync") {
		if time.Since(changed) > 10*time.Second {
			t.Fatal("A's up did not push a local change within 10 s (its interval is 1 min)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a change on A reached B through A's up (interval 1 min) after %v", time.Since(changed).Round(time.Millisecond))

	// Revoking B on A stops B's sync at once.
	var ad struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	json.Unmarshal([]byte(a.must("sync", "devices", "--json")), &ad)
	a.must("sync", "revoke", ad.Devices[1].ID)
	if r := b.run("sync"); r.code != cmd.ExitUnauthorized || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("sync of a revoked device: %d %s", r.code, r.stderr)
	}
}

// TestSync_BadInput: every refusal has its exit code and a message that
// says what to do, and leaves sync off (nothing written).
func TestSync_BadInput(t *testing.T) {
	url, key := liveServer(t)
	e := newEnv(t)
	e.init()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"SyncOff", "", []string{"sync"}, cmd.ExitNotFound, "sync is not enabled on this device"},
		{"DevicesOff", "", []string{"sync", "devices"}, cmd.ExitNotFound, "sync is not enabled"},
		{"NoServer", "", []string{"sync", "enable", "--api-key", key}, cmd.ExitUsage, "--server is required"},
		{"NoKey", "", []string{"sync", "enable", "--server", url}, cmd.ExitUsage, "--api-key is required"},
		{"EmptyStdinKey", "", []string{"sync", "enable", "--server", url, "--api-key", "-"}, cmd.ExitUsage, "--api-key is required"},
		{"BadURL", "", []string{"sync", "enable", "--server", "ftp://x", "--api-key", key}, cmd.ExitUsage, "http(s) URL"},
		{"WrongKey", "", []string{"sync", "enable", "--server", url, "--api-key", "ak_ws_wrong"}, cmd.ExitUnauthorized, "the sync server says"},
		{"Unreachable", "", []string{"sync", "enable", "--server", dead, "--api-key", key}, cmd.ExitUnavailable, "cannot reach the sync server"},
		{"BothFromStdin", "x", []string{"sync", "join", "--server", url, "--api-key", "-"}, cmd.ExitUsage, "cannot both come from stdin"},
		{"ShortPhrase", "abandon ability", []string{"sync", "join", "--server", url, "--api-key", key}, cmd.ExitUsage, "has 2 words, not 24"},
		{"RevokeNoArg", "", []string{"sync", "revoke"}, cmd.ExitUsage, "DEVICE"},
		{"DisableOff", "", []string{"sync", "disable"}, cmd.ExitNotFound, "not enabled"},
		{"UpInterval", "", []string{"up", "--sync-interval", "10ms"}, cmd.ExitUsage, "--sync-interval must be 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(tc.stdin) }, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", r.code, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, key) {
				t.Fatal("the API key was printed")
			}
			if out := e.must("sync", "status"); !strings.Contains(out, "sync: off") {
				t.Fatalf("sync is on after a refusal: %s", out)
			}
		})
	}
	// Enabling twice is a conflict.
	e.mustStdin(key, "sync", "enable", "--server", url, "--api-key", "-")
	if r := e.run("sync", "enable", "--server", url, "--api-key", key); r.code != cmd.ExitConflict || !strings.Contains(r.stderr, "already enabled") {
		t.Fatalf("enable twice: %d %s", r.code, r.stderr)
	}
	e.must("sync", "disable")
	if out := e.must("sync", "status"); !strings.Contains(out, "sync: off") {
		t.Fatalf("status after disable: %s", out)
	}
}

// TestSync_PromptAndRotate: join asks for the phrase on a terminal (no
// echo); rotate-key prints a new phrase, cuts the other device off (exit 5,
// saying what to do) until it joins again with the new phrase.
func TestSync_PromptAndRotate(t *testing.T) {
	url, key := liveServer(t)
	a, b := newEnv(t), newEnv(t)
	a.init()
	b.init()
	a.must("credentials", "add", "--name", "one", "--value", "v1", "--allow-host", "api.example.com")
	phrase := strings.TrimSpace(a.mustStdin(key, "sync", "enable", "--server", url, "--api-key", "-"))
	var prompts []string
	r := b.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.PromptSecret = func(p string) (string, error) { prompts = append(prompts, p); return phrase, nil }
	}, "sync", "join", "--server", url, "--api-key", key)
	if r.code != 0 || len(prompts) != 1 || !strings.HasPrefix(prompts[0], "Recovery phrase") || strings.Contains(r.stdout+r.stderr, phrase) {
		t.Fatalf("join on a terminal: %d %q %q %q", r.code, prompts, r.stdout, r.stderr)
	}
	if !strings.Contains(b.must("credentials", "list"), "one") {
		t.Fatal("B did not pull")
	}

	r = a.run("sync", "rotate-key")
	newPhrase := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(strings.Fields(newPhrase)) != 24 || newPhrase == phrase || !strings.Contains(r.stderr, "1 record(s) sealed under the new key") {
		t.Fatalf("rotate-key: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := b.run("sync"); r.code != cmd.ExitUnauthorized || !strings.Contains(r.stderr, "`agentkeys sync join` with the current recovery phrase") {
		t.Fatalf("B after rotation: %d %s", r.code, r.stderr)
	}
	b.must("sync", "disable")
	b.mustStdin(newPhrase, "sync", "join", "--server", url, "--api-key", key)
	a.must("credentials", "add", "--name", "two", "--value", "v2", "--allow-host", "api.example.com")
	a.must("sync")
	b.must("sync")
	if out := b.must("credentials", "list"); !strings.Contains(out, "two") {
		t.Fatalf("B after rejoining: %s", out)
	}
}

// TestSync_UpInProcess: `up` in this process syncs in the background (so
// the race detector sees the goroutine): a change pushed by another device
// reaches it, and its log says so without a secret.
func TestSync_UpInProcess(t *testing.T) {
	url, key := liveServer(t)
	a, b := newEnv(t), newEnv(t)
	a.init()
	b.init()
	phrase := strings.TrimSpace(a.mustStdin(key, "sync", "enable", "--server", url, "--api-key", "-"))
	b.mustStdin(phrase, "sync", "join", "--server", url, "--api-key", key)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, errOut, done := b.startUp(t, ctx, "--listen", "127.0.0.1:0", "--sync-interval", "1s")
	a.must("credentials", "add", "--name", "pushed-by-a", "--value", "sk-in-process", "--allow-host", "api.example.com")
	a.must("sync")
	waitFor(t, func() bool { return strings.Contains(errOut.String(), "msg=synced applied=1") })
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("up exit %d: %s", r.code, errOut.String())
	}
	if strings.Contains(errOut.String(), "sk-in-process") || strings.Contains(errOut.String(), key) {
		t.Fatalf("up logged a secret:\n%s", errOut.String())
	}
	if !strings.Contains(b.must("credentials", "list"), "pushed-by-a") {
		t.Fatal("B's vault lacks the change its up pulled")
	}
}
