package cmd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
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
}
