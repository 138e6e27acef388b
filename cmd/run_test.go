package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys/cmd"
)

// TestRun_ExitCodes: agentkeys exits with the program's status; 128+N when
// a signal killed it; 127 when it cannot start; usage errors before
// anything runs leave the vault as it was.
func TestRun_ExitCodes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	e, _ := sdkSetup(t)
	e.must("credentials", "add", "--name", "Other", "--value", "v", "--allow-host", "api.example.com")
	before := e.state()
	cases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"zero", []string{"--", "sh", "-c", "exit 0"}, 0, ""},
		{"three", []string{"--", "sh", "-c", "exit 3"}, 3, ""},
		{"killed by SIGKILL", []string{"--", "sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"killed by SIGTERM", []string{"--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"not found", []string{"--", "no-such-program-xyz"}, 127, "cannot start no-such-program-xyz"},
		{"no command", nil, cmd.ExitUsage, "missing command"},
		{"print-env with a command", []string{"--print-env", "--", "true"}, cmd.ExitUsage, "runs nothing"},
		{"bad ttl", []string{"--ttl", "-1h", "--", "true"}, cmd.ExitUsage, "--ttl"},
		{"unknown agent", []string{"--agent", "nobody", "--", "true"}, cmd.ExitNotFound, "nobody"},
		{"unknown credential", []string{"--credential", "nope", "--", "true"}, cmd.ExitNotFound, "nope"},
		{"credential not the agent's", []string{"--credential", "Other", "--", "true"}, cmd.ExitUsage, "not assigned to agent coder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"run"}, c.args...)
			if !strings.Contains(strings.Join(c.args, " "), "--agent") {
				args = append([]string{"run", "--agent", "coder"}, c.args...)
			}
			r := e.run(args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, c.code, r.stderr)
			}
			if c.err == "" && r.stderr != "" {
				t.Errorf("agentkeys printed something of its own: %q", r.stderr)
			}
			if !strings.Contains(r.stderr, c.err) {
				t.Errorf("stderr %q does not say %q", r.stderr, c.err)
			}
		})
	}
	if after := e.state(); after != before {
		t.Fatalf("runs left something behind:\nbefore %s\nafter  %s", before, after)
	}
	e.vars["AGENTKEYS_PROXY_URL"] = "ftp://127.0.0.1:1"
	if r := e.run("run", "--agent", "coder", "--", "true"); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "AGENTKEYS_PROXY_URL") {
		t.Errorf("bad AGENTKEYS_PROXY_URL: exit %d %q", r.code, r.stderr)
	}
	delete(e.vars, "AGENTKEYS_PROXY_URL")
	if r := e.run("run", "--", "true"); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "--agent") {
		t.Errorf("no --agent nor --credential: exit %d %q", r.code, r.stderr)
	}
}

// TestRun_Stdio: the program reads agentkeys' stdin and writes its
// stdout and stderr.
func TestRun_Stdio(t *testing.T) {
	e, _ := sdkSetup(t)
	r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString("from stdin\n") },
		"run", "--agent", "coder", "--", "sh", "-c", "cat; echo to-stderr >&2")
	if r.code != 0 || r.stdout != "from stdin\n" || r.stderr != "to-stderr\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestRun_PrintEnv: what run would set, with tokens masked; nothing is
// minted or written.
func TestRun_PrintEnv(t *testing.T) {
	e, _ := sdkSetup(t)
	before := e.state()
	r := e.run("run", "--agent", "coder", "--print-env")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"AGENTKEYS_PROXY_URL=http://127.0.0.1:<port>\n",
		"AGENTKEYS_PROXY_TOKEN_OPENAI=pxr_****\n",
		"AGENTKEYS_PROXY_TOKEN_ANTHROPIC=pxr_****\n",
		"OPENAI_BASE_URL=http://127.0.0.1:<port>/to/api.openai.com/v1\n",
		"OPENAI_API_KEY=pxr_****\n",
		"ANTHROPIC_BASE_URL=http://127.0.0.1:<port>/to/api.anthropic.com\n",
		"ANTHROPIC_API_KEY=pxr_****\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--print-env lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, "pxr_") != strings.Count(r.stdout, "pxr_****") || strings.Contains(r.stdout, "canary") {
		t.Errorf("--print-env shows a token or a key:\n%s", r.stdout)
	}
	e.vars["AGENTKEYS_PROXY_URL"] = "http://127.0.0.1:8787/"
	r = e.run("run", "--credential", "openai", "--print-env", "--json")
	var env map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if env["OPENAI_BASE_URL"] != "http://127.0.0.1:8787/to/api.openai.com/v1" || env["AGENTKEYS_PROXY_TOKEN_OPENAI"] != "pxr_****" || env["ANTHROPIC_API_KEY"] != "" {
		t.Errorf("--json = %v", env)
	}
	delete(e.vars, "AGENTKEYS_PROXY_URL")
	if after := e.state(); after != before {
		t.Fatalf("--print-env changed the vault:\nbefore %s\nafter  %s", before, after)
	}
}

