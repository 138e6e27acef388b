package store_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestOpen_WrongKey: a database created with one server key refuses to
// open with another, with a message that says so, and nothing is written.
func TestOpen_WrongKey(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s := mustOpen(t, cfg)
			ws := mustWorkspace(t, s, "Acme")
			if _, err := s.Workspace(ws.ID).CreateAgent(t.Context(), "bot"); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, s)
			s.Close()

			wrong := cfg
			wrong.ServerKey = testKey(t)
			_, err := store.Open(t.Context(), wrong)
			wantCode(t, err, agentkeys.EUNAVAILABLE)
			if !strings.Contains(err.Error(), "server key does not match") {
				t.Fatalf("message = %q", err)
			}
			s2 := mustOpen(t, cfg)
			if after := snapshot(t, s2); after != before {
				t.Fatalf("database changed by the refused start:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot summarises every row count and the schema version.
func snapshot(t *testing.T, s *store.Store) string {
	t.Helper()
	var out []string
	for _, tb := range []string{"meta", "workspaces", "users", "members", "workspace_keys", "data_keys", "credentials", "agents", "grants", "audit_events", "usage", "schema_migrations"} {
		var n int
		if err := s.DB().QueryRow(`SELECT COUNT(*) FROM ` + tb).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tb, err)
		}
		out = append(out, fmt.Sprintf("%s=%d", tb, n))
	}
	var rev int64
	s.DB().QueryRow(`SELECT COALESCE(SUM(revision), 0) FROM workspaces`).Scan(&rev)
	return fmt.Sprintf("%s rev=%d", strings.Join(out, " "), rev)
}

func TestOpen_NoKey(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Open(t.Context(), store.Config{DataDir: dir})
	wantCode(t, err, agentkeys.EINVALID)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files created without a key: %v", entries)
	}
}

func TestParseServerKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	good := []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		"  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	}
	for _, s := range good {
		k, err := store.ParseServerKey(s)
		if err != nil || string(k[:]) != string(raw) {
			t.Fatalf("ParseServerKey(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 1))} {
		_, err := store.ParseServerKey(s)
		wantCode(t, err, agentkeys.EINVALID)
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("the message quotes the key: %v", err)
		}
	}
}

// TestSQLiteFileModes: the data directory is 0700, the database 0600.
func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := mustOpen(t, store.Config{DataDir: dir, ServerKey: testKey(t)})
	mustWorkspace(t, s, "Acme")
	for name, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, store.DBFileName): 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Fatalf("%s mode = %o, want %o", name, fi.Mode().Perm(), want)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, store.DBFileName+"-*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode = %o, want 600", m, fi.Mode().Perm())
		}
	}
}

// TestTokenPepper: a row inserted by someone who can write the database
// but lacks the server key does not authenticate — neither a workspace key
// stored as its plain SHA-256, nor a proxy token.
func TestTokenPepper(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, b.config(t))
			ws := mustWorkspace(t, s, "Acme")
			v := s.Workspace(ws.ID)
			c, err := v.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "c", Type: agentkeys.APIKey, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := v.CreateAgent(t.Context(), "bot")
			if err != nil {
				t.Fatal(err)
			}
			forgedKey := agentkeys.NewWorkspaceKey()
			forgedToken := agentkeys.NewProxyToken()
			sha := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
			if _, err := s.DB().Exec(`INSERT INTO workspace_keys (key_hash, workspace_id, created_at) VALUES ($1, $2, 0)`, sha(forgedKey), ws.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().Exec(`INSERT INTO grants (workspace_id, agent_id, credential_id, token_hash, created_at) VALUES ($1, $2, $3, $4, 0)`,
				ws.ID, a.ID, c.ID, sha(forgedToken)); err != nil {
				t.Fatal(err)
			}
			_, err = s.AuthenticateKey(t.Context(), forgedKey)
			wantCode(t, err, agentkeys.EUNAUTHORIZED)
			_, err = s.Authorize(t.Context(), forgedToken, "")
			wantCode(t, err, agentkeys.EUNAUTHORIZED)
			_, err = s.Authorize(t.Context(), forgedKey, "c")
			wantCode(t, err, agentkeys.EUNAUTHORIZED)
			// The real key still works.
			if id, err := s.AuthenticateKey(t.Context(), ws.APIKey); err != nil || id != ws.ID {
				t.Fatalf("AuthenticateKey(real) = %q, %v", id, err)
			}
		})
	}
}

// TestCreateWorkspace_Refusals: bad input and a taken email write nothing.
func TestCreateWorkspace_Refusals(t *testing.T) {
	s := mustOpen(t, sqliteConfig(t))
	if _, err := s.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "a@example.com", Password: "long enough", RequirePassword: true, Name: "A"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	cases := []struct {
		name string
		in   store.NewWorkspace
		code string
	}{
		{"BadEmail", store.NewWorkspace{Email: "nope", Password: "long enough", RequirePassword: true, Name: "B"}, agentkeys.EINVALID},
		{"DisplayNameEmail", store.NewWorkspace{Email: "Bob <b@example.com>", Password: "long enough", RequirePassword: true, Name: "B"}, agentkeys.EINVALID},
		{"ShortPassword", store.NewWorkspace{Email: "b@example.com", Password: "short", RequirePassword: true, Name: "B"}, agentkeys.EINVALID},
		{"NoPassword", store.NewWorkspace{Email: "b@example.com", RequirePassword: true, Name: "B"}, agentkeys.EINVALID},
		{"NoName", store.NewWorkspace{Email: "b@example.com", Password: "long enough", RequirePassword: true}, agentkeys.EINVALID},
		{"TakenEmail", store.NewWorkspace{Email: "A@Example.com", Password: "long enough", RequirePassword: true, Name: "B"}, agentkeys.ECONFLICT},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateWorkspace(t.Context(), tc.in)
			wantCode(t, err, tc.code)
			if after := snapshot(t, s); after != before {
				t.Fatalf("written: %s -> %s", before, after)
			}
		})
	}
	// The host's create-workspace (no password) may add a workspace for an
	// existing user.
	if _, err := s.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "a@example.com", Name: "Second"}); err != nil {
		t.Fatal(err)
	}
}

