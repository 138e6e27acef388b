package cmd_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// statusServer answers GET /api/v1/workspace/status for one key, as a
// server does, and 401 for any other.
func statusServer(t *testing.T, key string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.Header().Set(agentkeys.HeaderError, agentkeys.EUNAUTHORIZED)
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"Unauthorized — missing or invalid API key","code":"UNAUTHORIZED","status":401}`)
			return
		}
		if r.URL.Path != "/api/v1/workspace/status" {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"not found","code":"NOT_FOUND","status":404}`)
			return
		}
		io.WriteString(w, `{"workspace":{"id":"ws_remote1","name":"Acme","plan":"pro","usage":{"credentials":2,"agents":1,"requestsThisMonth":7},"limits":{"credentials":100,"agents":25,"requestsPerMonth":100000}}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runAuth runs login or logout with the streams adjusted by setup.
func (e *testEnv) runAuth(setup func(ios *cmd.IOStreams, stdin *bytes.Buffer), args ...string) result {
	e.t.Helper()
	return e.runWith(setup, args...)
}

func (e *testEnv) readConfig() (string, os.FileMode) {
	e.t.Helper()
	b, err := os.ReadFile(e.home + "/config.json")
	if os.IsNotExist(err) {
		return "", 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := os.Stat(e.home + "/config.json")
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b), st.Mode().Perm()
}

func wantNoKey(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && (strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s)) {
			t.Fatalf("output carries a key:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		}
	}
}

func TestLogin(t *testing.T) {
	key := agentkeys.NewWorkspaceKey()
	srv := statusServer(t, key)
	stdinKey := func(k string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(k + "\n") }
	}
	wantConfig := func(t *testing.T, e *testEnv, extra map[string]any) {
		t.Helper()
		b, mode := e.readConfig()
		if mode != 0o600 {
			t.Fatalf("config.json mode %o, want 600", mode)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(b), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"apiKey": key, "apiUrl": srv.URL, "workspaceId": "ws_remote1"}
		for k, v := range extra {
			want[k] = v
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Fatalf("config.json = %s, want %s", gb, wb)
		}
	}

	t.Run("StdinKey", func(t *testing.T) {
		e := newEnv(t)
		r := e.runAuth(stdinKey(key), "login", "--server", srv.URL+"/", "--api-key", "-")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		wantNoKey(t, r, key)
		if !strings.Contains(r.stdout, "Logged in to "+srv.URL) || !strings.Contains(r.stdout, "Acme (ws_remote1)") || !strings.Contains(r.stdout, "Plan:       pro") {
			t.Fatalf("stdout = %s", r.stdout)
		}
		wantConfig(t, e, nil)
	})
	t.Run("FlagKeyJSON", func(t *testing.T) {
		e := newEnv(t)
		r := e.runAuth(nil, "login", "--server", srv.URL, "--api-key", key, "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		wantNoKey(t, r, key)
		var out struct{ Workspace agentkeys.WorkspaceStatus }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Workspace.ID != "ws_remote1" || out.Workspace.Mode != "remote" || out.Workspace.Location != srv.URL {
			t.Fatalf("stdout = %s (%v)", r.stdout, err)
		}
		wantConfig(t, e, nil)
	})
	t.Run("EnvKey", func(t *testing.T) {
		e := newEnv(t)
		e.vars["AGENTKEYS_API_KEY"] = key
		r := e.runAuth(nil, "login", "--server", srv.URL)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		wantConfig(t, e, nil)
	})
	t.Run("Prompt", func(t *testing.T) {
		e := newEnv(t)
		var prompted string
		r := e.runAuth(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
			ios.SetStdinTTY(true)
			ios.PromptSecret = func(p string) (string, error) { prompted = p; return key, nil }
		}, "login", "--server", srv.URL)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(prompted, "API key") {
			t.Fatalf("prompt = %q", prompted)
		}
		wantNoKey(t, r, key)
		wantConfig(t, e, nil)
	})
	t.Run("KeepsOtherFields", func(t *testing.T) {
		e := newEnv(t)
		os.MkdirAll(e.home, 0o700)
		os.WriteFile(e.home+"/config.json", []byte(`{"workspaceId":"ws_local","editor":"vi"}`), 0o644)
		r := e.runAuth(stdinKey(key), "login", "--server", srv.URL, "--api-key", "-")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		wantConfig(t, e, map[string]any{"editor": "vi"})
		// Re-login without --server uses the saved one.
		r = e.runAuth(stdinKey(key), "login", "--api-key", "-")
		if r.code != 0 {
			t.Fatalf("re-login: exit %d: %s", r.code, r.stderr)
		}
		wantConfig(t, e, map[string]any{"editor": "vi"})
	})

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hello</html>") }))
	defer web.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0") // keeps the port from being reused
	defer ln.Close()
	wrong := agentkeys.NewWorkspaceKey()
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		code    int
		wantErr string
	}{
		{"ErrWrongKey", []string{"--server", srv.URL, "--api-key", "-"}, wrong, cmd.ExitUnauthorized, "refused this API key"},
		{"ErrProxyToken", []string{"--server", srv.URL, "--api-key", "-"}, agentkeys.NewProxyToken(), cmd.ExitUsage, "not a workspace API key"},
		{"ErrGarbageKey", []string{"--server", srv.URL, "--api-key", "-"}, "hunter2", cmd.ExitUsage, "not a workspace API key"},
		{"ErrEmptyStdin", []string{"--server", srv.URL, "--api-key", "-"}, "", cmd.ExitUsage, "read no key"},
		{"ErrNoKeyNoTTY", []string{"--server", srv.URL}, "", cmd.ExitUsage, "give the workspace API key"},
		{"ErrNoServer", []string{"--api-key", "-"}, key, cmd.ExitUsage, "--server"},
		{"ErrBadServer", []string{"--server", "not a url", "--api-key", "-"}, key, cmd.ExitUsage, "not a full URL"},
		{"ErrPlainHTTPRemote", []string{"--server", "http://agentkeys.example.com", "--api-key", "-"}, key, cmd.ExitUsage, "--allow-http"},
		{"ErrUnreachable", []string{"--server", closedURL, "--api-key", "-"}, key, cmd.ExitUnavailable, "cannot reach"},
		{"ErrNotAgentkeys", []string{"--server", web.URL, "--api-key", "-"}, key, cmd.ExitError, "is it an agentkeys server"},
		{"ErrArgs", []string{"extra"}, key, cmd.ExitUsage, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			os.MkdirAll(e.home, 0o700)
			const before = `{"workspaceId":"ws_local"}`
			os.WriteFile(e.home+"/config.json", []byte(before), 0o600)
			r := e.runAuth(stdinKey(tc.stdin), append([]string{"login"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", r.code, r.stderr, tc.code, tc.wantErr)
			}
			wantNoKey(t, r, key, wrong)
			if got, _ := e.readConfig(); got != before {
				t.Fatalf("config.json changed on a refused login: %s", got)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	key := agentkeys.NewWorkspaceKey()
	t.Run("RemovesServerFields", func(t *testing.T) {
		e := newEnv(t)
		os.MkdirAll(e.home, 0o700)
		os.WriteFile(e.home+"/config.json", []byte(`{"apiKey":"`+key+`","apiUrl":"https://agentkeys.example.com","workspaceId":"ws_remote1","editor":"vi"}`), 0o600)
		r := e.runAuth(nil, "logout")
		if r.code != 0 || !strings.Contains(r.stdout, "Logged out of https://agentkeys.example.com") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		wantNoKey(t, r, key)
		got, mode := e.readConfig()
		if strings.Join(strings.Fields(got), "") != `{"editor":"vi"}` || mode != 0o600 {
			t.Fatalf("config.json = %s (mode %o)", got, mode)
		}
		// Twice is fine.
		r = e.runAuth(nil, "logout", "--json")
		if r.code != 0 || strings.Join(strings.Fields(r.stdout), "") != `{"loggedOut":false,"server":""}` {
			t.Fatalf("second logout: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("NoConfig", func(t *testing.T) {
		e := newEnv(t)
		r := e.runAuth(nil, "logout")
		if r.code != 0 || !strings.Contains(r.stdout, "Not logged in") {
			t.Fatalf("exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if got, _ := e.readConfig(); got != "" {
			t.Fatalf("logout created config.json: %s", got)
		}
	})
	t.Run("WarnsAboutEnvironment", func(t *testing.T) {
		e := newEnv(t)
		e.vars["AGENTKEYS_API_KEY"] = key
		e.vars["AGENTKEYS_API_URL"] = "https://agentkeys.example.com"
		r := e.runAuth(nil, "logout")
		if r.code != 0 || !strings.Contains(r.stderr, "warning: AGENTKEYS_API_KEY and AGENTKEYS_API_URL are set") {
			t.Fatalf("exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		wantNoKey(t, r, key)
	})
	t.Run("ErrBadConfig", func(t *testing.T) {
		e := newEnv(t)
		os.MkdirAll(e.home, 0o700)
		os.WriteFile(e.home+"/config.json", []byte(`[1,2]`), 0o600)
		r := e.runAuth(nil, "logout")
		if r.code == 0 {
			t.Fatalf("logout accepted a config.json that is not an object")
		}
		if got, _ := e.readConfig(); got != `[1,2]` {
			t.Fatalf("config.json changed: %s", got)
		}
	})
}

// liveServer is `agentkeys serve` (server.New on a fresh SQLite store,
// loopback targets allowed for the test upstreams) behind httptest, with
// one workspace signed up.
func liveServer(t *testing.T) (url, key string) {
	t.Helper()
	k, err := agentkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: k})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true})
	if err != nil {
		st.Close()
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	res, err := client.Signup(t.Context(), client.Config{BaseURL: hs.URL}, client.SignupInput{Email: "owner@example.com", Password: "correct horse battery", Workspace: "Acme"})
	if err != nil {
		t.Fatalf("Signup: %v", err)
	}
	return hs.URL, res.APIKey
}

// recordingUpstream is an API on 127.0.0.1 that records the Authorization
// header it received.
func recordingUpstream(t *testing.T) (srv *httptest.Server, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var auths []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), auths...)
	}
}

// TestRemoteMode_EndToEnd: login → credentials add → agents create with a
// credential → one-off proxy (token, and by name) → status → up refused →
// logout → status is the local vault again, which never saw the remote
// workspace's rows. No output ever carries the API key or the secret.
func TestRemoteMode_EndToEnd(t *testing.T) {
	e := newEnv(t)
	url, key := liveServer(t)
	up, seen := recordingUpstream(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	const secret = "sk-remote-e2e-5f1c"
	e.init()
	var outputs []result
	step := func(stdin string, args ...string) result {
		t.Helper()
		r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(stdin) }, args...)
		outputs = append(outputs, r)
		if r.code != 0 {
			t.Fatalf("agentkeys %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	status := func() agentkeys.WorkspaceStatus {
		t.Helper()
		var st struct{ Workspace agentkeys.WorkspaceStatus }
		if err := json.Unmarshal([]byte(step("", "status", "--json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		return st.Workspace
	}
	local := status()
	if local.Mode != agentkeys.ModeLocal {
		t.Fatalf("before login: %+v", local)
	}

	step(key+"\n", "login", "--server", url, "--api-key", "-")
	st := status()
	if st.Mode != agentkeys.ModeRemote || st.Location != url || st.Name != "Acme" || st.ID == local.ID {
		t.Fatalf("after login: status %+v", st)
	}
	step(secret+"\n", "credentials", "add", "--name", "Upstream", "--value", "-", "--allow-host", upHost)
	var created struct {
		Agent agentkeys.Agent
		Grant agentkeys.Grant
	}
	if err := json.Unmarshal([]byte(step("", "agents", "create", "--name", "bot", "--credential", "upstream", "--json").stdout), &created); err != nil {
		t.Fatal(err)
	}
	if !agentkeys.IsProxyToken(created.Grant.ProxyToken) || len(created.Agent.Credentials) != 1 {
		t.Fatalf("agents create: %+v", created)
	}
	if r := step("", "proxy", created.Grant.ProxyToken, up.URL+"/by-token"); r.stdout != "hello from /by-token" {
		t.Fatalf("proxy by token: %q", r.stdout)
	}
	if r := step("", "proxy", "--credential", "Upstream", up.URL+"/by-name"); r.stdout != "hello from /by-name" {
		t.Fatalf("proxy by name: %q", r.stdout)
	}
	if got := seen(); len(got) != 2 || got[0] != "Bearer "+secret || got[1] != "Bearer "+secret {
		t.Fatalf("upstream received %q", got)
	}
	// assign gives a second agent its own token; revoke stops it at once.
	step("", "agents", "create", "--name", "bot2")
	var assigned struct{ Grant agentkeys.Grant }
	if err := json.Unmarshal([]byte(step("", "agents", "assign", "bot2", "--credential", "Upstream", "--json").stdout), &assigned); err != nil {
		t.Fatal(err)
	}
	if r := step("", "proxy", assigned.Grant.ProxyToken, up.URL+"/assigned"); r.stdout != "hello from /assigned" {
		t.Fatalf("proxy with the assigned token: %q", r.stdout)
	}
	step("", "agents", "revoke", "bot2", "--credential", "Upstream")
	r := e.run("proxy", assigned.Grant.ProxyToken, up.URL+"/revoked")
	outputs = append(outputs, r)
	if r.code != cmd.ExitUnauthorized {
		t.Fatalf("proxy with a revoked token: exit %d %s", r.code, r.stderr)
	}
	if n := len(seen()); n != 3 {
		t.Fatalf("upstream got %d requests, want 3", n)
	}
	step("", "agents", "remove", "bot2", "--yes")
	// Refusals come from the server's proxy with the CLI's exit codes.
	r = e.run("proxy", created.Grant.ProxyToken, "http://evil.example/")
	outputs = append(outputs, r)
	if r.code != cmd.ExitUnauthorized || !strings.Contains(r.stderr, "not on this credential's allowed hosts") {
		t.Fatalf("proxy to another host: exit %d %s", r.code, r.stderr)
	}
	if st := status(); st.Usage.Credentials != 1 || st.Usage.Agents != 1 || st.Usage.RequestsThisMonth < 3 {
		t.Fatalf("remote usage = %+v", st.Usage)
	}
	var audit []map[string]any
	auditOut := step("", "audit", "--json").stdout
	if err := json.Unmarshal([]byte(auditOut), &audit); err != nil {
		var wrapped struct{ Events []map[string]any }
		if err2 := json.Unmarshal([]byte(auditOut), &wrapped); err2 != nil {
			t.Fatalf("audit --json: %v\n%s", err, auditOut)
		}
		audit = wrapped.Events
	}
	if len(audit) < 4 {
		t.Fatalf("remote audit has %d events, want 4 (3 forwarded, 1 denied):\n%s", len(audit), auditOut)
	}
	// `up` serves the local vault only.
	r = e.run("up", "--listen", "127.0.0.1:0")
	outputs = append(outputs, r)
	if r.code != cmd.ExitUnavailable || !strings.Contains(r.stderr, "agentkeys logout") {
		t.Fatalf("up while logged in: exit %d %s", r.code, r.stderr)
	}
	cfgBefore, _ := e.readConfig() // holds the key while logged in

	step("", "logout")
	st = status()
	if st.Mode != agentkeys.ModeLocal || st.ID != local.ID || st.Usage.Credentials != 0 || st.Usage.Agents != 0 {
		t.Fatalf("after logout: status %+v", st)
	}
	if out := step("", "credentials", "list", "--json").stdout; strings.Contains(out, "Upstream") {
		t.Fatalf("the local vault lists the remote credential: %s", out)
	}
	if !strings.Contains(cfgBefore, key) {
		t.Fatalf("config.json while logged in lacks the key")
	}
	for _, r := range outputs {
		wantNoKey(t, r, key, secret)
	}
}

// TestRemoteMode_BadLogin: a saved key the server no longer accepts makes
// every command fail with exit 5 and a message naming `agentkeys login`.
func TestRemoteMode_BadLogin(t *testing.T) {
	e := newEnv(t)
	url, _ := liveServer(t)
	stale := agentkeys.NewWorkspaceKey()
	os.MkdirAll(e.home, 0o700)
	os.WriteFile(e.home+"/config.json", []byte(`{"apiKey":"`+stale+`","apiUrl":"`+url+`","workspaceId":"ws_x"}`), 0o600)
	for _, args := range [][]string{{"status"}, {"credentials", "list"}, {"agents", "list"}, {"audit"}} {
		r := e.run(args...)
		if r.code != cmd.ExitUnauthorized || !strings.Contains(r.stderr, "agentkeys login") {
			t.Fatalf("%v: exit %d %s", args, r.code, r.stderr)
		}
		wantNoKey(t, r, stale)
	}
	// A server that is down: exit 6, naming the way back to the local vault.
	e4 := newEnv(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	e4.vars["AGENTKEYS_API_URL"] = down.URL
	e4.vars["AGENTKEYS_API_KEY"] = stale
	if r := e4.run("credentials", "list"); r.code != cmd.ExitUnavailable || !strings.Contains(r.stderr, "cannot reach") || !strings.Contains(r.stderr, "agentkeys logout") {
		t.Fatalf("server down: exit %d %s", r.code, r.stderr)
	}
	// Environment variables select the server just as config.json does.
	e2 := newEnv(t)
	e2.vars["AGENTKEYS_API_URL"] = url
	e2.vars["AGENTKEYS_API_KEY"] = stale
	if r := e2.run("status"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("status with the environment: exit %d %s", r.code, r.stderr)
	}
	// An API key without a URL is not remote mode (the local workspace key
	// is an ak_ws_ key too).
	e3 := newEnv(t)
	e3.init()
	e3.vars["AGENTKEYS_API_KEY"] = stale
	if r := e3.run("status"); r.code != 0 || !strings.Contains(r.stdout, "Mode:         local") {
		t.Fatalf("status with only AGENTKEYS_API_KEY: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestRemoteMode_Binary drives the built binary: login, status, list,
// logout, against a live server.
func TestRemoteMode_Binary(t *testing.T) {
	e := newEnv(t)
	bin := agentkeysBinary(t)
	url, key := liveServer(t)
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = e.environ()
		c.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String()+errOut.String(), key) {
			t.Fatalf("agentkeys %v printed the key", args)
		}
		return out.String(), errOut.String(), code
	}
	if _, stderr, code := run(key+"\n", "login", "--server", url, "--api-key", "-"); code != 0 {
		t.Fatalf("login: exit %d %s", code, stderr)
	}
	out, stderr, code := run("", "status")
	if code != 0 || !strings.Contains(out, "Mode:         remote") || !strings.Contains(out, "Location:     "+url) || !strings.Contains(out, "Acme") {
		t.Fatalf("status: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := run("v-1\n", "credentials", "add", "--name", "Resend Production", "--value", "-"); code != 0 {
		t.Fatalf("credentials add: exit %d %s", code, stderr)
	}
	if out, _, code := run("", "credentials", "list"); code != 0 || !strings.Contains(out, "Resend Production") {
		t.Fatalf("credentials list: exit %d %s", code, out)
	}
	if _, stderr, code := run("", "logout"); code != 0 {
		t.Fatalf("logout: exit %d %s", code, stderr)
	}
	if out, stderr, code := run("", "status"); code == 0 && strings.Contains(out, "remote") {
		t.Fatalf("status after logout is still remote: %s %s", out, stderr)
	}
}
