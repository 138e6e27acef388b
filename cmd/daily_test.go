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