// TestRun_TokensRefusedAfterExit: the program's tokens work while it runs
// and are refused once it has exited; the temporary agent is gone.
func TestRun_TokensRefusedAfterExit(t *testing.T) {
	e, api := sdkSetup(t)
	file := filepath.Join(t.TempDir(), "tokens")
	r := e.run("run", "--agent", "coder", "--", "sh", "-c",
		`printf '%s\n%s\n' "$AGENTKEYS_PROXY_TOKEN_OPENAI" "$ANTHROPIC_API_KEY" > "$0"`, file)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	toks := strings.Fields(string(raw))
	if len(toks) != 2 || !strings.HasPrefix(toks[0], "pxr_") || toks[0] == toks[1] {
		t.Fatalf("tokens = %q", toks)
	}
	for _, tok := range toks {
		r := e.run("proxy", tok, api.URL+"/v1/chat/completions")
		if r.code != cmd.ExitUnauthorized {
			t.Errorf("token after exit: exit %d, want %d: %s", r.code, cmd.ExitUnauthorized, r.stderr)
		}
	}
	if agents := e.must("agents", "list", "--json"); strings.Contains(agents, "(run ") {
		t.Errorf("the run's agent is still there: %s", agents)
	}
	if api.calls != 0 {
		t.Errorf("a refused token reached the upstream")
	}
	// The agent's own assignments are untouched.
	if !strings.Contains(e.must("agents", "list"), "Anthropic") {
		t.Error("coder lost its assignments")
	}
}

// startRun starts the built binary with `run … -- sh -c script` and waits
// until the script has written its pid to a file. It returns the command
// and the script's pid.
func startRun(t *testing.T, e *testEnv, env []string, script string) (*exec.Cmd, int) {
	t.Helper()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	c := exec.Command(agentkeysBinary(t), "run", "--agent", "coder", "--", "sh", "-c", script, pidFile)
	c.Env = append(e.environ(), env...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return c, pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRun_SignalForwarding: SIGTERM, SIGINT and SIGHUP sent to agentkeys
// reach the program, which cleans up; agentkeys exits with its status.
func TestRun_SignalForwarding(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX signals")
	}
	e, _ := sdkSetup(t)
	for _, s := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGTERM, "TERM", 71}, {syscall.SIGINT, "INT", 72}, {syscall.SIGHUP, "HUP", 73}} {
		t.Run(s.name, func(t *testing.T) {
			done := filepath.Join(t.TempDir(), "cleaned")
			script := `trap 'echo cleaned > "` + done + `"; exit ` + strconv.Itoa(s.code) + `' ` + s.name + `
echo $$ > "$0"
while :; do sleep 0.05; done`
			c, _ := startRun(t, e, nil, script)
			if err := c.Process.Signal(s.sig); err != nil {
				t.Fatal(err)
			}
			err := c.Wait()
			if c.ProcessState.ExitCode() != s.code {
				t.Fatalf("exit %d (%v), want %d", c.ProcessState.ExitCode(), err, s.code)
			}
			if b, err := os.ReadFile(done); err != nil || string(b) != "cleaned\n" {
				t.Fatalf("the program did not clean up: %q %v", b, err)
			}
		})
	}
}

// TestRun_ChildEnvironHoldsNoSecret sweeps /proc/<child>/environ while the
// program runs: no credential value, no vault key, no workspace key, no
// AGENTKEYS_* variable but the proxy's.
func TestRun_ChildEnvironHoldsNoSecret(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	e, api := sdkSetup(t)
	release := filepath.Join(t.TempDir(), "release")
	c, pid := startRun(t, e, []string{"AGENTKEYS_API_KEY=ak_ws_canaryworkspacekey0123456789abcdef", "AGENTKEYS_PASSPHRASE=canary-passphrase"},
		`echo $$ > "$0"; while [ ! -e "`+release+`" ]; do sleep 0.05; done`)
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(release, nil, 0o600)
	if err := c.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(raw), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, canary := range []string{api.openAIKey, api.anthropicKey, e.vars["AGENTKEYS_MASTER_KEY"], "ak_ws_", "canary-passphrase"} {
		if strings.Contains(string(raw), canary) {
			t.Errorf("the program's environment holds %q", canary)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "AGENTKEYS_") && k != "AGENTKEYS_PROXY_URL" && !strings.HasPrefix(k, "AGENTKEYS_PROXY_TOKEN_") {
			t.Errorf("the program's environment holds %s", k)
		}
	}
	if !strings.HasPrefix(env["OPENAI_API_KEY"], "pxr_") || !strings.HasPrefix(env["AGENTKEYS_PROXY_URL"], "http://127.0.0.1:") ||
		env["OPENAI_BASE_URL"] != env["AGENTKEYS_PROXY_URL"]+"/to/api.openai.com/v1" || env["AGENTKEYS_PROXY_TOKEN_ANTHROPIC"] != env["ANTHROPIC_API_KEY"] {
		t.Errorf("the program's environment lacks run's variables: %v", env)
	}
}

