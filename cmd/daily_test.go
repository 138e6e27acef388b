package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

// runBin runs the built agentkeys binary in e's environment with stdin (no
// terminal) and returns what it printed and its exit code.
func (e *testEnv) runBin(stdin string, args ...string) result {
	e.t.Helper()
	c := exec.Command(agentkeysBinary(e.t), args...)
	c.Env = e.environ()
	c.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// mustBin is runBin for a command that has to succeed; it returns stdout.
func (e *testEnv) mustBin(stdin string, args ...string) string {
	e.t.Helper()
	r := e.runBin(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("agentkeys %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *testEnv) configMap() map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.home, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("config.json: %v\n%s", err, b)
	}
	return m
}

// TestBinary_ConfigKeepsUnknownKeys: init and logout both go through the one
// config.json writer, which keeps fields it does not know; logout puts the
// local workspace id back.
func TestBinary_ConfigKeepsUnknownKeys(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(e.home, 0o700)
	os.WriteFile(filepath.Join(e.home, "config.json"), []byte(`{"editor":"vi","theme":{"dark":true}}`), 0o600)
	var res struct {
		WorkspaceID string `json:"workspaceId"`
	}
	json.Unmarshal([]byte(e.mustBin("", "init", "--json")), &res)
	m := e.configMap()
	if m["editor"] != "vi" || m["workspaceId"] != res.WorkspaceID || m["theme"] == nil {
		t.Fatalf("after init: config.json = %v", m)
	}

	// As after `agentkeys login`.
	m["apiKey"], m["apiUrl"], m["workspaceId"] = "ak_ws_x", "https://agentkeys.example.com", "ws_remote"
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(e.home, "config.json"), b, 0o600)
	out := e.mustBin("", "logout")
	if !strings.Contains(out, "Logged out of https://agentkeys.example.com") {
		t.Errorf("logout said %q", out)
	}
	m = e.configMap()
	if m["editor"] != "vi" || m["theme"] == nil || m["workspaceId"] != res.WorkspaceID || m["apiKey"] != "" || m["apiUrl"] != "" {
		t.Fatalf("after logout: config.json = %v, want the local workspace %s and the other keys kept", m, res.WorkspaceID)
	}
	if st, _ := os.Stat(filepath.Join(e.home, "config.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v", st.Mode().Perm())
	}
	// The vault still works: the config points at it.
	e.mustBin("", "status")
}

// TestBinary_FailedInitLeavesNothing: init without any place for the key
// fails (exit 6) and leaves no directory behind.
func TestBinary_FailedInitLeavesNothing(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	r := e.runBin("", "init")
	if r.code != 6 || !strings.Contains(r.stderr, "AGENTKEYS_MASTER_KEY") {
		t.Fatalf("init without a key place: exit %d, stderr %s", r.code, r.stderr)
	}
	if _, err := os.Stat(e.home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed init left %s behind (%v)", e.home, err)
	}
	// An existing home directory is kept (it was the user's), empty.
	os.MkdirAll(e.home, 0o700)
	if r := e.runBin("", "init"); r.code != 6 {
		t.Fatalf("exit %d", r.code)
	}
	if ents, err := os.ReadDir(e.home); err != nil || len(ents) != 0 {
		t.Fatalf("home after failed init: %v %v", ents, err)
	}
}

// TestBinary_CredentialsUpdate: update changes the value and the allowlist
// in place; the agent's proxy token keeps working and injects the new value;
// bad updates change nothing.
func TestBinary_CredentialsUpdate(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	const oldValue, newValue = "sk-old-value-1234", "sk-new-value-5678"
	e.mustBin("", "credentials", "add", "--name", "Local API", "--value", oldValue, "--allow-host", up.host())
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Local API"))

	// A host off the allowlist: the refusal names the command that fixes it.
	r := e.runBin("", "proxy", tok, "http://localhost:"+strings.Split(up.host(), ":")[1]+"/x")
	if r.code != 5 || !strings.Contains(r.stderr, `agentkeys credentials update "Local API" --add-host localhost:`) {
		t.Fatalf("off-allowlist: exit %d, stderr %s", r.code, r.stderr)
	}

	out := e.mustBin(newValue+"\n", "credentials", "update", "local api", "--value", "-", "--add-host", "api.example.com")
	if !strings.Contains(out, "Updated credential Local API") || !strings.Contains(out, "value replaced") ||
		!strings.Contains(out, "Allowed hosts: "+up.host()+", api.example.com") || strings.Contains(out, newValue) {
		t.Fatalf("update said:\n%s", out)
	}
	e.mustBin("", "proxy", tok, up.URL+"/after")
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+newValue {
		t.Fatalf("after update the upstream got %q, want the new value", got)
	}

	var js struct {
		Credential agentkeys.Credential `json:"credential"`
		Changed    []string             `json:"changed"`
	}
	if err := json.Unmarshal([]byte(e.mustBin("", "credentials", "update", "Local API", "--remove-host", "api.example.com", "--name", "Local", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Credential.Name != "Local" || strings.Join(js.Credential.AllowedHosts, ",") != up.host() || strings.Join(js.Changed, ",") != "name,allowedHosts" {
		t.Fatalf("--json = %+v", js)
	}

	before := e.state()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"Local"}, 2, "nothing to update"},
		{[]string{"Local", "--username", "u", "--password", "p"}, 2, "--username does not fit: this credential is API_KEY"},
		{[]string{"Local", "--remove-host", up.host()}, 2, "would leave no allowed host"},
		{[]string{"Local", "--remove-host", "nowhere.example.com"}, 3, "nowhere.example.com is not on this credential's allowed hosts"},
		{[]string{"Local", "--allow-host", "a.example.com", "--add-host", "b.example.com"}, 2, "not both"},
		{[]string{"Local", "--value", ""}, 2, "--value is empty"},
		{[]string{"Local", "--allow-host", "*.com"}, 2, ""},
		{[]string{"ghost", "--value", "x"}, 3, ""},
		{[]string{"Local", "--value"}, 2, ""},
	} {
		r := e.runBin("", append([]string{"credentials", "update"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("update %v: exit %d, stderr %s; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if e.state() != before {
		t.Error("a refused update changed the vault")
	}
	e.mustBin("", "proxy", tok, up.URL+"/still")
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+newValue {
		t.Fatalf("the token stopped injecting the value: %q", got)
	}
}

// TestBinary_CredentialsShow: show prints everything but the value, with
// the agents holding the credential.
func TestBinary_CredentialsShow(t *testing.T) {
	e := newEnv(t)
	e.init()
	const value = "sk-show-canary-value"
	e.mustBin("", "credentials", "add", "--name", "Resend Production", "--value", value)
	e.mustBin("", "agents", "create", "--name", "mailer", "--credential", "Resend Production")
	out := e.mustBin("", "credentials", "show", "resend production")
	for _, want := range []string{"Name:           Resend Production", "Type:           API_KEY", "Allowed hosts:  api.resend.com", "Last used:      never", "mailer (agent_"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	var js struct {
		Credential map[string]any   `json:"credential"`
		Agents     []map[string]any `json:"agents"`
	}
	raw := e.mustBin("", "credentials", "show", "Resend Production", "--json")
	if err := json.Unmarshal([]byte(raw), &js); err != nil {
		t.Fatal(err)
	}
	if js.Credential["type"] != "API_KEY" || len(js.Agents) != 1 || js.Agents[0]["agentName"] != "mailer" || js.Agents[0]["assignedAt"] == nil {
		t.Errorf("show --json = %s", raw)
	}
	if strings.Contains(out+raw, value) {
		t.Error("show printed the value")
	}
	if r := e.runBin("", "credentials", "show", "ghost"); r.code != 3 {
		t.Errorf("show ghost: exit %d", r.code)
	}
	if strings.Contains(out, "Headers:") || strings.Contains(raw, "headerNames") || strings.Contains(raw, "paramName") {
		t.Errorf("an API_KEY shows header or parameter names:\n%s\n%s", out, raw)
	}
}

// TestBinary_CredentialsShowNames: show names the headers of a
// CUSTOM_HEADER credential and the parameter of a QUERY_PARAM one, never
// their values.
func TestBinary_CredentialsShowNames(t *testing.T) {
	e := newEnv(t)
	e.init()
	const v1, v2, v3 = "sk-ant-show-canary-1", "show-canary-2", "AIza-show-canary-3"
	e.mustBin("", "credentials", "add", "--name", "Anthropic", "--type", "CUSTOM_HEADER",
		"--header", "x-api-key: "+v1, "--header", "anthropic-version: "+v2, "--allow-host", "api.anthropic.com")
	e.mustBin("", "credentials", "add", "--name", "Maps", "--type", "QUERY_PARAM", "--param", "key", "--value", v3,
		"--allow-host", "maps.googleapis.com")
	out := e.mustBin("", "credentials", "show", "Anthropic")
	if !strings.Contains(out, "Headers:        x-api-key, anthropic-version (values never shown)") {
		t.Errorf("show lacks the header names:\n%s", out)
	}
	maps := e.mustBin("", "credentials", "show", "Maps")
	if !strings.Contains(maps, "Parameter:      key (value never shown)") {
		t.Errorf("show lacks the parameter name:\n%s", maps)
	}
	var js struct {
		HeaderNames []string `json:"headerNames"`
		ParamName   string   `json:"paramName"`
	}
	raw := e.mustBin("", "credentials", "show", "Anthropic", "--json")
	if err := json.Unmarshal([]byte(raw), &js); err != nil || len(js.HeaderNames) != 2 || js.ParamName != "" {
		t.Errorf("show --json = %s (%v)", raw, err)
	}
	rawMaps := e.mustBin("", "credentials", "show", "Maps", "--json")
	js.HeaderNames = nil
	if err := json.Unmarshal([]byte(rawMaps), &js); err != nil || js.ParamName != "key" || js.HeaderNames != nil {
		t.Errorf("show --json = %s (%v)", rawMaps, err)
	}
	all := out + maps + raw + rawMaps
	for _, v := range []string{v1, v2, v3} {
		if strings.Contains(all, v) {
			t.Errorf("show printed the value %q", v)
		}
	}
}

// TestBinary_RemoveConfirms: remove needs --yes without a terminal (exit 2,
// nothing removed); --yes --json says what went.
func TestBinary_RemoveConfirms(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.mustBin("", "credentials", "add", "--name", "Resend Production", "--value", "re_x")
	e.mustBin("", "agents", "create", "--name", "mailer", "--credential", "Resend Production")
	before := e.state()
	for _, args := range [][]string{{"credentials", "remove", "Resend Production"}, {"agents", "remove", "mailer"}} {
		r := e.runBin("", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "needs --yes") {
			t.Errorf("%v without --yes: exit %d, stderr %s", args, r.code, r.stderr)
		}
	}
	if e.state() != before {
		t.Fatal("a refused remove changed the vault")
	}
	var rev struct {
		Revoked map[string]string `json:"revoked"`
	}
	json.Unmarshal([]byte(e.mustBin("", "agents", "revoke", "mailer", "--credential", "Resend Production", "--json")), &rev)
	if rev.Revoked["agentName"] != "mailer" || rev.Revoked["credentialName"] != "Resend Production" {
		t.Errorf("revoke --json = %v", rev)
	}
	var rm struct {
		Removed map[string]string `json:"removed"`
	}
	json.Unmarshal([]byte(e.mustBin("", "credentials", "remove", "Resend Production", "--yes", "--json")), &rm)
	if rm.Removed["name"] != "Resend Production" || !strings.HasPrefix(rm.Removed["id"], "cred_") {
		t.Errorf("remove --json = %v", rm)
	}
	json.Unmarshal([]byte(e.mustBin("", "agents", "rm", "mailer", "-y", "--json")), &rm)
	if rm.Removed["name"] != "mailer" {
		t.Errorf("agents remove --json = %v", rm)
	}
}

// TestRemove_AsksInTerminal: in a terminal, remove names the agents that
// lose access and goes ahead only on "y".
func TestRemove_AsksInTerminal(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Stripe", "--value", "sk_x")
	e.must("agents", "create", "--name", "billing", "--credential", "Stripe")
	answer := func(a string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(ios *cmd.IOStreams, _ *bytes.Buffer) {
			ios.SetStdinTTY(true)
			ios.PromptLine = func(p string) (string, error) { fmt.Fprint(ios.ErrOut, p); return a, nil }
		}
	}
	r := e.runWith(answer("n"), "credentials", "remove", "stripe")
	if r.code != 1 || !strings.Contains(r.stderr, "These agents lose access: billing.") || !strings.Contains(r.stderr, "Remove credential Stripe") ||
		!strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("answer n: exit %d, stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(e.must("credentials", "list"), "Stripe") {
		t.Fatal("removed after answering n")
	}
	r = e.runWith(answer("yes"), "credentials", "remove", "stripe")
	if r.code != 0 || strings.Contains(e.must("credentials", "list"), "Stripe") {
		t.Fatalf("answer yes: exit %d %s", r.code, r.stderr)
	}
}

// TestBinary_CompletionAndSuggestions: names complete from the vault, and
// nothing (no error either) when the vault is locked; a mistyped command
// gets cobra's suggestion.
func TestBinary_CompletionAndSuggestions(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.mustBin("", "credentials", "add", "--name", "Resend Production", "--value", "re_x")
	e.mustBin("", "credentials", "add", "--name", "Stripe", "--value", "sk_x")
	e.mustBin("", "agents", "create", "--name", "mailer")
	r := e.runBin("", "__complete", "credentials", "show", "")
	if r.code != 0 || !strings.Contains(r.stdout, "Resend Production\n") || !strings.Contains(r.stdout, "Stripe\n") {
		t.Errorf("complete credential names: %q %q", r.stdout, r.stderr)
	}
	if out := e.mustBin("", "__complete", "credentials", "update", "st"); strings.Contains(out, "Resend") || !strings.Contains(out, "Stripe") {
		t.Errorf("complete with a prefix: %q", out)
	}
	if out := e.mustBin("", "__complete", "agents", "assign", "mailer", "--credential", ""); !strings.Contains(out, "Stripe") {
		t.Errorf("complete --credential: %q", out)
	}
	if out := e.mustBin("", "__complete", "agents", "remove", ""); !strings.Contains(out, "mailer") {
		t.Errorf("complete agent names: %q", out)
	}
	if out := e.mustBin("", "__complete", "credentials", "add", "--type", ""); !strings.Contains(out, "BASIC_AUTH") {
		t.Errorf("complete --type: %q", out)
	}
	if out := e.mustBin("", "__complete", "credentials", "add", "--service", ""); !strings.Contains(out, "stripe") {
		t.Errorf("complete --service: %q", out)
	}
	if out := e.mustBin("", "__complete", "mcp", "config", "--client", ""); !strings.Contains(out, "claude-desktop") {
		t.Errorf("complete --client: %q", out)
	}
	// Locked: a wrong key completes nothing and prints no error.
	e.vars["AGENTKEYS_MASTER_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	r = e.runBin("", "__complete", "credentials", "show", "")
	if r.code != 0 || strings.Contains(r.stdout, "Stripe") || strings.Contains(r.stderr, "error") {
		t.Errorf("locked: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	r = e.runBin("", "credentails", "list")
	if r.code != 2 || !strings.Contains(r.stderr, `did you mean "credentials"?`) {
		t.Errorf("mistyped command: exit %d %s", r.code, r.stderr)
	}
	r = e.runBin("", "agents", "revok")
	if r.code != 2 || !strings.Contains(r.stderr, `did you mean "revoke"?`) {
		t.Errorf("mistyped subcommand: exit %d %s", r.code, r.stderr)
	}
}

// TestTables_FitTheTerminal: at 80 and 100 columns no line is wider than
// the terminal; ids are shortened to a prefix that works as an argument;
// --wide and piped output are unchanged.
func TestTables_FitTheTerminal(t *testing.T) {
	e := newEnv(t)
	e.init()
	long := "A credential with a rather long name for a table"
	e.must("credentials", "add", "--name", long, "--value", "v", "--allow-host", "api.example.com", "--allow-host", "uploads.example.com", "--allow-host", "*.files.example.net")
	e.must("credentials", "add", "--name", "Stripe", "--value", "sk_x")
	tty := func(width int) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.SetStdoutTTY(true); ios.SetWidth(width) }
	}
	for _, width := range []int{80, 100} {
		r := e.runWith(tty(width), "credentials", "list")
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("width %d: line of %d columns: %q", width, n, line)
			}
		}
		if !strings.Contains(r.stdout, "…") {
			t.Errorf("width %d: nothing truncated:\n%s", width, r.stdout)
		}
		t.Logf("width %d:\n%s", width, r.stdout)
	}
	r := e.runWith(tty(100), "credentials", "list")
	var short string
	for _, f := range strings.Fields(r.stdout) {
		if strings.HasPrefix(f, "cred_") {
			short = f
		}
	}
	if short == "" {
		t.Fatalf("no shortened id at 100 columns:\n%s", r.stdout)
	}
	if out := e.must("credentials", "show", short); !strings.Contains(out, "ID:             "+short) {
		t.Errorf("the shortened id %s does not work as an argument:\n%s", short, out)
	}
	if wide := e.runWith(tty(80), "credentials", "list", "--wide"); !strings.Contains(wide.stdout, long) || strings.Contains(wide.stdout, "…") {
		t.Errorf("--wide:\n%s", wide.stdout)
	}
	if piped := e.must("credentials", "list"); !strings.Contains(piped, long) || strings.Contains(piped, "…") {
		t.Errorf("piped:\n%s", piped)
	}
}

// TestBinary_ProxyUserAgentAndJSON: one-off proxy sends
// User-Agent: agentkeys/<version> unless -H sets one; --json prints status,
// headers and body.
func TestBinary_ProxyUserAgentAndJSON(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.mustBin("", "credentials", "add", "--name", "Local", "--value", "v", "--allow-host", up.host())
	e.mustBin("", "proxy", "--credential", "Local", up.URL+"/a")
	if ua := up.last(t).Header.Get("User-Agent"); !strings.HasPrefix(ua, "agentkeys/") {
		t.Errorf("User-Agent = %q, want agentkeys/<version>", ua)
	}
	e.mustBin("", "proxy", "--credential", "Local", up.URL+"/b", "-H", "User-Agent: mine/1.0")
	if ua := up.last(t).Header.Get("User-Agent"); ua != "mine/1.0" {
		t.Errorf("User-Agent with -H = %q", ua)
	}
	var js struct {
		Status  int                 `json:"status"`
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	}
	if err := json.Unmarshal([]byte(e.mustBin("", "proxy", "--credential", "Local", up.URL+"/status/404", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Status != 404 || js.Body != `{"error":"nope"}` || js.Headers["X-Upstream"][0] != "yes" {
		t.Errorf("proxy --json = %+v", js)
	}
}

// TestBinary_UpListenAsAsked: `up --listen 0.0.0.0:0 --json` prints one JSON
// line naming 0.0.0.0 and the port picked, and a loopback URL.
func TestBinary_UpListenAsAsked(t *testing.T) {
	e := newEnv(t)
	e.init()
	c := exec.Command(agentkeysBinary(t), "up", "--listen", "0.0.0.0:0", "--json")
	c.Env = e.environ()
	stdout, _ := c.StdoutPipe()
	stderr := &syncBuffer{} // written by exec's copying goroutine while we read it
	c.Stderr = stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no line: %v %s", err, stderr.String())
	}
	var got struct{ Listen, URL string }
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("not one JSON line: %q", line)
	}
	if !strings.HasPrefix(got.Listen, "0.0.0.0:") || got.Listen == "0.0.0.0:0" || got.URL != "http://127.0.0.1:"+strings.TrimPrefix(got.Listen, "0.0.0.0:") {
		t.Errorf("up --json = %q", line)
	}
	want := "listening on " + got.Listen + ", which is not loopback"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("warning does not name the address as asked: %s", stderr.String())
	}
}

// TestBinary_MCPConfigWithEnv: --with-env copies the variable's value into
// the entry, with a warning; an unset variable is refused.
func TestBinary_MCPConfigWithEnv(t *testing.T) {
	e := newEnv(t)
	e.init()
	r := e.runBin("", "mcp", "config", "--client", "cursor", "--with-env", "AGENTKEYS_MASTER_KEY", "--write")
	if r.code != 0 || !strings.Contains(r.stderr, "now holds the value of AGENTKEYS_MASTER_KEY") {
		t.Fatalf("exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, ".cursor", "mcp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]struct{ Env map[string]string }
	json.Unmarshal(b, &doc)
	if doc["mcpServers"]["agentkeys"].Env["AGENTKEYS_MASTER_KEY"] != e.vars["AGENTKEYS_MASTER_KEY"] {
		t.Errorf("entry = %s", b)
	}
	var w struct {
		Path    string `json:"path"`
		Changed bool   `json:"changed"`
	}
	json.Unmarshal([]byte(e.mustBin("", "mcp", "config", "--client", "cursor", "--with-env", "AGENTKEYS_MASTER_KEY", "--write", "--json")), &w)
	if w.Path != filepath.Join(e.dir, ".cursor", "mcp.json") || w.Changed {
		t.Errorf("--write --json the second time = %+v", w)
	}
	r = e.runBin("", "mcp", "config", "--env", "AGENTKEYS_PASSPHRASE")
	if r.code != 2 || !strings.Contains(r.stderr, "AGENTKEYS_PASSPHRASE is not set here") {
		t.Errorf("unset variable: exit %d %s", r.code, r.stderr)
	}
	// The entry it prints starts an MCP server that opens the vault with the key.
	if !strings.Contains(e.mustBin("", "mcp", "config", "--env", "AGENTKEYS_MASTER_KEY"), e.vars["AGENTKEYS_MASTER_KEY"]) {
		t.Error("printed entry lacks the key")
	}
}

// TestRemoteMode_UpdateShowImport: update, show, remove --yes and import
// work on a server's workspace as on the local vault; backup, export and
// key rotation say they are for the local vault.
func TestRemoteMode_UpdateShowImport(t *testing.T) {
	e := newEnv(t)
	url, key := liveServer(t)
	up, seen := recordingUpstream(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	e.init()
	// An export of the local vault, to import remotely.
	e.must("credentials", "add", "--name", "Imported", "--value", "sk-imported-1", "--allow-host", upHost)
	e.vars["AGENTKEYS_EXPORT_PASSPHRASE"] = "export pass phrase"
	file := filepath.Join(e.dir, "x.akx")
	e.must("export", "--encrypted", file)

	e.mustStdin(key+"\n", "login", "--server", url, "--api-key", "-")
	e.mustStdin("sk-remote-old\n", "credentials", "add", "--name", "Upstream", "--value", "-", "--allow-host", upHost)
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Upstream"))
	e.mustStdin("sk-remote-new\n", "credentials", "update", "upstream", "--value", "-", "--add-host", "api.example.com")
	e.must("proxy", tok, up.URL+"/after-update")
	if got := seen(); len(got) == 0 || got[len(got)-1] != "Bearer sk-remote-new" {
		t.Fatalf("remote token after update sent %v", got)
	}
	out := e.must("credentials", "show", "Upstream")
	if !strings.Contains(out, "Allowed hosts:  "+upHost+", api.example.com") || !strings.Contains(out, "bot (agent_") {
		t.Errorf("remote show:\n%s", out)
	}
	var res struct{ Imported []string }
	json.Unmarshal([]byte(e.must("import", file, "--json")), &res)
	if len(res.Imported) != 1 || res.Imported[0] != "Imported" {
		t.Errorf("remote import = %+v", res)
	}
	e.must("proxy", "--credential", "Imported", up.URL+"/imported")
	if got := seen(); got[len(got)-1] != "Bearer sk-imported-1" {
		t.Errorf("imported credential sent %q", got[len(got)-1])
	}
	for _, args := range [][]string{{"backup", filepath.Join(e.dir, "b.db")}, {"export", "--encrypted", filepath.Join(e.dir, "y.akx")}, {"key", "rotate"}} {
		if r := e.run(args...); r.code != 2 || !strings.Contains(r.stderr, "works on the local vault") {
			t.Errorf("%v while logged in: exit %d %s", args, r.code, r.stderr)
		}
	}
	if r := e.run("credentials", "remove", "Upstream"); r.code != 2 {
		t.Errorf("remote remove without --yes: exit %d", r.code)
	}
	e.must("credentials", "remove", "Upstream", "--yes")
}

// TestRemoteMode_ShowNames: logged in to a server, `credentials show` (the
// built binary) names a CUSTOM_HEADER's headers and a QUERY_PARAM's
// parameter, by name, id or id prefix, in text and --json, as it does on the
// local vault, and never prints a value.
func TestRemoteMode_ShowNames(t *testing.T) {
	e := newEnv(t)
	url, key := liveServer(t)
	e.init()
	e.mustStdin(key+"\n", "login", "--server", url, "--api-key", "-")
	const v1, v2, v3 = "sk-ant-remote-canary-1", "remote-canary-2", "AIza-remote-canary-3"
	e.mustBin("", "credentials", "add", "--name", "Anthropic", "--type", "CUSTOM_HEADER",
		"--header", "x-api-key: "+v1, "--header", "anthropic-version: "+v2, "--allow-host", "api.anthropic.com")
	e.mustBin("", "credentials", "add", "--name", "Maps", "--type", "QUERY_PARAM", "--param", "key", "--value", v3,
		"--allow-host", "maps.googleapis.com")
	var all strings.Builder
	var js struct {
		Credential struct {
			ID          string   `json:"id"`
			HeaderNames []string `json:"headerNames"`
		} `json:"credential"`
		HeaderNames []string `json:"headerNames"`
		ParamName   string   `json:"paramName"`
	}
	raw := e.mustBin("", "credentials", "show", "anthropic", "--json")
	all.WriteString(raw)
	if err := json.Unmarshal([]byte(raw), &js); err != nil || strings.Join(js.HeaderNames, ",") != "x-api-key,anthropic-version" ||
		strings.Join(js.Credential.HeaderNames, ",") != "x-api-key,anthropic-version" || js.ParamName != "" {
		t.Errorf("remote show --json = %s (%v)", raw, err)
	}
	for _, ref := range []string{"Anthropic", js.Credential.ID, js.Credential.ID[:len(js.Credential.ID)-4]} {
		out := e.mustBin("", "credentials", "show", ref)
		all.WriteString(out)
		if !strings.Contains(out, "Headers:        x-api-key, anthropic-version (values never shown)") {
			t.Errorf("remote show %s lacks the header names:\n%s", ref, out)
		}
	}
	maps := e.mustBin("", "credentials", "show", "Maps")
	rawMaps := e.mustBin("", "credentials", "show", "Maps", "--json")
	all.WriteString(maps + rawMaps)
	if !strings.Contains(maps, "Parameter:      key (value never shown)") {
		t.Errorf("remote show lacks the parameter name:\n%s", maps)
	}
	js.HeaderNames, js.ParamName = nil, ""
	if err := json.Unmarshal([]byte(rawMaps), &js); err != nil || js.ParamName != "key" || js.HeaderNames != nil {
		t.Errorf("remote show --json = %s (%v)", rawMaps, err)
	}
	for _, v := range []string{v1, v2, v3} {
		if strings.Contains(all.String(), v) {
			t.Errorf("remote show printed the value %q", v)
		}
	}
}

// TestAudit_HostOfARefusal: a request refused for a missing header (the
// workspace key without X-Credential-Name) still records the host it was
// aimed at; piped audit lines carry the code in a column of its own.
func TestAudit_HostOfARefusal(t *testing.T) {
	e := newEnv(t)
	wsKey := e.init()
	e.must("credentials", "add", "--name", "Stripe", "--value", "sk_x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, done := e.startUp(t, ctx, "--listen", "127.0.0.1:0")
	req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+wsKey)
	req.Header.Set("X-Target-Url", "https://api.stripe.com/v1/charges?secret=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	<-done
	line := strings.TrimSpace(e.must("audit", "--limit", "1"))
	f := strings.Split(line, "\t")
	if len(f) != 11 || f[4] != "api.stripe.com" || f[5] != "/v1/charges" || f[6] != "400" || f[7] != "denied" || f[8] != "BAD_REQUEST" {
		t.Errorf("audit line = %q", line)
	}
}

// TestBinary_AuditNamesRevokedAgent: a request with a token whose grant
// is gone (revoked, replaced by a new assignment, removed with its agent)
// is refused (exit 5) and its audit row still names the agent and the
// credential it was issued to; an unknown token names nobody.
func TestBinary_AuditNamesRevokedAgent(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.mustBin("", "credentials", "add", "--name", "Local API", "--value", "sk-revoked-audit", "--allow-host", up.host())
	revoked := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Local API"))
	e.mustBin("", "agents", "revoke", "bot", "--credential", "Local API")
	replaced := strings.TrimSpace(e.mustBin("", "agents", "assign", "bot", "--credential", "Local API"))
	e.mustBin("", "agents", "assign", "bot", "--credential", "Local API")
	removed := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "gone", "--credential", "Local API"))
	e.mustBin("", "agents", "remove", "gone", "--yes")
	unknown := "pxr_" + strings.Repeat("A", 43)

	for _, c := range []struct{ name, tok, agent, cred string }{
		{"revoked", revoked, "bot", "Local API"},
		{"replaced", replaced, "bot", "Local API"},
		{"agent removed", removed, "gone", "Local API"},
		{"unknown", unknown, "", ""},
	} {
		if r := e.runBin("", "proxy", c.tok, up.URL+"/x"); r.code != 5 || !strings.Contains(r.stderr, "invalid or revoked proxy token") {
			t.Fatalf("%s token: exit %d, stderr %s", c.name, r.code, r.stderr)
		}
		var js struct {
			Events []agentkeys.AuditEvent `json:"events"`
		}
		raw := e.mustBin("", "audit", "--limit", "1", "--json")
		if err := json.Unmarshal([]byte(raw), &js); err != nil || len(js.Events) != 1 {
			t.Fatalf("audit --json = %s (%v)", raw, err)
		}
		ev := js.Events[0]
		if ev.AgentName != c.agent || ev.CredentialName != c.cred || (c.agent != "") != strings.HasPrefix(ev.AgentID, "agent_") ||
			ev.Status != 401 || ev.Code != agentkeys.EUNAUTHORIZED {
			t.Errorf("%s token: audit row %+v, want agent %q credential %q", c.name, ev, c.agent, c.cred)
		}
	}
	if n := up.count(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}
