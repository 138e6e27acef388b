package cmd_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"

	_ "modernc.org/sqlite"
)

// hasTerminalControl reports whether s holds a byte or character that a
// terminal would act on or that hides text: C0/C1 controls (but newline and tab),
// bidi overrides and isolates.
func hasTerminalControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
	})
}

// TestBinary_TerminalInjectionInNames: the built binary refuses names that
// carry terminal controls or bidi characters (exit 2, nothing written, the
// message does not replay them), and when such a name is in storage anyway
// (written by another tool), its tables print it neutralised.
func TestBinary_TerminalInjectionInNames(t *testing.T) {
	bin := agentkeysBinary(t)
	e := newEnv(t)
	e.init()
	before := e.state()
	for _, name := range []string{"evil\x1b]0;owned\x07", "x\x1b[2J\x1b[H", "x\u009b31m", "invoice\u202Efdp.exe", "a\u2066b", "zero\u200Bwidth", "bad\xffutf8"} {
		c := exec.Command(bin, "credentials", "add", "--name", name, "--value", "v", "--allow-host", "api.example.com")
		c.Env = e.environ()
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("add %q: err %v, want exit 2 (stderr %q)", name, err, stderr.String())
		}
		if hasTerminalControl(stdout.String() + stderr.String()) {
			t.Errorf("add %q: output replays a control character: %q", name, stdout.String()+stderr.String())
		}
		c = exec.Command(bin, "agents", "create", "--name", name)
		c.Env = e.environ()
		if out, err := c.CombinedOutput(); err == nil || hasTerminalControl(string(out)) {
			t.Errorf("agents create %q: err %v, output %q", name, err, out)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("refused names changed the vault:\n%s", after)
	}

	// A name already in storage (another tool wrote the file) is shown
	// neutralised by every table.
	e.must("credentials", "add", "--name", "Plain", "--value", "v", "--allow-host", "api.example.com")
	e.must("agents", "create", "--name", "bot", "--credential", "Plain")
	db, err := sql.Open("sqlite", filepath.Join(e.home, "vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE credentials SET name = ?`, "Pl\x1b]0;owned\x07ain\u202E\u009b2J"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE agents SET name = ?`, "b\x1b[31mot"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, args := range [][]string{{"credentials", "list"}, {"agents", "list"}} {
		c := exec.Command(bin, args...)
		c.Env = e.environ()
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
		if hasTerminalControl(string(out)) || !strings.Contains(string(out), `\x1b`) {
			t.Errorf("%v printed %q, want the controls escaped", args, out)
		}
	}
}

// TestBinary_EchoRedaction: an upstream that echoes the injected value
// (compressed when it may) has it replaced, through the one-off `proxy`
// and through `agentkeys up`; a credential added with --raw-responses gets
// the upstream's bytes as they were.
func TestBinary_EchoRedaction(t *testing.T) {
	bin := agentkeysBinary(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, "echo: "+r.Header.Get("Authorization"))
			zw.Close()
			return
		}
		io.WriteString(w, "echo: "+r.Header.Get("Authorization"))
	}))
	defer upstream.Close()
	host := strings.TrimPrefix(upstream.URL, "http://")
	const secret, raw = "sk-CANARY-binary-echo-1", "sk-CANARY-binary-raw-2"

	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Echo", "--value", secret, "--allow-host", host)
	e.must("credentials", "add", "--name", "Raw", "--value", raw, "--allow-host", host, "--raw-responses")
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Echo"))
	rawTok := strings.TrimSpace(e.must("agents", "create", "--name", "bot2", "--credential", "Raw"))

	c := exec.Command(bin, "proxy", tok, upstream.URL+"/", "-i", "-H", "Accept-Encoding: br, gzip")
	c.Env = e.environ()
	out, err := c.CombinedOutput()
	if err != nil || strings.Contains(string(out), secret) || strings.Count(string(out), agentkeys.RedactedEcho) != 2 {
		t.Fatalf("proxy: %v\n%s", err, out)
	}

	proxyURL := startUpBinary(t, bin, e)
	get := func(token string) (string, http.Header) {
		req, _ := http.NewRequest("GET", proxyURL+"/v1/proxy", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header
	}
	if body, h := get(tok); body != "echo: Bearer "+agentkeys.RedactedEcho || h.Get("X-Echo") != "Bearer "+agentkeys.RedactedEcho {
		t.Fatalf("up: body %q, X-Echo %q", body, h.Get("X-Echo"))
	}
	if body, h := get(rawTok); h.Get("Content-Encoding") != "gzip" || h.Get("X-Echo") != "Bearer "+raw || strings.Contains(body, agentkeys.RedactedEcho) {
		t.Fatalf("raw credential: body %q, header %v", body, h)
	}
}

// startUpBinary runs the built `agentkeys up` on 127.0.0.1:0 until the test
// ends and returns the base URL it printed.
func startUpBinary(t *testing.T, bin string, e *testEnv) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	up := exec.CommandContext(ctx, bin, "up", "--listen", "127.0.0.1:0")
	up.Env = e.environ()
	stdout, _ := up.StdoutPipe()
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Process.Signal(syscall.SIGTERM); up.Wait(); cancel() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export AGENTKEYS_PROXY_URL="); ok {
			go io.Copy(io.Discard, stdout)
			return v
		}
	}
	t.Fatal("up printed no AGENTKEYS_PROXY_URL")
	return ""
}

// TestBinary_UnauthenticatedRefusalsSampled: simple GETs without a valid
// token (what any local process or a web page can send to `agentkeys up`)
// do not each add an audit row to vault.db; requests with a valid token do.
func TestBinary_UnauthenticatedRefusalsSampled(t *testing.T) {
	bin := agentkeysBinary(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "K", "--value", "sk-sample-1", "--allow-host", strings.TrimPrefix(upstream.URL, "http://"))
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "K"))
	base := startUpBinary(t, bin, e)
	send := func(auth string) int {
		req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
		req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 200; i++ {
		auth := []string{"", "Bearer pxr_guess" + strings.Repeat("x", i%7), "Basic Zm9vOmJhcg=="}[i%3]
		if st := send(auth); st != http.StatusUnauthorized {
			t.Fatalf("unauthenticated request: %d", st)
		}
	}
	for i := 0; i < 5; i++ {
		if st := send("Bearer " + tok); st != http.StatusOK {
			t.Fatalf("valid token: %d", st)
		}
	}
	var list struct {
		Events []agentkeys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(e.must("audit", "--json", "--limit", "1000")), &list); err != nil {
		t.Fatal(err)
	}
	denied, allowed := 0, 0
	for _, r := range list.Events {
		switch r.Decision {
		case agentkeys.DecisionDenied:
			denied++
		case agentkeys.DecisionAllowed, agentkeys.DecisionPending: // the last outcome may not be imported yet
			allowed++
		}
	}
	if allowed != 5 || denied < 1 || denied > 2 {
		t.Fatalf("audit rows: %d allowed, %d denied (want 5, and 1 per minute for 200 unauthenticated)", allowed, denied)
	}
}
