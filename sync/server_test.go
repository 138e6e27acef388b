package sync_test

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/sync"
)

// TestSync_Revoke: a device revoked by another is refused at once, and the
// device list shows it with its label opened on the client.
func TestSync_Revoke(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a, b := newVault(t), newVault(t)
	phrase := enable(t, a, srv)
	join(t, b, srv, phrase)
	mustSync(t, b, srv)
	ds, err := sync.Devices(ctx, a, sync.Options{})
	if err != nil || len(ds) != 2 || ds[0].Name != "device A" || !ds[0].Current || ds[1].Name != "device B" || ds[1].Current {
		t.Fatalf("devices = %+v, %v", ds, err)
	}
	if err := sync.Revoke(ctx, a, sync.Options{}, ds[0].ID); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Fatalf("revoking itself: %v", err)
	}
	if err := sync.Revoke(ctx, a, sync.Options{}, ds[1].ID); err != nil {
		t.Fatal(err)
	}
	addCred(t, a, "after-revoke", "s")
	mustSync(t, a, srv)
	_, err = sync.Run(ctx, b, sync.Options{})
	if agentkeys.ErrorCode(err) != agentkeys.EFORBIDDEN || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked device's sync: %v", err)
	}
	if strings.Contains(testkit.VaultState(t, b), "after-revoke") {
		t.Fatal("a revoked device got a change")
	}
	if err := sync.Revoke(ctx, a, sync.Options{}, "dev_nope"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		t.Fatalf("unknown device: %v", err)
	}
}

// TestSync_Limits: blob, batch, body and vault quotas answer with clear
// errors and store nothing.
func TestSync_Limits(t *testing.T) {
	srv := newServer(t, "", sync.Limits{MaxRecords: 3, MaxVaults: 2, MaxDevices: 2})
	ctx := t.Context()
	a := newVault(t)
	for _, n := range []string{"one", "two", "three", "four"} {
		addCred(t, a, n, "v-"+n)
	}
	enable(t, a, srv)
	_, err := sync.Run(ctx, a, sync.Options{})
	if agentkeys.ErrorCode(err) != agentkeys.ETOOLARGE || !strings.Contains(err.Error(), "over its limit of 3") {
		t.Fatalf("over the record quota: %v", err)
	}
	var n int
	srv.store.DB().QueryRow(`SELECT COUNT(*) FROM sync_records`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d records stored by a refused push", n)
	}
	if c, _ := a.SyncPendingCount(ctx); c != 4 {
		t.Fatalf("%d changes pending after a refused push, want 4", c)
	}

	k, _ := agentkeys.NewKey()
	keys, _ := sync.DeriveKeys(k)
	cl, err := sync.NewClient(srv.url, srv.apiKey, keys.VaultID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, []byte("label")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  *sync.PushRequest
		code string
		want string
	}{
		{"BigBlob", &sync.PushRequest{Records: []sync.PushRecord{{ID: "r1", Blob: make([]byte, sync.MaxBlobBytes+1)}}}, agentkeys.ETOOLARGE, "over the limit of 65536 per record"},
		{"BigBody", &sync.PushRequest{Records: bigBatch(20)}, agentkeys.ETOOLARGE, "request body is larger than"},
		{"Empty", &sync.PushRequest{}, agentkeys.EINVALID, "no records"},
		{"Twice", &sync.PushRequest{Records: []sync.PushRecord{{ID: "r", Blob: []byte("x")}, {ID: "r", Blob: []byte("x")}}}, agentkeys.EINVALID, "appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Push(ctx, tc.req)
			if agentkeys.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %s with %q", err, tc.code, tc.want)
			}
		})
	}
	srv.store.DB().QueryRow(`SELECT COUNT(*) FROM sync_records`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d records stored by refused pushes", n)
	}
	// Devices per vault, vaults per workspace.
	if _, err := cl.Register(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, nil); agentkeys.ErrorCode(err) != agentkeys.ETOOLARGE || !strings.Contains(err.Error(), "has 2 devices, the most it may have") {
		t.Fatalf("third device: %v", err)
	}
	k3, _ := agentkeys.NewKey()
	keys3, _ := sync.DeriveKeys(k3)
	cl3, _ := sync.NewClient(srv.url, srv.apiKey, keys3.VaultID, "", nil)
	if _, err := cl3.Register(ctx, nil); agentkeys.ErrorCode(err) != agentkeys.ETOOLARGE || !strings.Contains(err.Error(), "holds 2 synced vaults") {
		t.Fatalf("third vault: %v", err)
	}
	// Without a device token, and with a wrong one.
	bad, _ := sync.NewClient(srv.url, srv.apiKey, keys.VaultID, "akd_wrong", nil)
	if _, err := bad.Pull(ctx, 0, 0); agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
		t.Fatalf("wrong device token: %v", err)
	}
	noKey, _ := sync.NewClient(srv.url, "ak_ws_wrong", keys.VaultID, "", nil)
	if _, err := noKey.Pull(ctx, 0, 0); agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
		t.Fatalf("wrong API key: %v", err)
	}
}

