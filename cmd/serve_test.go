package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

// serveEnv is a hermetic environment for `serve`: a temporary
// AGENTKEYS_HOME and a random AGENTKEYS_SERVER_KEY.
func serveEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newEnv(t)
	k := make([]byte, 32)
	rand.Read(k)
	e.vars["AGENTKEYS_SERVER_KEY"] = base64.StdEncoding.EncodeToString(k)
	return e
}

// serveCmd runs `serve args…` (or `serve create-workspace …`) built by
// NewCmdServe with the given capture functions, and returns the exit code.
func serveCmd(t *testing.T, e *testEnv, runF func(context.Context, *cmd.ServeOptions) error,
	createF func(context.Context, *cmd.CreateWorkspaceOptions) error, args ...string) (result, *cmd.Factory) {
	t.Helper()
	ios, _, out, errOut := cmd.Test()
	f := cmd.NewFactory(ios, e.getenv)
	c := cmd.NewCmdServe(f, runF, createF)
	c.SetArgs(args)
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	err := c.ExecuteContext(t.Context())
	return result{stdout: out.String(), stderr: errOut.String(), code: cmd.ExitCode(err)}, f
}

func TestServe_Options(t *testing.T) {
	e := serveEnv(t)
	var got *cmd.ServeOptions
	capture := func(_ context.Context, o *cmd.ServeOptions) error { got = o; return nil }
	if r, _ := serveCmd(t, e, capture, nil); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.Listen != "127.0.0.1:8080" || got.Signup != "open" || got.ShutdownTimeout != 30*time.Second ||
		got.Store.DataDir != filepath.Join(e.home, "server") || got.Store.DatabaseURL != "" || got.AllowLoopbackTargets {
		t.Fatalf("defaults = %+v", got)
	}
	e.vars["AGENTKEYS_DATABASE_URL"] = "postgres://db/agentkeys"
	if r, _ := serveCmd(t, e, capture, nil, "--listen", "0.0.0.0:9000", "--behind-proxy", "--signup", "closed",
		"--allow-loopback-targets", "--shutdown-timeout", "5s", "--server-key-file", "/k"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.Listen != "0.0.0.0:9000" || !got.BehindProxy || got.Signup != "closed" || !got.AllowLoopbackTargets ||
		got.ShutdownTimeout != 5*time.Second || got.Store.DatabaseURL != "postgres://db/agentkeys" || got.Store.ServerKeyFile != "/k" {
		t.Fatalf("parsed = %+v", got)
	}
}

// TestServe_SMTPOptions: the SMTP URL comes from the flag or
// AGENTKEYS_SMTP_URL (which keeps its password out of the process list).
func TestServe_SMTPOptions(t *testing.T) {
	e := serveEnv(t)
	var got *cmd.ServeOptions
	capture := func(_ context.Context, o *cmd.ServeOptions) error { got = o; return nil }
	e.vars["AGENTKEYS_SMTP_URL"] = "smtps://u:pw@mail.example.com"
	if r, _ := serveCmd(t, e, capture, nil, "--smtp-from", "agentkeys <noreply@example.com>", "--public-url", "https://k.example.com"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.SMTPURL != "smtps://u:pw@mail.example.com" || got.PublicURL != "https://k.example.com" {
		t.Fatalf("parsed = %+v", got)
	}
}

// TestServe_BadOptions: usage errors exit 2 and start nothing.
func TestServe_BadOptions(t *testing.T) {
	never := func(context.Context, *cmd.ServeOptions) error { t.Fatal("ran with bad options"); return nil }
	cases := map[string][]string{
		"Signup":          {"--signup", "maybe"},
		"PlainPublic":     {"--listen", "0.0.0.0:8080"},
		"PlainAll":        {"--listen", ":8080"},
		"HalfTLS":         {"--tls-cert", "c.pem"},
		"BadListen":       {"--listen", "nowhere"},
		"ZeroGrace":       {"--shutdown-timeout", "0s"},
		"ExtraArg":        {"now"},
		"CreateNoEmail":   {"create-workspace", "--workspace", "A"},
		"CreateNoName":    {"create-workspace", "--email", "a@example.com"},
		"CreateExtraArgs": {"create-workspace", "--email", "a@example.com", "--workspace", "A", "more"},
		"SMTPNoFrom":      {"--smtp-url", "smtp://mail.example.com", "--public-url", "https://k.example.com"},
		"SMTPNoPublicURL": {"--smtp-url", "smtp://mail.example.com", "--smtp-from", "noreply@example.com"},
		"SMTPBadURL":      {"--smtp-url", "mail.example.com:25", "--smtp-from", "noreply@example.com", "--public-url", "https://k.example.com"},
		"FromWithoutSMTP": {"--smtp-from", "noreply@example.com"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			e := serveEnv(t)
			r, _ := serveCmd(t, e, never, func(context.Context, *cmd.CreateWorkspaceOptions) error {
				t.Fatal("ran with bad options")
				return nil
			}, args...)
			if r.code != cmd.ExitUsage {
				t.Fatalf("exit = %d, want %d", r.code, cmd.ExitUsage)
			}
			if _, err := os.Stat(filepath.Join(e.home, "server")); !os.IsNotExist(err) {
				t.Fatalf("data directory created by a refused command")
			}
		})
	}
}

// TestServe_ServerKeyRefusals: no key, a bad key and an unreadable key
// file refuse to start and create nothing.
func TestServe_ServerKeyRefusals(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"NoKey", map[string]string{"AGENTKEYS_SERVER_KEY": ""}, nil, cmd.ExitUnavailable},
		{"BadKey", map[string]string{"AGENTKEYS_SERVER_KEY": "not-a-key"}, nil, cmd.ExitUsage},
		{"ShortKey", map[string]string{"AGENTKEYS_SERVER_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}, nil, cmd.ExitUsage},
		{"MissingFile", nil, []string{"--server-key-file", "/nonexistent/key"}, cmd.ExitUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := serveEnv(t)
			for k, v := range tc.env {
				e.vars[k] = v
			}
			var opts *cmd.ServeOptions
			serveCmd(t, e, func(_ context.Context, o *cmd.ServeOptions) error { opts = o; return nil }, nil, tc.args...)
			err := cmd.RunServe(t.Context(), opts)
			if code := cmd.ExitCode(err); code != tc.code {
				t.Fatalf("exit = %d (%v), want %d", code, err, tc.code)
			}
			if strings.Contains(err.Error(), e.vars["AGENTKEYS_SERVER_KEY"]) && e.vars["AGENTKEYS_SERVER_KEY"] != "" {
				t.Fatal("the message quotes the key")
			}
			if _, err := os.Stat(filepath.Join(e.home, "server")); !os.IsNotExist(err) {
				t.Fatalf("data directory created without a usable key")
			}
		})
	}
}

