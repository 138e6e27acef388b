package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{agentkeys.Errorf(agentkeys.EINTERNAL, "x"), 1},
		{agentkeys.Errorf(agentkeys.EINVALID, "x"), 2},
		{agentkeys.Errorf(agentkeys.ETOOLARGE, "x"), 2},
		{agentkeys.Errorf(agentkeys.ENOTFOUND, "x"), 3},
		{fmt.Errorf("wrapped: %w", agentkeys.Errorf(agentkeys.ENOTFOUND, "x")), 3},
		{agentkeys.Errorf(agentkeys.ECONFLICT, "x"), 4},
		{agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "x"), 5},
		{agentkeys.Errorf(agentkeys.EFORBIDDEN, "x"), 5},
		{agentkeys.Errorf(agentkeys.EDESTINATION, "x"), 5},
		{agentkeys.Errorf(agentkeys.EUNAVAILABLE, "x"), 6},
		{agentkeys.Errorf(agentkeys.EUPSTREAM, "x"), 7},
		{agentkeys.Errorf(agentkeys.ETIMEOUT, "x"), 7},
		{agentkeys.Errorf(agentkeys.ERATELIMIT, "x"), 7},
		{context.Canceled, 130},
	}
	for _, tt := range tests {
		if got := cmd.ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestInit(t *testing.T) {
	e := newEnv(t)
	r := e.run("init")
	if r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	for _, want := range []string{filepath.Join(e.home, "vault.db"), "Key source: environment", "ak_ws_", "shown only this once"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, r.stdout)
		}
	}
	// config.json in the seed's format, with the workspace id and no key.
	b, err := os.ReadFile(filepath.Join(e.home, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]string
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg["workspaceId"], "ws_") || cfg["apiKey"] != "" || len(cfg) != 3 {
		t.Errorf("config.json = %s", b)
	}
	for _, name := range []string{"", "config.json", "vault.db"} {
		fi, err := os.Stat(filepath.Join(e.home, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if name == "" {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	// The key is shown once: status never prints it.
	key := r.stdout[strings.Index(r.stdout, "ak_ws_"):]
	key = strings.Fields(key)[0]
	if s := e.must("status"); strings.Contains(s, key) {
		t.Error("status shows the workspace key")
	}
	// A second init changes nothing and says so.
	r2 := e.run("init")
	if r2.code != cmd.ExitConflict || !strings.HasPrefix(r2.stderr, "error: a vault already exists at ") {
		t.Errorf("second init: %d %q", r2.code, r2.stderr)
	}
}

func TestInit_PassphraseFromEnvAndPrompt(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	e.vars["AGENTKEYS_PASSPHRASE"] = "correct horse battery"
	if out := e.must("init", "--passphrase"); !strings.Contains(out, "Key source: passphrase") {
		t.Errorf("init --passphrase: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.home, "vault.key")); err != nil {
		t.Fatal(err)
	}
	e.must("credentials", "add", "--name", "Resend", "--value", "re_1")

	// Without the passphrase and without a terminal: locked, exit 6.
	delete(e.vars, "AGENTKEYS_PASSPHRASE")
	r := e.run("credentials", "list")
	if r.code != cmd.ExitUnavailable || !strings.Contains(r.stderr, "AGENTKEYS_PASSPHRASE") {
		t.Errorf("locked: %d %q", r.code, r.stderr)
	}
	// In a terminal it is asked for.
	r = e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.PromptSecret = func(string) (string, error) { return "correct horse battery", nil }
	}, "credentials", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "Resend") {
		t.Errorf("prompted unlock: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// A wrong passphrase is refused.
	e.vars["AGENTKEYS_PASSPHRASE"] = "wrong"
	if r := e.run("credentials", "list"); r.code != cmd.ExitUnavailable || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Errorf("wrong passphrase: %d %q", r.code, r.stderr)
	}

	// init --passphrase prompts twice in a terminal.
	e2 := newEnv(t)
	delete(e2.vars, "AGENTKEYS_MASTER_KEY")
	answers := []string{"a long passphrase", "a long passphrase"}
	r = e2.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.PromptSecret = func(string) (string, error) { a := answers[0]; answers = answers[1:]; return a, nil }
	}, "init", "--passphrase")
	if r.code != 0 || len(answers) != 0 {
		t.Errorf("prompted init: %d %q", r.code, r.stderr)
	}
	// Mismatch: nothing created.
	e3 := newEnv(t)
	delete(e3.vars, "AGENTKEYS_MASTER_KEY")
	answers = []string{"a long passphrase", "another one"}
	r = e3.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.PromptSecret = func(string) (string, error) { a := answers[0]; answers = answers[1:]; return a, nil }
	}, "init", "--passphrase")
	if r.code != cmd.ExitUsage || r.stderr != "error: the passphrases do not match\n" {
		t.Errorf("mismatch: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e3.home, "vault.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vault created despite mismatch: %v", err)
	}
	// No terminal, no env: a clear error.
	r = e3.run("init", "--passphrase")
	if r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "AGENTKEYS_PASSPHRASE") {
		t.Errorf("no passphrase: %d %q", r.code, r.stderr)
	}
}

