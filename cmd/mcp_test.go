package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

func TestOptions_MCP(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want cmd.MCPOptions
	}{
		{"default", nil, cmd.MCPOptions{}},
		{"read-only", []string{"--read-only"}, cmd.MCPOptions{ReadOnly: true}},
		{"tools", []string{"--tools", "list_credentials,proxy_request", "--tools", "list_agents"}, cmd.MCPOptions{Tools: []string{"list_credentials", "proxy_request", "list_agents"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *cmd.MCPOptions
			c := cmd.NewCmdMCP(testFactory(t), func(_ context.Context, o *cmd.MCPOptions) error { got = o; return nil })
			if err := parse(t, c, tt.args...); err != nil {
				t.Fatal(err)
			}
			got.IO, got.Vault, got.Logger = nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestOptions_MCPConfig(t *testing.T) {
	var got *cmd.MCPConfigOptions
	c := cmd.NewCmdMCPConfig(testFactory(t), func(_ context.Context, o *cmd.MCPConfigOptions) error { got = o; return nil })
	if err := parse(t, c, "--client", "vscode", "--write", "--project", "/p", "--read-only"); err != nil {
		t.Fatal(err)
	}
	if got.Client != "vscode" || !got.Write || got.Project != "/p" || !got.ReadOnly || got.Home == "" {
		t.Errorf("options = %+v", got)
	}
}

// TestMCP_Refused checks usage errors: exit code 2, a message saying what to
// do, and nothing written (no MCP session on stdout, no config file).
func TestMCP_Refused(t *testing.T) {
	e := newEnv(t)
	e.init()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown tool", []string{"mcp", "--tools", "list_credentials,read_secret"}, `unknown MCP tool "read_secret"`},
		{"management tool with read-only", []string{"mcp", "--read-only", "--tools", "create_agent"}, "not available with --read-only"},
		{"unknown client", []string{"mcp", "config", "--client", "zed"}, `unknown MCP client "zed": use one of claude-desktop, cursor, claude-code, vscode`},
		{"write without client", []string{"mcp", "config", "--write"}, "--write needs --client"},
		{"project for a home client", []string{"mcp", "config", "--client", "cursor", "--project", "."}, "--project is for --client claude-code or vscode"},
		{"config with a bad tool", []string{"mcp", "config", "--tools", "nope"}, `unknown MCP tool "nope"`},
		{"arguments", []string{"mcp", "serve"}, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != cmd.ExitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, cmd.ExitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.dir, ".cursor")); !os.IsNotExist(err) {
		t.Errorf("a refused config command wrote %s: %v", filepath.Join(e.dir, ".cursor"), err)
	}
}

func TestMCP_NoVault(t *testing.T) {
	e := newEnv(t)
	r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) {
		in.WriteString(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}` + "\n")
	}, "mcp")
	if r.code != cmd.ExitNotFound || !strings.Contains(r.stderr, "agentkeys init") || r.stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, nothing on stdout, and how to create the vault", r.code, r.stdout, r.stderr, cmd.ExitNotFound)
	}
}

// TestMCP_StdioSession runs `agentkeys mcp` in-process on a whole session
// piped to stdin: stdout carries only JSON-RPC, logs go to stderr, and the
// credential value is in neither.
func TestMCP_StdioSession(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.vars["AGENTKEYS_LOG_LEVEL"] = "info"
	const canary = "sk-cmd-mcp-canary-6612"
	session := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_credential","arguments":{"name":"Resend Production","value":"` + canary + `"}}}`,
	}
	r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(strings.Join(session, "\n") + "\n") }, "mcp", "--tools", "list_credentials,create_credential")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	answers := map[float64]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg map[string]any
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg["jsonrpc"] != "2.0" {
			t.Fatalf("stdout line is not JSON-RPC: %q", sc.Text())
		}
		if id, ok := msg["id"].(float64); ok {
			answers[id] = msg
		}
	}
	if len(answers) != 3 {
		t.Fatalf("answers to %d requests, want 3:\n%s", len(answers), r.stdout)
	}
	tools := answers[2]["result"].(map[string]any)["tools"].([]any)
	if len(tools) != 2 {
		t.Errorf("--tools exposed %d tools, want 2", len(tools))
	}
	created := answers[3]["result"].(map[string]any)
	if created["isError"] == true {
		t.Fatalf("create_credential failed: %v", created)
	}
	if hosts := created["structuredContent"].(map[string]any)["credential"].(map[string]any)["allowedHosts"].([]any); len(hosts) != 1 || hosts[0] != "api.resend.com" {
		t.Errorf("allowedHosts = %v", hosts)
	}
	if !strings.Contains(r.stderr, "mcp tool") || !strings.Contains(r.stderr, "tool=create_credential") {
		t.Errorf("stderr lacks the per-call log: %q", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, canary) {
		t.Error("the credential value appeared on stdout or stderr")
	}
	// The credential is really in the vault.
	if out := e.must("credentials", "list", "--json"); !strings.Contains(out, "Resend Production") {
		t.Errorf("credentials list = %s", out)
	}
}