// TestServe_Run: create a workspace with sign-up closed, serve, use the
// key, stop on cancel; a restart with another key refuses to start.
func TestServe_Run(t *testing.T) {
	e := serveEnv(t)
	var created *cmd.CreateWorkspaceOptions
	serveCmd(t, e, nil, func(_ context.Context, o *cmd.CreateWorkspaceOptions) error { created = o; return nil },
		"create-workspace", "--email", "Owner@Example.com", "--workspace", "Acme", "--json")
	ios, _, out, _ := cmd.Test()
	created.IO = ios
	if err := cmd.RunCreateWorkspace(t.Context(), created); err != nil {
		t.Fatal(err)
	}
	var cw struct {
		Workspace struct{ ID, Name string }
		Email     string
		APIKey    string `json:"apiKey"`
	}
	if err := json.Unmarshal(out.Bytes(), &cw); err != nil || !agentkeys.IsWorkspaceKey(cw.APIKey) || cw.Email != "owner@example.com" || cw.Workspace.Name != "Acme" {
		t.Fatalf("create-workspace printed %s (%v)", out, err)
	}

	var opts *cmd.ServeOptions
	serveCmd(t, e, func(_ context.Context, o *cmd.ServeOptions) error { opts = o; return nil }, nil,
		"--listen", "127.0.0.1:0", "--signup", "closed")
	sios, _, sout, serr := cmd.Test()
	opts.IO = sios
	ready := make(chan string, 1)
	opts.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmd.RunServe(ctx, opts) }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	get := func(path, key string, body string) int {
		method := "GET"
		var r io.Reader
		if body != "" {
			method, r = "POST", strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, r)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/readyz", "", ""); s != 200 {
		t.Fatalf("/readyz = %d", s)
	}
	var dashboard string // the page the dashboard's URL leads to
	if resp, err := http.Get(base + "/"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && resp.Request.URL.Path == "/login" && strings.Contains(string(b), "Log in") {
			dashboard = resp.Request.URL.Path
		}
	}
	if s := get("/api/v1/workspace/status", cw.APIKey, ""); s != 200 {
		t.Fatalf("status with the created key = %d", s)
	}
	if s := get("/api/v1/signup", "", `{"email":"x@example.com","password":"long enough","workspace":"X"}`); s != 403 {
		t.Fatalf("sign-up while closed = %d, want 403", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel = %v", err)
	}
	if !strings.Contains(sout.String(), "listening on "+base) {
		t.Fatalf("stdout = %q", sout)
	}
	// The dashboard's address, printed at start, is the page it answered.
	if !strings.Contains(sout.String(), "\ndashboard: "+base+"/\n") || dashboard == "" {
		t.Fatalf("stdout = %q, want the line %q (the page at / answered %q)", sout, "dashboard: "+base+"/", dashboard)
	}
	if strings.Contains(sout.String()+serr.String(), cw.APIKey) || strings.Contains(sout.String()+serr.String(), e.vars["AGENTKEYS_SERVER_KEY"]) {
		t.Fatal("serve printed a key")
	}

	// Restart with another server key: refused, exit 6.
	k := make([]byte, 32)
	rand.Read(k)
	opts.Getenv = func(name string) string {
		if name == "AGENTKEYS_SERVER_KEY" {
			return base64.StdEncoding.EncodeToString(k)
		}
		return e.getenv(name)
	}
	err := cmd.RunServe(t.Context(), opts)
	if cmd.ExitCode(err) != cmd.ExitUnavailable || !strings.Contains(err.Error(), "server key does not match") {
		t.Fatalf("restart with another key = %v", err)
	}
}