// TestRun_UsesRunningProxy: with AGENTKEYS_PROXY_URL naming a running
// `agentkeys up`, run starts no proxy of its own, and that proxy serves
// base-URL mode.
func TestRun_UsesRunningProxy(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		skipUnlessCI(t, "needs curl")
	}
	e, api := sdkSetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := e.startUp(t, ctx, "--listen", "127.0.0.1:0")
	e.vars["AGENTKEYS_PROXY_URL"] = base
	r := e.run("run", "--credential", "OpenAI", "--", "sh", "-c",
		`echo "$AGENTKEYS_PROXY_URL"; curl -sS --fail -H "Authorization: Bearer $OPENAI_API_KEY" -d '{}' "$AGENTKEYS_PROXY_URL/to/$0/v1/chat/completions"`,
		api.hostPort())
	delete(e.vars, "AGENTKEYS_PROXY_URL")
	if r.code != 0 || !strings.HasPrefix(r.stdout, base+"\n") || !strings.Contains(r.stdout, "hello from openai") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	api.verify(t, 1)
	cancel()
	<-done
}

// TestAgentsAssign_ExpiresIn: --expires-in gives the token an expiry
// (shown in --json); a duration that is not positive is a usage error that
// assigns nothing.
func TestAgentsAssign_ExpiresIn(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Mail", "--value", "v", "--allow-host", "api.example.com")
	e.must("agents", "create", "--name", "bot")
	before := e.state()
	for _, bad := range []string{"0s", "-5m", "soon"} {
		if r := e.run("agents", "assign", "bot", "--credential", "Mail", "--expires-in", bad); r.code != cmd.ExitUsage {
			t.Errorf("--expires-in %s: exit %d, want %d: %s", bad, r.code, cmd.ExitUsage, r.stderr)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("a refused assign changed the vault")
	}
	var out struct {
		Grant struct {
			ProxyToken string     `json:"proxyToken"`
			ExpiresAt  *time.Time `json:"expiresAt"`
		} `json:"grant"`
	}
	if err := json.Unmarshal([]byte(e.must("agents", "assign", "bot", "--credential", "Mail", "--expires-in", "1h", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Grant.ExpiresAt == nil || time.Until(*out.Grant.ExpiresAt) < 59*time.Minute || time.Until(*out.Grant.ExpiresAt) > time.Hour {
		t.Fatalf("grant = %+v", out.Grant)
	}
	r := e.run("agents", "assign", "bot", "--credential", "Mail", "--expires-in", "30m")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pxr_") || !strings.Contains(r.stderr, "expires at") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestRun_RemoteMode: logged in to a server, run mints the tokens there
// and the program uses the server's own proxy in base-URL mode; the
// temporary agent is removed from the server afterwards.
func TestRun_RemoteMode(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		skipUnlessCI(t, "needs curl")
	}
	e := newEnv(t)
	e.init()
	url, key := liveServer(t)
	up, seen := recordingUpstream(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	e.mustStdin(key+"\n", "login", "--server", url, "--api-key", "-")
	e.must("credentials", "add", "--name", "Upstream", "--value", "sk-remote-run-77aa", "--allow-host", upHost)
	e.must("agents", "create", "--name", "bot", "--credential", "Upstream")
	if out := e.must("run", "--agent", "bot", "--print-env"); !strings.Contains(out, "AGENTKEYS_PROXY_URL="+url+"\n") {
		t.Fatalf("--print-env in remote mode:\n%s", out)
	}
	r := e.run("run", "--agent", "bot", "--", "sh", "-c",
		`test "$AGENTKEYS_PROXY_URL" = "$1" && curl -sS --fail -H "x-api-key: $AGENTKEYS_PROXY_TOKEN_UPSTREAM" "$AGENTKEYS_PROXY_URL/to/$0/remote"`,
		upHost, url)
	if r.code != 0 || r.stdout != "hello from /remote" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := seen(); len(got) != 1 || got[0] != "Bearer sk-remote-run-77aa" {
		t.Fatalf("upstream received %q", got)
	}
	if agents := e.must("agents", "list", "--json"); strings.Contains(agents, "(run ") {
		t.Errorf("the run's agent is still on the server: %s", agents)
	}
}
