package cmd_test

import (
	"database/sql"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// hasTerminalControl reports whether s holds a byte or character that a
// terminal would act on or that hides text: C0/C1 controls (but newline and tab),
// bidi overrides and isolates.
func hasTerminalControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
	})
}

// TestBinary_TerminalInjectionInNames: the built binary refuses names that
// carry terminal controls or bidi characters (exit 2, nothing written, the
// message does not replay them), and when such a name is in storage anyway
// (written by another tool), its tables print it neutralised.
func TestBinary_TerminalInjectionInNames(t *testing.T) {
	bin := agentkeysBinary(t)
	e := newEnv(t)
	e.init()
	before := e.state()
	for _, name := range []string{"evil\x1b]0;owned\x07", "x\x1b[2J\x1b[H", "x\u009b31m", "invoice\u202Efdp.exe", "a\u2066b", "zero\u200Bwidth", "bad\xffutf8"} {
		c := exec.Command(bin, "credentials", "add", "--name", name, "--value", "v", "--allow-host", "api.example.com")
		c.Env = e.environ()
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("add %q: err %v, want exit 2 (stderr %q)", name, err, stderr.String())
		}
		if hasTerminalControl(stdout.String() + stderr.String()) {
			t.Errorf("add %q: output replays a control character: %q", name, stdout.String()+stderr.String())
		}
		c = exec.Command(bin, "agents", "create", "--name", name)
		c.Env = e.environ()
		if out, err := c.CombinedOutput(); err == nil || hasTerminalControl(string(out)) {
			t.Errorf("agents create %q: err %v, output %q", name, err, out)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("refused names changed the vault:\n%s", after)
	}

	// A name already in storage (another tool wrote the file) is shown
	// neutralised by every table.
	e.must("credentials", "add", "--name", "Plain", "--value", "v", "--allow-host", "api.example.com")
	e.must("agents", "create", "--name", "bot", "--credential", "Plain")
	db, err := sql.Open("sqlite", filepath.Join(e.home, "vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE credentials SET name = ?`, "Pl\x1b]0;owned\x07ain\u202E\u009b2J"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE agents SET name = ?`, "b\x1b[31mot"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, args := range [][]string{{"credentials", "list"}, {"agents", "list"}} {
		c := exec.Command(bin, args...)
		c.Env = e.environ()
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
		if hasTerminalControl(string(out)) || !strings.Contains(string(out), `\x1b`) {
			t.Errorf("%v printed %q, want the controls escaped", args, out)
		}
	}
}
