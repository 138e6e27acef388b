package localvault_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	_ "modernc.org/sqlite"
)

// rawDB opens vault.db directly, bypassing the vault (tests only).
func rawDB(t *testing.T, home string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(home, localvault.DBFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mode(t *testing.T, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFiles_Modes(t *testing.T) {
	old := setUmask(0o022)
	defer setUmask(old)
	parent := t.TempDir()
	cfg := testConfig(t)
	cfg.Home = filepath.Join(parent, "nested", "home")
	mustInit(t, cfg)
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Write something so the WAL, shared-memory and journal files exist.
	if _, err := v.CreateAgent(context.Background(), "bot"); err != nil {
		t.Fatal(err)
	}
	if err := v.BeginAudit(context.Background(), &agentkeys.AuditEvent{Method: "GET"}); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, filepath.Join(cfg.Home, localvault.AuditDirName)); got != 0o700 {
		t.Errorf("audit journal directory mode = %o, want 700", got)
	}
	journals := journalFiles(t, cfg.Home)
	if len(journals) != 1 {
		t.Fatalf("journals = %v, want one", journals)
	}
	if got := mode(t, journals[0]); got != 0o600 {
		t.Errorf("journal mode = %o, want 600", got)
	}
	if got := mode(t, cfg.Home); got != 0o700 {
		t.Errorf("home mode = %o, want 700", got)
	}
	db := filepath.Join(cfg.Home, localvault.DBFileName)
	for _, name := range []string{db, db + "-wal", db + "-shm"} {
		if got := mode(t, name); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(name), got)
		}
	}
	if v.Path() != db {
		t.Errorf("Path() = %s, want %s", v.Path(), db)
	}
}

func TestFiles_ExistingHomeTightened(t *testing.T) {
	cfg := testConfig(t)
	if err := os.Chmod(cfg.Home, 0o755); err != nil {
		t.Fatal(err)
	}
	mustInit(t, cfg)
	if got := mode(t, cfg.Home); got != 0o700 {
		t.Fatalf("home mode = %o, want 700", got)
	}
}

func TestOpen_NewerSchemaRefused(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	known := localvault.SchemaVersion()
	if _, err := rawDB(t, cfg.Home).Exec(fmt.Sprintf("PRAGMA user_version = %d", known+1)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, cfg.Home)
	_, err := localvault.Open(context.Background(), cfg)
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	want := fmt.Sprintf("vault.db was written by a newer agentkeys (schema %d, this binary knows %d): upgrade agentkeys", known+1, known)
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	wantSnapshot(t, cfg.Home, before)
}

