package sync_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/sync"
)

// testServer is a real server (store + handler) on loopback.
type testServer struct {
	url, apiKey string
	store       *store.Store
	dataDir     string
}

// pgURL returns a database URL for a fresh PostgreSQL schema, or skips.
func pgURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("AGENTKEYS_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AGENTKEYS_TEST_DATABASE_URL is not set (CI=true)")
		}
		t.Skip("AGENTKEYS_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_sync_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func newServer(t *testing.T, dbURL string, limits sync.Limits) *testServer {
	return newServerOn(t, dbURL, limits)
}

func newServerTB(tb testing.TB) *testServer { return newServerOn(tb, "", sync.Limits{}) }

func newServerOn(t testing.TB, dbURL string, limits sync.Limits) *testServer {
	t.Helper()
	key, _ := agentkeys.NewKey()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), store.Config{DatabaseURL: dbURL, DataDir: dir, ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, SyncLimits: limits})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	ws, err := st.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "sync@example.com", Name: "Sync"})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{url: hs.URL, apiKey: ws.APIKey, store: st, dataDir: dir}
}

func newVault(t *testing.T) *localvault.Vault { return newVaultTB(t) }

func newVaultTB(t testing.TB) *localvault.Vault {
	t.Helper()
	k, _ := agentkeys.NewKey()
	cfg := localvault.Config{Home: t.TempDir(), MasterKey: base64.StdEncoding.EncodeToString(k[:])}
	if _, err := localvault.Init(t.Context(), cfg, localvault.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := localvault.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func (s *testServer) opts(label string) sync.Options {
	return sync.Options{Server: s.url, APIKey: s.apiKey, Label: label}
}

func mustSync(t *testing.T, v *localvault.Vault, s *testServer) *sync.Result {
	t.Helper()
	res, err := sync.Run(t.Context(), v, s.opts(""))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func addCred(t *testing.T, v *localvault.Vault, name, value string) *agentkeys.Credential {
	t.Helper()
	c, err := v.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: name, Type: agentkeys.APIKey,
		AllowedHosts: []string{"api." + strings.ToLower(strings.ReplaceAll(name, " ", "")) + ".example"}, Secret: agentkeys.Secret{Value: value}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func enable(t *testing.T, v *localvault.Vault, s *testServer) string {
	t.Helper()
	phrase, err := sync.Enable(t.Context(), v, s.opts("device A"))
	if err != nil {
		t.Fatal(err)
	}
	return phrase
}

func join(t *testing.T, v *localvault.Vault, s *testServer, phrase string) {
	t.Helper()
	if err := sync.Join(t.Context(), v, s.opts("device B"), phrase); err != nil {
		t.Fatal(err)
	}
}

// TestSync_Converge: two devices edit, delete and revoke on each side,
// offline, then sync; both converge, with the conflicts reported; a third
// device joined from the phrase matches; a pxr_ token made on A works on B.
func TestSync_Converge(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(t *testing.T) string
	}{{"SQLite", func(*testing.T) string { return "" }}, {"PostgreSQL", pgURL}} {
		t.Run(db.name, func(t *testing.T) {
			srv := newServer(t, db.url(t), sync.Limits{})
			ctx := t.Context()
			a, b := newVault(t), newVault(t)
			gh := addCred(t, a, "github", "gh-secret-1")
			st := addCred(t, a, "stripe", "sk-stripe-1")
			oa := addCred(t, a, "openai", "sk-openai-1")
			ag, err := a.CreateAgent(ctx, "bot")
			if err != nil {
				t.Fatal(err)
			}
			g, err := a.AssignCredential(ctx, ag.ID, gh.ID)
			if err != nil {
				t.Fatal(err)
			}
			gs, err := a.AssignCredential(ctx, ag.ID, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			phrase := enable(t, a, srv)
			if res := mustSync(t, a, srv); res.Pushed != 6 {
				t.Fatalf("first push: %+v", res)
			}
			addCred(t, b, "local-only", "b-secret")
			join(t, b, srv, phrase)
			mustSync(t, b, srv)
			mustSync(t, a, srv)
			if sa, sb := testkit.VaultState(t, a), testkit.VaultState(t, b); sa != sb {
				t.Fatalf("after join:\nA:\n%s\nB:\n%s", sa, sb)
			}
			// A pxr_ token made on A works on B.
			if r, err := b.Authorize(ctx, g.ProxyToken, ""); err != nil || r.Credential.Name != "github" {
				t.Fatalf("A's token on B: %v %v", r, err)
			}

			// Offline on both sides.
			ghVal := "gh-secret-A"
			if _, err := a.UpdateCredential(ctx, gh.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: ghVal}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // B's edit is the later one
			if _, err := b.UpdateCredential(ctx, gh.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "gh-secret-B-later"}}); err != nil {
				t.Fatal(err)
			}
			if err := a.DeleteCredential(ctx, oa.ID); err != nil { // deleted on A ...
				t.Fatal(err)
			}
			if _, err := b.UpdateCredential(ctx, oa.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "sk-openai-B"}}); err != nil { // ... edited on B
				t.Fatal(err)
			}
			if err := a.RevokeCredential(ctx, ag.ID, st.ID); err != nil {
				t.Fatal(err)
			}
			addCred(t, a, "dup", "dup-from-A")
			addCred(t, b, "dup", "dup-from-B")
			if _, err := b.CreateAgent(ctx, "b-agent"); err != nil {
				t.Fatal(err)
			}

			mustSync(t, a, srv)
			resB := mustSync(t, b, srv)
			mustSync(t, a, srv)
			mustSync(t, b, srv)
			sa, sb := testkit.VaultState(t, a), testkit.VaultState(t, b)
			if sa != sb {
				t.Fatalf("not converged:\nA:\n%s\nB:\n%s\nB's conflicts: %q", sa, sb, resB.Conflicts)
			}
			for _, want := range []string{
				"github API_KEY [api.github.example] = gh-secret-B-later",      // B's edit is later: wins
				"github (conflict) API_KEY [api.github.example] = gh-secret-A", // A's kept
				"openai API_KEY [api.openai.example] = sk-openai-B",            // delete vs edit: the edit stays
				"dup API_KEY [api.dup.example] = dup-from-A",
				"dup (conflict) API_KEY [api.dup.example] = dup-from-B",
				"b-agent",
				"bot [github]", // the revocation reached B
			} {
				if !strings.Contains(sa, want) {
					t.Errorf("state lacks %q:\n%s", want, sa)
				}
			}
			joined := strings.Join(resB.Conflicts, "\n")
			for _, want := range []string{`credential "github" was changed here and on another device`, "was deleted on another device and changed here: kept the change", `credential "dup" was created on two devices`} {
				if !strings.Contains(joined, want) {
					t.Errorf("B's conflicts lack %q:\n%s", want, joined)
				}
			}
			if cs, _ := b.SyncConflicts(ctx); len(cs) < 3 {
				t.Errorf("B recorded %d conflicts", len(cs))
			}
			// The revoked grant's token is refused on B, naming whom it was
			// issued to (for the audit row) as on A; the other still works.
			var rt *agentkeys.RevokedToken
			if _, err := b.Authorize(ctx, gs.ProxyToken, ""); !errors.As(err, &rt) || rt.AgentName != "bot" || rt.CredentialName != "stripe" {
				t.Fatalf("the revoked stripe token on B: %v (%+v)", err, rt)
			}
			if _, err := b.Authorize(ctx, g.ProxyToken, ""); err != nil {
				t.Fatalf("the github token should still work on B: %v", err)
			}

			// A third device from the phrase matches.
			c := newVault(t)
			join(t, c, srv, phrase)
			mustSync(t, c, srv)
			if sc := testkit.VaultState(t, c); sc != sa {
				t.Fatalf("third device:\n%s\nwant:\n%s", sc, sa)
			}
			// A no-change sync is one request.
			if res := mustSync(t, c, srv); res.Requests != 1 || res.Pulled != 0 || res.Pushed != 0 {
				t.Fatalf("no-change sync: %+v", res)
			}
		})
	}
}