// configDoc runs `mcp config` args and decodes what it printed.
func configDoc(t *testing.T, e *testEnv, args ...string) map[string]map[string]map[string]any {
	t.Helper()
	out := e.must(append([]string{"mcp", "config"}, args...)...)
	var doc map[string]map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("mcp config printed %q: %v", out, err)
	}
	return doc
}

func thisExecutable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe
}

func TestMCPConfig_Print(t *testing.T) {
	e := newEnv(t)
	exe := thisExecutable(t)
	tests := []struct {
		args     []string
		key      string
		wantType any
		wantArgs []any
	}{
		{nil, "mcpServers", nil, []any{"mcp"}},
		{[]string{"--client", "claude-desktop"}, "mcpServers", nil, []any{"mcp"}},
		{[]string{"--client", "cursor", "--read-only"}, "mcpServers", nil, []any{"mcp", "--read-only"}},
		{[]string{"--client", "claude-code", "--tools", "list_credentials", "--tools", "proxy_request"}, "mcpServers", "stdio", []any{"mcp", "--tools", "list_credentials,proxy_request"}},
		{[]string{"--client", "vscode"}, "servers", "stdio", []any{"mcp"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			doc := configDoc(t, e, tt.args...)
			if len(doc) != 1 || len(doc[tt.key]) != 1 {
				t.Fatalf("doc = %v, want one %q with one server", doc, tt.key)
			}
			entry := doc[tt.key]["agentkeys"]
			if entry["command"] != exe || !reflect.DeepEqual(entry["args"], tt.wantArgs) || entry["type"] != tt.wantType {
				t.Errorf("entry = %v, want command %s args %v type %v", entry, exe, tt.wantArgs, tt.wantType)
			}
			// AGENTKEYS_HOME is set in this environment, so the entry passes it on.
			if env, _ := entry["env"].(map[string]any); len(env) != 1 || env["AGENTKEYS_HOME"] != e.home {
				t.Errorf("env = %v, want only AGENTKEYS_HOME=%s", entry["env"], e.home)
			}
		})
	}
	// With the default home, the entry names no directory, and never a key.
	delete(e.vars, "AGENTKEYS_HOME")
	entry := configDoc(t, e)["mcpServers"]["agentkeys"]
	if _, ok := entry["env"]; ok {
		t.Errorf("entry has env %v with the default home", entry["env"])
	}
	if out := e.must("mcp", "config", "--client", "cursor"); strings.Contains(out, e.vars["AGENTKEYS_MASTER_KEY"]) {
		t.Error("the entry contains the master key")
	}
}

