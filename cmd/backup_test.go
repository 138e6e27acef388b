package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinary_BackupRestore: a backup is a sealed copy; restore refuses to
// overwrite without --force and refuses a key that does not open the
// backup, changing nothing; with both it brings the old state back, tokens
// included.
func TestBinary_BackupRestore(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	const canary = "sk-backup-canary-0123456789"
	e.mustBin("", "credentials", "add", "--name", "Local", "--value", canary, "--allow-host", up.host())
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Local"))
	file := filepath.Join(e.dir, "vault-backup.db")
	out := e.mustBin("", "backup", file)
	if !strings.Contains(out, "Backed up the vault to "+file) {
		t.Errorf("backup said %q", out)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", err, st)
	}
	raw, _ := os.ReadFile(file)
	if strings.Contains(string(raw), canary) {
		t.Fatal("the backup holds the value in plain text")
	}
	if r := e.runBin("", "backup", file); r.code != 4 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("backup over an existing file: exit %d %s", r.code, r.stderr)
	}

	// Changes after the backup.
	e.mustBin("", "credentials", "add", "--name", "Later", "--value", "x", "--allow-host", "api.example.com")
	after := e.state()
	r := e.runBin("", "restore", file)
	if r.code != 4 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("restore without --force: exit %d %s", r.code, r.stderr)
	}
	good := e.vars["AGENTKEYS_MASTER_KEY"]
	e.vars["AGENTKEYS_MASTER_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	r = e.runBin("", "restore", file, "--force")
	if r.code != 6 || !strings.Contains(r.stderr, "does not open the backup") {
		t.Errorf("restore with the wrong key: exit %d %s", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_MASTER_KEY"] = good
	if e.state() != after {
		t.Fatal("a refused restore changed the vault")
	}

	var res struct {
		Replaced  bool   `json:"replaced"`
		KeySource string `json:"keySource"`
	}
	json.Unmarshal([]byte(e.mustBin("", "restore", file, "--force", "--json")), &res)
	if !res.Replaced || res.KeySource != "environment" {
		t.Errorf("restore --json = %+v", res)
	}
	if list := e.mustBin("", "credentials", "list"); strings.Contains(list, "Later") || !strings.Contains(list, "Local") {
		t.Errorf("after restore:\n%s", list)
	}
	e.mustBin("", "proxy", tok, up.URL+"/restored")
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+canary {
		t.Errorf("the token after restore injected %q", got)
	}

	// Into an empty home: the vault appears there.
	other := newEnv(t)
	other.vars["AGENTKEYS_MASTER_KEY"] = good
	other.mustBin("", "restore", file)
	if !strings.Contains(other.mustBin("", "credentials", "list"), "Local") {
		t.Error("restore into an empty home")
	}
	if m := other.configMap(); !strings.HasPrefix(m["workspaceId"].(string), "ws_") {
		t.Errorf("config.json after restore: %v", m)
	}
	if r := other.runBin("", "restore", filepath.Join(e.dir, "nope.db")); r.code != 3 {
		t.Errorf("restore of a missing file: exit %d", r.code)
	}
}

// TestBinary_BackupPassphraseVault: a passphrase vault's backup carries its
// key file, so it restores elsewhere with the passphrase alone.
func TestBinary_BackupPassphraseVault(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	e.vars["AGENTKEYS_PASSPHRASE"] = "correct horse battery"
	e.mustBin("", "init", "--passphrase")
	e.mustBin("", "credentials", "add", "--name", "Stripe", "--value", "sk_x")
	file := filepath.Join(e.dir, "b.db")
	e.mustBin("", "backup", file)

	other := newEnv(t)
	delete(other.vars, "AGENTKEYS_MASTER_KEY")
	other.vars["AGENTKEYS_PASSPHRASE"] = "wrong passphrase!"
	if r := other.runBin("", "restore", file); r.code != 6 {
		t.Fatalf("wrong passphrase: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(other.home, "vault.db")); err == nil {
		t.Fatal("a refused restore wrote a vault")
	}
	other.vars["AGENTKEYS_PASSPHRASE"] = "correct horse battery"
	other.mustBin("", "restore", file)
	if !strings.Contains(other.mustBin("", "credentials", "list"), "Stripe") {
		t.Error("restored passphrase vault does not open")
	}
}

// TestBinary_ExportImport: an encrypted export moves credentials, values
// included, to another vault; the file holds no value in plain text; a
// wrong passphrase changes nothing; names that exist are skipped.
func TestBinary_ExportImport(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	const canary = "sk-export-canary-9876543210"
	e.mustBin("", "credentials", "add", "--name", "Local", "--value", canary, "--allow-host", up.host())
	e.mustBin("", "credentials", "add", "--name", "Jira", "--username", "bot", "--password", "pw-canary-55", "--allow-host", "acme.atlassian.net",
		"--expires-at", "2031-06-01T00:00:00Z")
	file := filepath.Join(e.dir, "creds.akx")

	if r := e.runBin("", "export"); r.code != 2 || !strings.Contains(r.stderr, "--encrypted FILE") {
		t.Errorf("export without --encrypted: exit %d %s", r.code, r.stderr)
	}
	if r := e.runBin("", "export", "--encrypted", file); r.code != 2 || !strings.Contains(r.stderr, "AGENTKEYS_EXPORT_PASSPHRASE") {
		t.Errorf("export without a passphrase: exit %d %s", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_EXPORT_PASSPHRASE"] = "export pass phrase"
	out := e.mustBin("", "export", "--encrypted", file)
	if !strings.Contains(out, "Exported 2 credential(s)") {
		t.Errorf("export said %q", out)
	}
	raw, _ := os.ReadFile(file)
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 || strings.Contains(string(raw), canary) || strings.Contains(string(raw), "pw-canary-55") || strings.Contains(string(raw), "Jira") {
		t.Fatalf("export file is readable or not 0600:\n%s", raw)
	}

	other := newEnv(t)
	other.init()
	other.vars["AGENTKEYS_EXPORT_PASSPHRASE"] = "not the pass phrase"
	if r := other.runBin("", "import", file); r.code != 5 || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Errorf("wrong passphrase: exit %d %s", r.code, r.stderr)
	}
	if strings.Contains(other.mustBin("", "credentials", "list"), "Local") {
		t.Fatal("a refused import wrote something")
	}
	other.vars["AGENTKEYS_EXPORT_PASSPHRASE"] = "export pass phrase"
	var res struct{ Imported, Skipped []string }
	json.Unmarshal([]byte(other.mustBin("", "import", file, "--json")), &res)
	if strings.Join(res.Imported, ",") != "Jira,Local" || len(res.Skipped) != 0 {
		t.Errorf("import = %+v", res)
	}
	var shown struct {
		Credential struct{ ExpiresAt *time.Time }
	}
	json.Unmarshal([]byte(other.mustBin("", "credentials", "show", "Jira", "--json")), &shown)
	if shown.Credential.ExpiresAt == nil || !shown.Credential.ExpiresAt.Equal(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("imported expiry = %v, want the exported one", shown.Credential.ExpiresAt)
	}
	other.mustBin("", "proxy", "--credential", "Local", up.URL+"/imported")
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+canary {
		t.Errorf("imported credential injected %q", got)
	}
	json.Unmarshal([]byte(other.mustBin("", "import", file, "--json")), &res)
	if len(res.Imported) != 0 || strings.Join(res.Skipped, ",") != "Jira,Local" {
		t.Errorf("second import = %+v", res)
	}
}
