package cmd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
)

// testEnv is a hermetic agentkeys environment: a temporary AGENTKEYS_HOME
// and HOME, and a random AGENTKEYS_MASTER_KEY, so nothing touches the real
// home directory or the OS keychain. Commands run in-process.
type testEnv struct {
	t    testing.TB
	dir  string
	home string
	vars map[string]string
	// keychain replaces the OS keychain; by default one that is unavailable,
	// so no test ever reaches the real one.
	keychain localvault.KeyStore
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: dir, home: filepath.Join(dir, "agentkeys"), keychain: testkit.NoKeychain()}
	e.vars = map[string]string{
		"HOME":                 dir,
		"AGENTKEYS_HOME":       e.home,
		"AGENTKEYS_MASTER_KEY": base64.StdEncoding.EncodeToString(key),
	}
	return e
}

func (e *testEnv) getenv(k string) string { return e.vars[k] }

// result is what one command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// run runs agentkeys args in-process with empty stdin and no terminal.
func (e *testEnv) run(args ...string) result {
	e.t.Helper()
	return e.runWith(nil, args...)
}

// runWith runs agentkeys args after setup has adjusted the streams (stdin
// contents, terminal flags, a fake prompt).
func (e *testEnv) runWith(setup func(ios *cmd.IOStreams, stdin *bytes.Buffer), args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), setup, args...)
}

func (e *testEnv) runCtx(ctx context.Context, setup func(ios *cmd.IOStreams, stdin *bytes.Buffer), args ...string) result {
	e.t.Helper()
	ios, in, out, errOut := cmd.Test()
	if setup != nil {
		setup(ios, in)
	}
	f := cmd.NewFactory(ios, e.getenv)
	f.Keychain = e.keychain
	err := cmd.Run(ctx, f, args)
	return result{stdout: out.String(), stderr: errOut.String(), code: cmd.ExitCode(err)}
}

// must runs a command that has to succeed and returns its stdout.
func (e *testEnv) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("agentkeys %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// mustStdin is must with stdin.
func (e *testEnv) mustStdin(stdin string, args ...string) string {
	e.t.Helper()
	r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(stdin) }, args...)
	if r.code != 0 {
		e.t.Fatalf("agentkeys %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// init creates the vault and returns the workspace key.
func (e *testEnv) init() string {
	e.t.Helper()
	var res struct {
		WorkspaceKey string `json:"workspaceKey"`
	}
	if err := json.Unmarshal([]byte(e.must("init", "--json")), &res); err != nil {
		e.t.Fatal(err)
	}
	return res.WorkspaceKey
}

// state is everything a command could have written that `list` shows.
func (e *testEnv) state() string {
	e.t.Helper()
	creds := e.must("credentials", "list", "--json")
	agents := e.must("agents", "list", "--json")
	return creds + agents
}

// environ is the environment for a child process: this process's minus
// anything agentkeys or the keychain reads, plus the test's variables.
func (e *testEnv) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AGENTKEYS_") || k == "HOME" || k == "DBUS_SESSION_BUS_ADDRESS" || k == "XDG_RUNTIME_DIR" || k == "NO_COLOR" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// agentkeysBinary builds cmd/agentkeys once per test run and returns its path.
func agentkeysBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the agentkeys binary; skipped with -short")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "agentkeys-bin-")
		if buildErr != nil {
			return
		}
		name := "agentkeys"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		c := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), "github.com/agentkeys/agentkeys/cmd/agentkeys")
		buildOut, buildErr = c.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	name := "agentkeys"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(buildDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