// TestOpen_BadDatabase: an unreachable PostgreSQL is EUNAVAILABLE with a
// message that does not show the password; another scheme is EINVALID.
func TestOpen_BadDatabase(t *testing.T) {
	_, err := store.Open(t.Context(), store.Config{DatabaseURL: "postgres://user:hunter2secret@127.0.0.1:1/db?connect_timeout=2", DataDir: t.TempDir(), ServerKey: testKey(t)})
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("message shows the password: %v", err)
	}
	_, err = store.Open(t.Context(), store.Config{DatabaseURL: "mysql://db/x", DataDir: t.TempDir(), ServerKey: testKey(t)})
	wantCode(t, err, agentkeys.EINVALID)
}

// TestSealedValueBoundToRow: a sealed value copied into another
// credential's row — of the same workspace or of another — does not open:
// the seal is bound to its workspace and credential id.
func TestSealedValueBoundToRow(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, b.config(t))
			mk := func(ws *store.CreatedWorkspace, name, value string) *agentkeys.Credential {
				c, err := s.Workspace(ws.ID).CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: name, Type: agentkeys.APIKey,
					AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: value}})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			a, bws := mustWorkspace(t, s, "Alpha"), mustWorkspace(t, s, "Beta")
			src := mk(a, "src", "bound-secret-a")
			same, other := mk(a, "same", "other-value"), mk(bws, "other", "other-value")
			// The source itself opens: the refusals below are the binding's.
			r, err := s.Workspace(a.ID).Authorize(t.Context(), a.APIKey, "src")
			if err != nil {
				t.Fatal(err)
			}
			if sec, err := s.OpenSecret(t.Context(), r); err != nil || sec.Value != "bound-secret-a" {
				t.Fatalf("source: %v", err)
			}
			for _, dst := range []struct {
				ws *store.CreatedWorkspace
				c  *agentkeys.Credential
			}{{a, same}, {bws, other}} {
				if _, err := s.DB().Exec(`UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = $1),
					key_version = (SELECT key_version FROM credentials WHERE id = $1) WHERE id = $2`, src.ID, dst.c.ID); err != nil {
					t.Fatal(err)
				}
				// First lookup of this name: the route is read from the row.
				route, err := s.Workspace(dst.ws.ID).Authorize(t.Context(), dst.ws.APIKey, dst.c.Name)
				if err != nil {
					t.Fatal(err)
				}
				sec, err := s.OpenSecret(t.Context(), route)
				if err == nil {
					t.Fatalf("a value copied into %s opened: %v", dst.c.Name, sec.Value == "bound-secret-a")
				}
				if strings.Contains(err.Error(), "bound-secret-a") {
					t.Fatal("the error carries the value")
				}
			}
		})
	}
}

// TestSealedValueBoundToRow_FindCredential: a credential whose row holds
// another credential's sealed value (of its workspace or of another) is
// still found, without header names — never the copied value's — and can
// still be removed.
func TestSealedValueBoundToRow_FindCredential(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := mustOpen(t, b.config(t))
			mk := func(ws *store.CreatedWorkspace, name, header string) *agentkeys.Credential {
				c, err := s.Workspace(ws.ID).CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: name, Type: agentkeys.CustomHeader,
					AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: header, Value: "v-" + name}}}})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			a, bws := mustWorkspace(t, s, "Alpha"), mustWorkspace(t, s, "Beta")
			src := mk(a, "src", "X-Src")
			if got, err := s.Workspace(a.ID).FindCredential(t.Context(), "src"); err != nil || strings.Join(got.HeaderNames, ",") != "X-Src" {
				t.Fatalf("source: %+v, %v", got, err)
			}
			for _, dst := range []struct {
				ws *store.CreatedWorkspace
				c  *agentkeys.Credential
			}{{a, mk(a, "same", "X-Same")}, {bws, mk(bws, "other", "X-Other")}} {
				if _, err := s.DB().Exec(`UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = $1),
					key_version = (SELECT key_version FROM credentials WHERE id = $1) WHERE id = $2`, src.ID, dst.c.ID); err != nil {
					t.Fatal(err)
				}
				w := s.Workspace(dst.ws.ID)
				got, err := w.FindCredential(t.Context(), dst.c.Name)
				if err != nil || got.ID != dst.c.ID || got.HeaderNames != nil {
					t.Fatalf("%s holding another's value: %+v, %v; want it found without names", dst.c.Name, got, err)
				}
				if err := w.DeleteCredential(t.Context(), dst.c.ID); err != nil {
					t.Fatalf("remove %s: %v", dst.c.Name, err)
				}
			}
		})
	}
}