// TestSync_Tampering: blobs rewritten in the server's database — swapped
// between records, replayed from an older version, bit-flipped, or rolled
// back with their version — are refused by the client, which names the
// record, and never applied.
func TestSync_Tampering(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a := newVault(t)
	x := addCred(t, a, "xcred", "x-1")
	y := addCred(t, a, "ycred", "y-1")
	z := addCred(t, a, "zcred", "z-1")
	w := addCred(t, a, "wcred", "w-1")
	phrase := enable(t, a, srv)
	mustSync(t, a, srv)
	key, err := sync.DecodePhrase(phrase)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := sync.DeriveKeys(key)
	rid := func(id string) string { return keys.RecordID(agentkeys.SyncKindCredential, id) }
	db := srv.store.DB()
	blob := func(id string) (b []byte) {
		if err := db.QueryRow(`SELECT blob FROM sync_records WHERE record_id = $1`, rid(id)).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	xv1, wv1 := blob(x.ID), blob(w.ID)
	for _, c := range []*agentkeys.Credential{x, w} {
		if _, err := a.UpdateCredential(ctx, c.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "v2"}}); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, a, srv)

	flipped := blob(z.ID)
	flipped[len(flipped)/2] ^= 1
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// Each rewrite also moves the row to the head of the feed, so devices
	// that have the record pull it again.
	var head int64
	db.QueryRow(`SELECT seq FROM sync_vaults`).Scan(&head)
	rewrite := func(id string, b []byte, version int64) {
		head++
		exec(`UPDATE sync_records SET blob = $1, seq = $2, version = COALESCE($3, version) WHERE record_id = $4`, b, head, sqlNull(version), rid(id))
	}
	rewrite(x.ID, xv1, 0)        // replay version 1's blob as version 2
	rewrite(y.ID, blob(x.ID), 0) // x's blob under y's id
	rewrite(z.ID, flipped, 0)    // one bit flipped
	rewrite(w.ID, wv1, 1)        // rolled back, version and all
	exec(`UPDATE sync_vaults SET seq = $1`, head)

	before := testkit.VaultState(t, a)
	res := mustSync(t, a, srv)
	if len(res.Refused) != 4 {
		t.Fatalf("A refused %d records: %q", len(res.Refused), res.Refused)
	}
	all := strings.Join(res.Refused, "\n")
	for _, c := range []*agentkeys.Credential{x, y, z, w} {
		if !strings.Contains(all, "record "+rid(c.ID)+" (credential "+c.ID+")") {
			t.Errorf("no refusal names %s (%s):\n%s", c.Name, rid(c.ID), all)
		}
	}
	if !strings.Contains(all, "already has version 2") {
		t.Errorf("the rollback is not reported as one:\n%s", all)
	}
	if after := testkit.VaultState(t, a); after != before {
		t.Fatalf("tampered records changed A:\n%s\nwas:\n%s", after, before)
	}
	if cs, _ := a.SyncConflicts(ctx); len(cs) != 4 {
		t.Errorf("A recorded %d problems, want the 4 refusals", len(cs))
	}

	// A new device refuses the three it cannot open and gets only the
	// rolled-back w (its version 1 is genuine; it cannot know better).
	c := newVault(t)
	join(t, c, srv, phrase)
	res = mustSync(t, c, srv)
	if len(res.Refused) != 3 {
		t.Fatalf("C refused %d records: %q", len(res.Refused), res.Refused)
	}
	sc := testkit.VaultState(t, c)
	for _, n := range []string{"xcred", "ycred", "zcred"} {
		if strings.Contains(sc, n) {
			t.Errorf("C applied tampered %s:\n%s", n, sc)
		}
	}
}