func TestOpen_NoVault(t *testing.T) {
	cfg := testConfig(t)
	_, err := localvault.Open(context.Background(), cfg)
	wantCode(t, err, agentkeys.ENOTFOUND)
	if !strings.Contains(err.Error(), "run `agentkeys init`") {
		t.Fatalf("error %q does not say what to do", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, localvault.DBFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created a vault file: %v", err)
	}
}

func TestOpen_NotAVault(t *testing.T) {
	cfg := testConfig(t)
	if err := os.WriteFile(filepath.Join(cfg.Home, localvault.DBFileName), []byte("hello, this is not sqlite at all, not even close........................................................."), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := localvault.Open(context.Background(), cfg)
	wantCode(t, err, agentkeys.EUNAVAILABLE)
}

// snapshot reads every file under home (audit journals included), by path
// relative to home.
func snapshot(t *testing.T, home string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(home, path)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantSnapshot fails unless home holds the same files with the same bytes
// (an empty -wal/-shm appearing is not a write of data; a non-empty one is).
func wantSnapshot(t *testing.T, home string, before map[string][]byte) {
	t.Helper()
	after := snapshot(t, home)
	for name, b := range after {
		old, ok := before[name]
		if !ok {
			if strings.HasSuffix(name, "-shm") || (strings.HasSuffix(name, "-wal") && len(b) == 0) {
				continue
			}
			t.Errorf("new file %s (%d bytes)", name, len(b))
			continue
		}
		if !bytes.Equal(old, b) && !strings.HasSuffix(name, "-shm") {
			t.Errorf("%s changed", name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("%s was removed", name)
		}
	}
}

func TestCanary_NotInFiles(t *testing.T) {
	ctx := context.Background()
	slowImport(t) // so the journal still holds the lines when the files are read
	v, cfg := mustOpenVault(t)
	canary := "canary-" + strings.ReplaceAll(agentkeys.NewID("x"), "_", "")
	inputs := []*agentkeys.CredentialInput{
		{Name: "a", Type: agentkeys.APIKey, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: canary}},
		{Name: "b", Type: agentkeys.BasicAuth, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Username: canary, Password: canary}},
		{Name: "c", Type: agentkeys.CustomHeader, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-k", Value: canary}}}},
		{Name: "d", Type: agentkeys.QueryParam, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Param: "k", Value: canary}},
		{Name: "e", Type: agentkeys.Cookie, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "s=" + canary}},
	}
	for _, in := range inputs {
		if _, err := v.CreateCredential(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := v.FindCredential(ctx, "a")
	if _, err := v.UpdateCredential(ctx, c.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: canary + "2"}}); err != nil {
		t.Fatal(err)
	}
	// The proxy path, with its audit journal: the values are opened in
	// memory, the journal holds the event.
	for _, in := range inputs {
		r, err := v.RouteByName(ctx, in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.OpenSecret(ctx, r); err != nil {
			t.Fatal(err)
		}
		e := &agentkeys.AuditEvent{CredentialID: r.Credential.ID, CredentialName: r.Credential.Name, Method: "GET", Host: "api.example.com", Path: "/x"}
		if err := v.BeginAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		e.Decision, e.Status = agentkeys.DecisionAllowed, 200
		v.EndAudit(ctx, e)
	}
	forms := func(s string) [][]byte {
		return [][]byte{
			[]byte(s),
			[]byte(base64.StdEncoding.EncodeToString([]byte(s))),
			[]byte(base64.RawStdEncoding.EncodeToString([]byte(s))),
			[]byte(base64.URLEncoding.EncodeToString([]byte(s))),
			[]byte(hex.EncodeToString([]byte(s))),
			[]byte(strings.ToUpper(hex.EncodeToString([]byte(s)))),
		}
	}
	check := func(when string) {
		files := snapshot(t, cfg.Home)
		if len(files[localvault.DBFileName+"-wal"]) == 0 && when == "open" {
			t.Fatalf("no WAL content while open: the test would not look at recent writes")
		}
		journal := 0
		for name, b := range files {
			if strings.HasPrefix(name, localvault.AuditDirName+string(filepath.Separator)) {
				journal += len(b)
			}
		}
		if journal == 0 && when == "open" {
			t.Fatalf("no journal content while open: the test would not look at the audit journal")
		}
		for name, b := range files {
			for _, f := range forms(canary) {
				if bytes.Contains(b, f) {
					t.Errorf("%s (%s) contains the canary as %q", name, when, f)
				}
			}
		}
	}
	check("open")
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// sealedOf reads a credential's sealed value straight from the file.
func sealedOf(t *testing.T, db *sql.DB, id string) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRow("SELECT sealed FROM credentials WHERE id = ?", id).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTamper(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (localvault.Config, *agentkeys.Credential, *agentkeys.Credential) {
		v, cfg := mustOpenVault(t)
		a, err := v.CreateCredential(ctx, apiKeyInput("a", "value-a"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.CreateCredential(ctx, apiKeyInput("b", "value-b"))
		if err != nil {
			t.Fatal(err)
		}
		v.Close()
		return cfg, a, b
	}
	openSecret := func(t *testing.T, cfg localvault.Config, name string) (*agentkeys.Secret, error) {
		v, err := localvault.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		r, err := v.RouteByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return v.OpenSecret(ctx, r)
	}
	t.Run("FlippedByte", func(t *testing.T) {
		cfg, a, _ := setup(t)
		db := rawDB(t, cfg.Home)
		sealed := sealedOf(t, db, a.ID)
		for _, i := range []int{0, 12, len(sealed) / 2, len(sealed) - 1} { // nonce, ciphertext, tag
			b := bytes.Clone(sealed)
			b[i] ^= 0x01
			if _, err := db.Exec("UPDATE credentials SET sealed = ? WHERE id = ?", b, a.ID); err != nil {
				t.Fatal(err)
			}
			s, err := openSecret(t, cfg, "a")
			if !errors.Is(err, agentkeys.ErrDecrypt) || s != nil {
				t.Fatalf("byte %d flipped: got %v, %v; want ErrDecrypt and no secret", i, s, err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		cfg, a, _ := setup(t)
		db := rawDB(t, cfg.Home)
		if _, err := db.Exec("UPDATE credentials SET sealed = x'0102' WHERE id = ?", a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := openSecret(t, cfg, "a"); !errors.Is(err, agentkeys.ErrDecrypt) {
			t.Fatalf("got %v, want ErrDecrypt", err)
		}
	})
	t.Run("CopiedToAnotherCredential", func(t *testing.T) {
		cfg, a, b := setup(t)
		db := rawDB(t, cfg.Home)
		if _, err := db.Exec("UPDATE credentials SET sealed = ? WHERE id = ?", sealedOf(t, db, a.ID), b.ID); err != nil {
			t.Fatal(err)
		}
		s, err := openSecret(t, cfg, "b")
		if !errors.Is(err, agentkeys.ErrDecrypt) || s != nil {
			t.Fatalf("copied ciphertext: got %v, %v; want ErrDecrypt", s, err)
		}
		if agentkeys.ErrorMessage(err) == "" || strings.Contains(err.Error(), "value-a") {
			t.Fatalf("error %q", err)
		}
		// The original still opens.
		if s, err := openSecret(t, cfg, "a"); err != nil || s.Value != "value-a" {
			t.Fatalf("original: %v", err)
		}
	})
	t.Run("WrongKeyVersion", func(t *testing.T) {
		cfg, a, _ := setup(t)
		db := rawDB(t, cfg.Home)
		if _, err := db.Exec("UPDATE credentials SET key_version = 7 WHERE id = ?", a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := openSecret(t, cfg, "a"); !errors.Is(err, agentkeys.ErrDecrypt) {
			t.Fatalf("got %v, want ErrDecrypt", err)
		}
	})
}

// TestTamper_FindCredential: a CUSTOM_HEADER credential whose value no
// longer opens (a flipped byte, or another credential's value copied in) is
// still found, without header names — not the copied value's — and can be
// given a new value, after which its names are back.
func TestTamper_FindCredential(t *testing.T) {
	ctx := context.Background()
	header := func(name, header string) *agentkeys.CredentialInput {
		return &agentkeys.CredentialInput{Name: name, Type: agentkeys.CustomHeader, AllowedHosts: []string{"api.example.com"},
			Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: header, Value: "value-" + name}}}}
	}
	for _, tc := range []struct {
		name   string
		tamper func(db *sql.DB, a, b *agentkeys.Credential) error
	}{
		{"FlippedByte", func(db *sql.DB, a, _ *agentkeys.Credential) error {
			sealed := sealedOf(t, db, a.ID)
			sealed[len(sealed)/2] ^= 0x01
			_, err := db.Exec("UPDATE credentials SET sealed = ? WHERE id = ?", sealed, a.ID)
			return err
		}},
		{"CopiedFromAnother", func(db *sql.DB, a, b *agentkeys.Credential) error {
			_, err := db.Exec("UPDATE credentials SET sealed = ? WHERE id = ?", sealedOf(t, db, b.ID), a.ID)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, cfg := mustOpenVault(t)
			a, err := v.CreateCredential(ctx, header("a", "X-A"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := v.CreateCredential(ctx, header("b", "X-B"))
			if err != nil {
				t.Fatal(err)
			}
			v.Close()
			if err := tc.tamper(rawDB(t, cfg.Home), a, b); err != nil {
				t.Fatal(err)
			}
			v, err = localvault.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			got, err := v.FindCredential(ctx, "a")
			if err != nil || got.ID != a.ID || got.HeaderNames != nil {
				t.Fatalf("FindCredential of a value that does not open = %+v, %v; want the credential without names", got, err)
			}
			if _, err := v.UpdateCredential(ctx, a.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Headers: []agentkeys.Header{{Name: "X-Fixed", Value: "v"}}}}); err != nil {
				t.Fatal(err)
			}
			if got, err := v.FindCredential(ctx, a.ID); err != nil || strings.Join(got.HeaderNames, ",") != "X-Fixed" {
				t.Fatalf("after a new value: %+v, %v", got, err)
			}
		})
	}
}

func apiKeyInput(name, value string) *agentkeys.CredentialInput {
	return &agentkeys.CredentialInput{Name: name, Type: agentkeys.APIKey, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: value}}
}