// TestMCP_Help: the help of both commands names the tools, the clients and
// the files, in plain words (no Go identifiers leaked into the text).
func TestMCP_Help(t *testing.T) {
	e := newEnv(t)
	out := e.must("mcp", "--help")
	for _, want := range []string{"list_credentials", "proxy_request", "--read-only", "--tools"} {
		if !strings.Contains(out, want) {
			t.Errorf("mcp --help does not mention %s:\n%s", want, out)
		}
	}
	out = e.must("mcp", "config", "--help")
	for _, want := range []string{"claude_desktop_config.json", "~/.cursor/mcp.json", ".mcp.json", ".vscode/mcp.json", "FILE.bak", "contains a key or passphrase only when you ask for it", "--with-env"} {
		if !strings.Contains(out, want) {
			t.Errorf("mcp config --help does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mcpContains") {
		t.Errorf("mcp config --help shows a Go identifier:\n%s", out)
	}
}

func TestMCPConfigPath(t *testing.T) {
	env := map[string]string{"HOME": "/home/u", "APPDATA": `C:\Users\u\AppData\Roaming`}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		client, goos, want string
	}{
		{"claude-desktop", "linux", "/home/u/.config/Claude/claude_desktop_config.json"},
		{"claude-desktop", "darwin", "/home/u/Library/Application Support/Claude/claude_desktop_config.json"},
		{"cursor", "linux", "/home/u/.cursor/mcp.json"},
		{"cursor", "darwin", "/home/u/.cursor/mcp.json"},
		{"claude-code", "linux", "/proj/.mcp.json"},
		{"vscode", "darwin", "/proj/.vscode/mcp.json"},
	}
	for _, tt := range tests {
		got, err := cmd.MCPConfigPath(tt.client, tt.goos, getenv, "/proj")
		if err != nil || filepath.ToSlash(got) != tt.want {
			t.Errorf("MCPConfigPath(%s, %s) = %q, %v; want %q", tt.client, tt.goos, got, err, tt.want)
		}
	}
	if runtime.GOOS != "windows" {
		if got, _ := cmd.MCPConfigPath("claude-desktop", "windows", getenv, ""); !strings.HasSuffix(got, filepath.Join("Claude", "claude_desktop_config.json")) || !strings.HasPrefix(got, env["APPDATA"]) {
			t.Errorf("windows claude-desktop = %q", got)
		}
	}
	env["XDG_CONFIG_HOME"] = "/xdg"
	if got, _ := cmd.MCPConfigPath("claude-desktop", "linux", getenv, ""); got != "/xdg/Claude/claude_desktop_config.json" {
		t.Errorf("with XDG_CONFIG_HOME = %q", got)
	}
	delete(env, "HOME")
	if _, err := cmd.MCPConfigPath("cursor", "linux", getenv, ""); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Errorf("no HOME: err = %v, want EINVALID", err)
	}
}