func bigBatch(n int) []sync.PushRecord {
	var out []sync.PushRecord
	for i := 0; i < n; i++ {
		out = append(out, sync.PushRecord{ID: "r" + string(rune('a'+i)), Blob: bytes.Repeat([]byte{byte(i)}, 60<<10)})
	}
	return out
}

// TestSync_CanarySweep: after a full sync of credentials, agents and
// grants, the server's database (every row of PostgreSQL; the SQLite files)
// and its other files hold none of their names, hosts, types, values or
// token hashes, nor the device names.
func TestSync_CanarySweep(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(t *testing.T) string
	}{{"SQLite", func(*testing.T) string { return "" }}, {"PostgreSQL", pgURL}} {
		t.Run(db.name, func(t *testing.T) {
			dbURL := db.url(t)
			srv := newServer(t, dbURL, sync.Limits{})
			ctx := t.Context()
			a := newVault(t)
			c, err := a.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "canary-cred-name", Type: agentkeys.BasicAuth,
				AllowedHosts: []string{"canary-host.example"}, Secret: agentkeys.Secret{Username: "canary-user", Password: "canary-password-value"}})
			if err != nil {
				t.Fatal(err)
			}
			ag, _ := a.CreateAgent(ctx, "canary-agent-name")
			g, err := a.AssignCredential(ctx, ag.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			phrase := enable(t, a, srv)
			mustSync(t, a, srv)
			b := newVault(t)
			join(t, b, srv, phrase)
			mustSync(t, b, srv)

			canaries := []string{"canary-cred-name", "canary-host.example", "BASIC_AUTH", "canary-user", "canary-password-value",
				"canary-agent-name", agentkeys.HashToken(g.ProxyToken), g.ProxyToken, c.ID, ag.ID, "device A", "device B"}
			sweep := func(where string, b []byte) {
				for _, c := range canaries {
					if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(c))) {
						t.Errorf("%s holds %q", where, c)
					}
				}
			}
			if dbURL != "" {
				// Every row of every table, as text.
				rows, err := srv.store.DB().Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
				if err != nil {
					t.Fatal(err)
				}
				var tables []string
				for rows.Next() {
					var n string
					rows.Scan(&n)
					tables = append(tables, n)
				}
				rows.Close()
				if len(tables) < 5 {
					t.Fatalf("only %d tables swept", len(tables))
				}
				for _, tbl := range tables {
					rs, err := srv.store.DB().Query(`SELECT t::text FROM ` + tbl + ` t`)
					if err != nil {
						t.Fatal(err)
					}
					for rs.Next() {
						var row string
						rs.Scan(&row)
						sweep("table "+tbl, []byte(row))
					}
					rs.Close()
				}
			}
			srv.store.Close() // flush and checkpoint what it will
			files := 0
			filepath.WalkDir(srv.dataDir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				files++
				sweep(p, b)
				return nil
			})
			if dbURL == "" && files == 0 {
				t.Fatal("no server files swept")
			}
		})
	}
}

// TestSync_RotateKey: rotation re-seals everything under a new key in a
// new synced vault, deletes the old one, cuts other devices off until they
// join with the new phrase.
func TestSync_RotateKey(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a, b := newVault(t), newVault(t)
	addCred(t, a, "one", "v1")
	addCred(t, a, "two", "v2")
	oldPhrase := enable(t, a, srv)
	mustSync(t, a, srv)
	join(t, b, srv, oldPhrase)
	mustSync(t, b, srv)
	addCred(t, b, "from-b", "vb") // pending on B, synced by nobody yet
	mustSync(t, b, srv)

	phrase, res, err := sync.RotateKey(ctx, a, sync.Options{Label: "device A"})
	if err != nil {
		t.Fatal(err)
	}
	if phrase == oldPhrase || res.Pushed != 3 {
		t.Fatalf("rotate: same phrase or %d pushed", res.Pushed)
	}
	var vaults, records int
	db := srv.store.DB()
	db.QueryRow(`SELECT COUNT(*) FROM sync_vaults`).Scan(&vaults)
	db.QueryRow(`SELECT COUNT(*) FROM sync_records`).Scan(&records)
	if vaults != 1 || records != 3 {
		t.Fatalf("server after rotation: %d vaults, %d records", vaults, records)
	}
	if _, err := sync.Run(ctx, b, sync.Options{}); agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED || !strings.Contains(err.Error(), "current recovery phrase") {
		t.Fatalf("B after rotation: %v", err)
	}
	if err := b.DisableSync(ctx); err != nil {
		t.Fatal(err)
	}
	join(t, b, srv, phrase)
	mustSync(t, b, srv)
	if sa, sb := testkit.VaultState(t, a), testkit.VaultState(t, b); sa != sb {
		t.Fatalf("after rejoin:\n%s\n%s", sa, sb)
	}
}