func sqlNull(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// TestSync_Replicas: two server replicas on one PostgreSQL database, each
// device pushing to its own replica at the same time: sequence numbers
// never collide, pushes never overwrite each other, and both converge.
func TestSync_Replicas(t *testing.T) {
	dbURL := pgURL(t)
	ctx := t.Context()
	key, _ := agentkeys.NewKey()
	var urls []string
	var apiKey string
	for i := 0; i < 2; i++ {
		st, err := store.Open(ctx, store.Config{DatabaseURL: dbURL, DataDir: t.TempDir(), ServerKey: key})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { hs.Close(); st.Close() })
		urls = append(urls, hs.URL)
		if i == 0 {
			ws, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: "r@example.com", Name: "R"})
			if err != nil {
				t.Fatal(err)
			}
			apiKey = ws.APIKey
		}
	}
	a, b := newVault(t), newVault(t)
	phrase, err := sync.Enable(ctx, a, sync.Options{Server: urls[0], APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := sync.Join(ctx, b, sync.Options{Server: urls[1], APIKey: apiKey}, phrase); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i, v := range []*localvault.Vault{a, b} {
		go func() {
			for round := 0; round < 5; round++ {
				for j := 0; j < 10; j++ {
					if _, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: fmt.Sprintf("d%d-r%d-%d", i, round, j), Type: agentkeys.APIKey,
						AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}}); err != nil {
						errs <- err
						return
					}
				}
				if _, err := sync.Run(ctx, v, sync.Options{}); err != nil {
					errs <- fmt.Errorf("device %d round %d: %w", i, round, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []*localvault.Vault{a, b, a} {
		if _, err := sync.Run(ctx, v, sync.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := testkit.VaultState(t, a), testkit.VaultState(t, b)
	if sa != sb || strings.Count(sa, "\n")+1 != 100 || strings.Contains(sa, "conflict") {
		t.Fatalf("replicas: A %d lines, B %d lines, equal %v", strings.Count(sa, "\n")+1, strings.Count(sb, "\n")+1, sa == sb)
	}
}
