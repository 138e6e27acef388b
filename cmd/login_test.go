package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
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

// runAuth runs login or logout: through the root command when it is
// registered there, else by building the command directly.
func (e *testEnv) runAuth(setup func(ios *cmd.IOStreams, stdin *bytes.Buffer), args ...string) result {
	e.t.Helper()
	ios, in, out, errOut := cmd.Test()
	if setup != nil {
		setup(ios, in)
	}
	f := cmd.NewFactory(ios, e.getenv)
	f.Keychain = e.keychain
	if c, _, err := cmd.NewCmdRoot(f).Find(args[:1]); err == nil && c.Name() == args[0] {
		err := cmd.Run(context.Background(), f, args)
		return result{stdout: out.String(), stderr: errOut.String(), code: cmd.ExitCode(err)}
	}
	var c *cobra.Command
	switch args[0] {
	case "login":
		c = cmd.NewCmdLogin(f, nil)
	case "logout":
		c = cmd.NewCmdLogout(f, nil)
	default:
		e.t.Fatalf("runAuth: %s", args[0])
	}
	c.SetArgs(args[1:])
	c.SetIn(ios.In)
	c.SetOut(ios.Out)
	c.SetErr(ios.ErrOut)
	c.SilenceErrors, c.SilenceUsage = true, true
	err := c.ExecuteContext(context.Background())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		io.WriteString(errOut, "error: "+err.Error()+"\n")
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: cmd.ExitCode(err)}
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