// loseAnswers forwards requests but loses the answer of the first lose
// pushes, as when a client is killed after the server committed.
type loseAnswers struct {
	lose int
}

func (l *loseAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/changes") && l.lose > 0 {
		l.lose--
		resp.Body.Close()
		return nil, errors.New("connection reset (test)")
	}
	return resp, err
}

// TestSync_LostPushAnswer: a push the server stored but whose answer never
// arrived is recognised as this device's own on the next sync — with or
// without a further local change in between — and makes no conflict.
func TestSync_LostPushAnswer(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a := newVault(t)
	x := addCred(t, a, "x", "x0")
	y := addCred(t, a, "y", "y0")
	phrase := enable(t, a, srv)
	lossy := &http.Client{Transport: &loseAnswers{lose: 1}}
	if _, err := sync.Run(ctx, a, sync.Options{HTTPClient: lossy}); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	if n, _ := a.SyncPendingCount(ctx); n != 2 {
		t.Fatalf("%d pending after a lost answer, want 2", n)
	}
	if _, err := a.UpdateCredential(ctx, x.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "x1"}}); err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, a, srv)
	if len(res.Conflicts) != 0 {
		t.Fatalf("conflicts with itself: %q", res.Conflicts)
	}
	if n, _ := a.SyncPendingCount(ctx); n != 0 {
		t.Fatalf("%d pending after the sync", n)
	}
	b := newVault(t)
	join(t, b, srv, phrase)
	mustSync(t, b, srv)
	sa := testkit.VaultState(t, a)
	if sb := testkit.VaultState(t, b); sa != sb || !strings.Contains(sa, "x API_KEY [api.x.example] = x1") || strings.Contains(sa, "conflict") {
		t.Fatalf("A:\n%s\nB:\n%s", sa, sb)
	}
	_ = y
}

// TestSync_DeleteCascades: deleting a credential (and with it its grants)
// or an agent on one device removes them on the other, leaves nothing
// pending on either, and the token stops working there.
func TestSync_DeleteCascades(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a, b := newVault(t), newVault(t)
	c1 := addCred(t, a, "one", "v1")
	c2 := addCred(t, a, "two", "v2")
	ag, _ := a.CreateAgent(ctx, "bot")
	other, _ := a.CreateAgent(ctx, "other")
	g1, _ := a.AssignCredential(ctx, ag.ID, c1.ID)
	g2, _ := a.AssignCredential(ctx, other.ID, c2.ID)
	phrase := enable(t, a, srv)
	mustSync(t, a, srv)
	join(t, b, srv, phrase)
	mustSync(t, b, srv)
	for _, g := range []*agentkeys.Grant{g1, g2} {
		if _, err := b.Authorize(ctx, g.ProxyToken, ""); err != nil {
			t.Fatalf("token on B before: %v", err)
		}
	}
	if err := a.DeleteCredential(ctx, c1.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAgent(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, a, srv)
	if res.Pushed != 4 { // the credential, the agent and their two grants
		t.Fatalf("A pushed %d tombstones, want 4", res.Pushed)
	}
	mustSync(t, b, srv)
	for _, v := range []*localvault.Vault{a, b} {
		if n, _ := v.SyncPendingCount(ctx); n != 0 {
			t.Fatalf("%d changes pending after the deletes synced", n)
		}
	}
	for _, g := range []*agentkeys.Grant{g1, g2} {
		if _, err := b.Authorize(ctx, g.ProxyToken, ""); agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
			t.Fatalf("token on B after the delete: %v", err)
		}
	}
	if sa, sb := testkit.VaultState(t, a), testkit.VaultState(t, b); sa != sb || strings.Contains(sa, "one") || strings.Contains(sa, "other") {
		t.Fatalf("A:\n%s\nB:\n%s", sa, sb)
	}
}

// TestSync_TooBigStaysLocal: a credential too big to sync stays local and
// pending, is reported on every sync, and does not hold the others back.
func TestSync_TooBigStaysLocal(t *testing.T) {
	srv := newServer(t, "", sync.Limits{})
	ctx := t.Context()
	a := newVault(t)
	addCred(t, a, "small", "v")
	addCred(t, a, "huge", strings.Repeat("x", sync.MaxBlobBytes))
	phrase := enable(t, a, srv)
	res := mustSync(t, a, srv)
	if res.Pushed != 1 || len(res.Conflicts) != 1 || !strings.Contains(res.Conflicts[0], `not synced: credential "huge" is`) {
		t.Fatalf("sync with a huge credential: %+v", res)
	}
	if n, _ := a.SyncPendingCount(ctx); n != 1 {
		t.Fatalf("%d pending, want the huge one", n)
	}
	b := newVault(t)
	join(t, b, srv, phrase)
	mustSync(t, b, srv)
	if sb := testkit.VaultState(t, b); !strings.Contains(sb, "small") || strings.Contains(sb, "huge") {
		t.Fatalf("B:\n%s", sb)
	}
}