func TestCredentials_AddEveryType(t *testing.T) {
	e := newEnv(t)
	e.init()
	tests := []struct {
		args      []string
		stdin     string
		wantType  string
		wantHosts string
	}{
		{[]string{"--name", "Resend Production", "--type", "API_KEY", "--value", "re_123"}, "", "API_KEY", "api.resend.com"},
		{[]string{"--name", "Stripe", "--value", "-"}, "sk_test_1\n", "API_KEY", "api.stripe.com, files.stripe.com"},
		{[]string{"--name", "Jira", "--type", "BASIC_AUTH", "--username", "me", "--password", "pw", "--allow-host", "acme.atlassian.net"}, "", "BASIC_AUTH", "acme.atlassian.net"},
		{[]string{"--name", "Anthropic", "--type", "CUSTOM_HEADER", "--header", "x-api-key: sk-ant-1"}, "", "CUSTOM_HEADER", "api.anthropic.com"},
		{[]string{"--name", "Maps", "--type", "QUERY_PARAM", "--param", "key", "--value", "AIza1", "--allow-host", "maps.googleapis.com"}, "", "QUERY_PARAM", "maps.googleapis.com"},
		{[]string{"--name", "X", "--type", "COOKIE", "--value", "auth_token=a; ct0=b", "--allow-host", "x.com"}, "", "COOKIE", "x.com"},
		{[]string{"--name", "Gh", "--type", "oauth", "--value", "gho_1", "--service", "github"}, "", "OAUTH", "api.github.com, uploads.github.com"},
		{[]string{"--name", "Local", "--value", "v", "--allow-host", "127.0.0.1:8080", "--allow-host", "*.example.com"}, "", "API_KEY", "127.0.0.1:8080, *.example.com"},
	}
	for _, tt := range tests {
		out := e.mustStdin(tt.stdin, append([]string{"credentials", "add"}, tt.args...)...)
		if !strings.Contains(out, "Allowed hosts") || !strings.Contains(out, tt.wantHosts) || !strings.Contains(out, tt.wantType) {
			t.Errorf("add %v: %q", tt.args, out)
		}
	}
	var list struct {
		Credentials []map[string]any `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(e.must("credentials", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Credentials) != len(tests) {
		t.Fatalf("%d credentials listed", len(list.Credentials))
	}
	for _, c := range list.Credentials {
		for _, k := range []string{"id", "name", "type", "allowedHosts", "createdAt"} {
			if _, ok := c[k]; !ok {
				t.Errorf("credential JSON lacks %q: %v", k, c)
			}
		}
	}
	// Piped, list is one tab-separated line per credential (the last field: expiresAt or "-").
	lines := strings.Split(strings.TrimSpace(e.must("credentials", "list")), "\n")
	if len(lines) != len(tests) || len(strings.Split(lines[0], "\t")) != 6 {
		t.Errorf("tsv list: %q", lines)
	}
	// In a terminal it is a table with a header.
	r := e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.SetStdoutTTY(true) }, "credentials", "list")
	if !strings.HasPrefix(r.stdout, "NAME") || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("tty list (NO_COLOR in tests): %q", r.stdout)
	}

	// Remove by name (any case) and by id.
	e.must("credentials", "remove", "resend production", "--yes")
	id := list.Credentials[0]["id"].(string)
	e.must("credentials", "rm", id, "--yes")
	if got := strings.Count(e.must("credentials", "list"), "\n"); got != len(tests)-2 {
		t.Errorf("%d left after two removals", got)
	}
}

func TestCredentials_PromptsInTerminal(t *testing.T) {
	e := newEnv(t)
	e.init()
	var prompts []string
	tty := func(answers ...string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(ios *cmd.IOStreams, _ *bytes.Buffer) {
			ios.SetStdinTTY(true)
			ios.PromptSecret = func(p string) (string, error) {
				prompts = append(prompts, p)
				a := answers[0]
				answers = answers[1:]
				return a, nil
			}
		}
	}
	r := e.runWith(tty("me", "pw"), "credentials", "add", "--name", "Jira", "--type", "BASIC_AUTH", "--allow-host", "acme.atlassian.net")
	if r.code != 0 || len(prompts) != 2 || !strings.HasPrefix(prompts[0], "Username") || !strings.HasPrefix(prompts[1], "Password") {
		t.Fatalf("basic auth prompts: %d %q %q", r.code, prompts, r.stderr)
	}
	prompts = nil
	r = e.runWith(tty("pw2"), "credentials", "add", "--name", "Jira2", "--username", "me", "--allow-host", "acme.atlassian.net")
	if r.code != 0 || len(prompts) != 1 || !strings.Contains(r.stdout, "BASIC_AUTH") {
		t.Fatalf("password prompt: %d %q %q", r.code, prompts, r.stderr)
	}
	prompts = nil
	r = e.runWith(tty("sk-1"), "credentials", "add", "--name", "OpenAI")
	if r.code != 0 || len(prompts) != 1 || !strings.HasPrefix(prompts[0], "Value") {
		t.Fatalf("value prompt: %d %q %q", r.code, prompts, r.stderr)
	}
	prompts = nil
	r = e.runWith(tty("sk-ant"), "credentials", "add", "--name", "Anthropic", "--header", "x-api-key:")
	if r.code != 0 || len(prompts) != 1 || !strings.Contains(prompts[0], "x-api-key") {
		t.Fatalf("header prompt: %d %q %q", r.code, prompts, r.stderr)
	}
	// A duplicate is refused before any prompt.
	prompts = nil
	r = e.runWith(tty("x"), "credentials", "add", "--name", "openai")
	if r.code != cmd.ExitConflict || len(prompts) != 0 {
		t.Errorf("duplicate prompted: %d %q", r.code, prompts)
	}
}

func TestAgents_Lifecycle(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Resend Production", "--value", "re_1")
	e.must("credentials", "add", "--name", "Stripe", "--value", "sk_1")

	// Piped: stdout is the token alone, the note goes to stderr.
	r := e.run("agents", "create", "--name", "data-pipeline", "--credential", "resend production")
	tok := strings.TrimSpace(r.stdout)
	if r.code != 0 || !agentkeys.IsProxyToken(tok) || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("create: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Without a credential, piped: the id.
	id := strings.TrimSpace(e.must("agents", "create", "--name", "marketing-bot"))
	if !strings.HasPrefix(id, "agent_") {
		t.Fatalf("create without credential: %q", id)
	}
	// Terminal: instructions.
	r = e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.SetStdoutTTY(true) }, "agents", "assign", id, "--credential", "Stripe")
	if r.code != 0 || !strings.Contains(r.stdout, "pxr_") || !strings.Contains(r.stdout, "shown only this once") {
		t.Fatalf("assign tty: %d %q", r.code, r.stdout)
	}
	var g struct {
		Grant agentkeys.Grant `json:"grant"`
	}
	if err := json.Unmarshal([]byte(e.must("agents", "assign", "marketing-bot", "--credential", "Resend Production", "--json")), &g); err != nil || !agentkeys.IsProxyToken(g.Grant.ProxyToken) {
		t.Fatalf("assign json: %v %+v", err, g)
	}
	var list struct {
		Agents []*agentkeys.Agent `json:"agents"`
	}
	if err := json.Unmarshal([]byte(e.must("agents", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Agents) != 2 || list.Agents[1].Name != "marketing-bot" || len(list.Agents[1].Credentials) != 2 {
		t.Fatalf("agents: %+v", list.Agents)
	}
	if out := e.must("agents", "list"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "Resend Production,Stripe") {
		t.Errorf("tsv: %q", out)
	}
	e.must("agents", "revoke", "marketing-bot", "--credential", "stripe")
	if r := e.run("agents", "revoke", "marketing-bot", "--credential", "stripe"); r.code != cmd.ExitNotFound {
		t.Errorf("second revoke: %d %q", r.code, r.stderr)
	}
	e.must("agents", "remove", "data-pipeline", "--yes")
	e.must("agents", "remove", id, "--yes")
	if out := e.must("agents", "list", "--json"); strings.TrimSpace(out) != "{\n  \"agents\": []\n}" {
		t.Errorf("empty list: %q", out)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Resend", "--value", "re_1")
	var st struct {
		Workspace agentkeys.WorkspaceStatus `json:"workspace"`
	}
	if err := json.Unmarshal([]byte(e.must("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	w := st.Workspace
	if w.Mode != "local" || w.Location != filepath.Join(e.home, "vault.db") || w.KeySource != "environment" || w.Usage.Credentials != 1 || !strings.HasPrefix(w.ID, "ws_") {
		t.Errorf("status: %+v", w)
	}
	if out := e.must("status"); !strings.Contains(out, "Mode:         local") || !strings.Contains(out, "Credentials:  1") {
		t.Errorf("status text: %q", out)
	}
}

func TestConfig_Precedence(t *testing.T) {
	e := newEnv(t)
	e.init()
	// --home beats AGENTKEYS_HOME.
	other := newEnv(t)
	other.vars["AGENTKEYS_MASTER_KEY"] = e.vars["AGENTKEYS_MASTER_KEY"]
	other.vars["AGENTKEYS_HOME"] = filepath.Join(t.TempDir(), "nothing-here")
	if out := other.must("status", "--json", "--home", e.home); !strings.Contains(out, e.home) {
		t.Errorf("--home: %s", out)
	}
	r := other.run("status")
	if r.code != cmd.ExitNotFound || !strings.Contains(r.stderr, "run `agentkeys init`") {
		t.Errorf("AGENTKEYS_HOME without vault: %d %q", r.code, r.stderr)
	}
	// Without AGENTKEYS_HOME: ~/.agentkeys under HOME.
	h := newEnv(t)
	delete(h.vars, "AGENTKEYS_HOME")
	h.must("init")
	if _, err := os.Stat(filepath.Join(h.dir, ".agentkeys", "vault.db")); err != nil {
		t.Errorf("default home: %v", err)
	}
	// A broken config.json is a clear usage error.
	if err := os.WriteFile(filepath.Join(e.home, "config.json"), []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("status")
	if r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "config.json is not valid JSON") {
		t.Errorf("bad config: %d %q", r.code, r.stderr)
	}
}

func TestRoot_HelpAndCompletion(t *testing.T) {
	e := newEnv(t)
	// Not a terminal: plain `agentkeys` prints help, exit 0.
	if r := e.run(); r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("help: %d %q", r.code, r.stdout)
	}
	for shell, marker := range map[string]string{"bash": "bash completion", "zsh": "#compdef agentkeys", "fish": "complete -c agentkeys"} {
		if r := e.run("completion", shell); r.code != 0 || !strings.Contains(r.stdout, marker) {
			t.Errorf("completion %s: %d %.80q", shell, r.code, r.stdout)
		}
	}
	if r := e.run("completion", "tcsh"); r.code != cmd.ExitUsage {
		t.Errorf("completion tcsh: %d", r.code)
	}
}

func TestInit_Keychain(t *testing.T) {
	// With a keychain, init keeps the key there and later commands find it.
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	kc := &testkit.Keychain{}
	e.keychain = kc
	if out := e.must("init"); !strings.Contains(out, "Key source: keychain") {
		t.Errorf("init: %s", out)
	}
	if kc.Len() != 1 {
		t.Errorf("keychain holds %d entries", kc.Len())
	}
	e.must("credentials", "add", "--name", "Resend", "--value", "re_1")

	// Without one and without a terminal: exit 6 naming every option, nothing left behind.
	e2 := newEnv(t)
	delete(e2.vars, "AGENTKEYS_MASTER_KEY")
	r := e2.run("init")
	if r.code != cmd.ExitUnavailable || !strings.Contains(r.stderr, "AGENTKEYS_MASTER_KEY") || !strings.Contains(r.stderr, "--passphrase") {
		t.Errorf("no keychain: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e2.home, "vault.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vault.db left behind: %v", err)
	}
	// In a terminal, init falls back to a passphrase.
	answers := []string{"a long passphrase", "a long passphrase"}
	r = e2.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.PromptSecret = func(string) (string, error) { a := answers[0]; answers = answers[1:]; return a, nil }
	}, "init")
	if r.code != 0 || !strings.Contains(r.stdout, "Key source: passphrase") || !strings.Contains(r.stderr, "OS keychain is not available") {
		t.Errorf("fallback: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