func TestMCPConfig_WriteMergesKeepsAndIsIdempotent(t *testing.T) {
	e := newEnv(t)
	exe := thisExecutable(t)
	path := filepath.Join(e.dir, ".config", "Claude", "claude_desktop_config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	original := `{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/u"]},
    "agentkeys": {"command": "/old/agentkeys", "args": ["mcp"], "env": {"AGENTKEYS_PASSPHRASE": "kept-as-is"}, "disabled": false},
    "zeta": {"command": "zeta"}
  },
  "theme": "dark"
}
`
	if err := os.WriteFile(path, []byte(original), 0o640); err != nil {
		t.Fatal(err)
	}

	out := e.must("mcp", "config", "--client", "claude-desktop", "--write")
	if !strings.Contains(out, "Updated "+path) || !strings.Contains(out, path+".bak") {
		t.Errorf("stdout = %q", out)
	}
	bak, err := os.ReadFile(path + ".bak")
	if err != nil || string(bak) != original {
		t.Fatalf("backup = %q, %v; want the original file", bak, err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the original 0640", st.Mode().Perm())
	}
	var doc struct {
		GlobalShortcut string                                `json:"globalShortcut"`
		Theme          string                                `json:"theme"`
		MCPServers     map[string]map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(written, &doc); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, written)
	}
	if doc.GlobalShortcut != "Ctrl+Space" || doc.Theme != "dark" || len(doc.MCPServers) != 3 {
		t.Errorf("other settings or servers lost:\n%s", written)
	}
	if got := compactJSON(doc.MCPServers["filesystem"]["args"]); got != `["-y","@modelcontextprotocol/server-filesystem","/home/u"]` {
		t.Errorf("filesystem server changed: %s", got)
	}
	ak := doc.MCPServers["agentkeys"]
	var command string
	json.Unmarshal(ak["command"], &command)
	var env map[string]string
	json.Unmarshal(ak["env"], &env)
	if command != exe || compactJSON(ak["args"]) != `["mcp"]` || string(ak["disabled"]) != "false" ||
		env["AGENTKEYS_PASSPHRASE"] != "kept-as-is" || env["AGENTKEYS_HOME"] != e.home {
		t.Errorf("agentkeys entry = %s", written)
	}
	// Key order is kept: the file still reads like the one the user wrote.
	s := string(written)
	if !(strings.Index(s, "globalShortcut") < strings.Index(s, "mcpServers") && strings.Index(s, "mcpServers") < strings.Index(s, "theme") &&
		strings.Index(s, `"filesystem"`) < strings.Index(s, `"agentkeys"`) && strings.Index(s, `"agentkeys"`) < strings.Index(s, `"zeta"`)) {
		t.Errorf("key order changed:\n%s", s)
	}

	// Second run: nothing changes, not even the backup.
	before, _ := os.Stat(path)
	time.Sleep(10 * time.Millisecond)
	out = e.must("mcp", "config", "--client", "claude-desktop", "--write")
	if !strings.Contains(out, "nothing changed") {
		t.Errorf("second run stdout = %q", out)
	}
	again, _ := os.ReadFile(path)
	bak2, _ := os.ReadFile(path + ".bak")
	after, _ := os.Stat(path)
	if !bytes.Equal(again, written) || string(bak2) != original || !after.ModTime().Equal(before.ModTime()) {
		t.Error("the second run changed the file or its backup")
	}
}

func TestMCPConfig_WriteNewFiles(t *testing.T) {
	e := newEnv(t)
	proj := filepath.Join(e.dir, "project")
	tests := []struct {
		args []string
		path string
		key  string
	}{
		{[]string{"--client", "cursor"}, filepath.Join(e.dir, ".cursor", "mcp.json"), "mcpServers"},
		{[]string{"--client", "claude-code", "--project", proj}, filepath.Join(proj, ".mcp.json"), "mcpServers"},
		{[]string{"--client", "vscode", "--project", proj}, filepath.Join(proj, ".vscode", "mcp.json"), "servers"},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			out := e.must(append([]string{"mcp", "config", "--write"}, tt.args...)...)
			if !strings.Contains(out, "Created "+tt.path) {
				t.Errorf("stdout = %q", out)
			}
			b, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]map[string]map[string]any
			if err := json.Unmarshal(b, &doc); err != nil || len(doc) != 1 || doc[tt.key]["agentkeys"]["command"] != thisExecutable(t) {
				t.Errorf("%s = %s (%v)", tt.path, b, err)
			}
			if _, err := os.Stat(tt.path + ".bak"); !os.IsNotExist(err) {
				t.Errorf("a backup of a file that did not exist: %v", err)
			}
			if out := e.must(append([]string{"mcp", "config", "--write"}, tt.args...)...); !strings.Contains(out, "nothing changed") {
				t.Errorf("second run = %q", out)
			}
		})
	}
}

func TestMCPConfig_WriteRefusesWhatItCannotMerge(t *testing.T) {
	e := newEnv(t)
	proj := filepath.Join(e.dir, "p")
	path := filepath.Join(proj, ".vscode", "mcp.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	for _, content := range []string{
		"{\n  // JSONC comment\n  \"servers\": {}\n}\n",
		`{"servers": []}`,
		`{"servers": {"agentkeys": "x"}}`,
		`[1, 2]`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run("mcp", "config", "--client", "vscode", "--project", proj, "--write")
		if r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "nothing was written") || !strings.Contains(r.stderr, "Add this entry by hand") {
			t.Errorf("%q: exit %d, stderr %q", content, r.code, r.stderr)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%q was changed to %q", content, b)
		}
		if _, err := os.Stat(path + ".bak"); !os.IsNotExist(err) {
			t.Errorf("%q: a backup was written", content)
		}
	}
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

// TestMCP_EndToEndWithTypeScriptSDK runs mcp/e2e/e2e.mjs: the official MCP
// TypeScript SDK drives the built binary over stdio. It needs node and
// `npm ci` in mcp/e2e; without them it skips, except under CI=true.
func TestMCP_EndToEndWithTypeScriptSDK(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: the MCP end-to-end test with the TypeScript SDK needs it")
	}
	dir, err := filepath.Abs(filepath.Join("..", "mcp", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		skip("mcp/e2e/node_modules is missing: run `npm ci --prefix mcp/e2e`")
	}
	bin := agentkeysBinary(t)
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, node, "e2e.mjs")
	c.Dir = dir
	c.Env = append(e.environ(), "AGENTKEYS_BIN="+bin)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("node e2e.mjs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "e2e: PASS") {
		t.Fatalf("node e2e.mjs did not report PASS:\n%s", out)
	}
	t.Logf("%s", out)
}