// TestServe_Binary runs the built agentkeys: serve on a free port, sign up,
// proxy through the hosted proxy, SIGTERM (exit 0 with a stream in flight
// finishing), then a restart with another key exits 6. It skips until
// `serve` is registered in the root command.
func TestServe_Binary(t *testing.T) {
	bin := agentkeysBinary(t)
	e := serveEnv(t)
	if out, _ := exec.Command(bin, "serve", "--help").CombinedOutput(); !strings.Contains(string(out), "--database-url") {
		t.Skip("`agentkeys serve` is not registered in the root command yet")
	}
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first, ")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "last")
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := exec.Command(bin, "serve", "--listen", addr, "--allow-loopback-targets", "--shutdown-timeout", "20s")
	c.Env = e.environ()
	var stderr bytes.Buffer
	stdout, _ := c.StdoutPipe()
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on http://"+addr) {
		t.Fatalf("first line %q (%v); stderr: %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	base := "http://" + addr
	post := func(path, key, body string) map[string]any {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 201 {
			t.Fatalf("POST %s = %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	key := post("/api/v1/signup", "", `{"email":"a@example.com","password":"long enough pw","workspace":"A"}`)["apiKey"].(string)
	post("/api/v1/credentials", key, `{"name":"up","type":"API_KEY","value":"binary-secret","allowedHosts":["`+strings.TrimPrefix(up.URL, "http://")+`"]}`)

	req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(agentkeys.HeaderCredentialName, "up")
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	c.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(first)+string(rest) != "first, last" {
		t.Fatalf("stream across SIGTERM = %q", string(first)+string(rest))
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "binary-secret") || strings.Contains(stderr.String(), key) {
		t.Fatal("serve logged a secret")
	}

	// Another server key: refused at start, exit 6.
	k := make([]byte, 32)
	rand.Read(k)
	e.vars["AGENTKEYS_SERVER_KEY"] = base64.StdEncoding.EncodeToString(k)
	c2 := exec.Command(bin, "serve", "--listen", addr)
	c2.Env = e.environ()
	out, err := c2.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != cmd.ExitUnavailable || !strings.Contains(string(out), "server key does not match") {
		t.Fatalf("restart with another key: %v\n%s", err, out)
	}
}
