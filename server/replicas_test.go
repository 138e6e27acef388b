package server_test

import (
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/internal/pgtest"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestReplicas: two servers on one database (PostgreSQL, or one SQLite
// file). What is created
// through one is usable through the other at once; what is revoked,
// deleted or changed through one is refused (or changed) by the other on
// its very next request, although the other had the route cached.
func TestReplicas(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) { testReplicas(t, db.url(t), t.TempDir()) })
	}
}

// testReplicas runs two servers on one database: dbURL, or one SQLite file
// in dir (two processes on one machine).
func testReplicas(t *testing.T, dbURL, dir string) {
	key := mustKey(t)
	r1 := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir, key: key, allowLoopback: true})
	r2 := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir, key: key, allowLoopback: true})
	up := newUpstream(t)

	_, wsKey := r1.signup("Acme")
	c := r1.createCredential(wsKey, "svc", "replica-v1", up.host())
	ag := r1.createAgent(wsKey, "bot")
	g := r1.assign(wsKey, ag.ID, c.ID)

	// Usable through replica 2 at once: API and proxy.
	r2.do("GET", "/api/v1/credentials/"+c.ID, wsKey, nil).want(t, 200, "")
	for i := 0; i < 3; i++ { // the route is now cached on replica 2
		proxyGet(t, r2.url, g.ProxyToken, "", up.URL+"/r2").want(t, 200, "")
	}
	proxyGet(t, r2.url, wsKey, "svc", up.URL+"/r2-by-name").want(t, 200, "")

	// A new value through replica 1 is injected by replica 2 next time.
	r1.do("PATCH", "/api/v1/credentials/"+c.ID, wsKey, map[string]any{"value": "replica-v2"}).want(t, 200, "")
	proxyGet(t, r2.url, g.ProxyToken, "", up.URL+"/r2").want(t, 200, "")
	if got := up.received(); got[len(got)-1] != "Bearer replica-v2" {
		t.Fatalf("replica 2 injected %q after the value changed through replica 1", got[len(got)-1])
	}

	// Revoked through replica 1: refused by replica 2 on the next request.
	r1.do("DELETE", "/api/v1/agents/"+ag.ID+"/credentials/"+c.ID, wsKey, nil).want(t, 204, "")
	proxyGet(t, r2.url, g.ProxyToken, "", up.URL+"/after-revoke").want(t, 401, agentkeys.EUNAUTHORIZED)

	// Re-assigned through replica 2, deleted through replica 1: the
	// workspace key's route by name is gone on replica 2 at once too.
	g2 := r2.assign(wsKey, ag.ID, c.ID)
	proxyGet(t, r1.url, g2.ProxyToken, "", up.URL+"/r1").want(t, 200, "")
	r1.do("DELETE", "/api/v1/credentials/"+c.ID, wsKey, nil).want(t, 204, "")
	proxyGet(t, r2.url, g2.ProxyToken, "", up.URL+"/after-delete").want(t, 401, agentkeys.EUNAUTHORIZED)
	proxyGet(t, r2.url, wsKey, "svc", up.URL+"/after-delete").want(t, 404, agentkeys.ENOTFOUND)

	for _, a := range up.received() {
		if a != "Bearer replica-v1" && a != "Bearer replica-v2" {
			t.Fatalf("upstream saw %q", a)
		}
	}
	// Audit rows of both replicas' six forwarded requests, numbered without
	// collisions. (Refusals before a token resolves name no workspace, so
	// no workspace's log holds them; the server's log does.)
	evs := waitAudit(t, r2, wsKey, 6)
	seen := map[int64]bool{}
	for _, e := range evs {
		if seen[e.Seq] {
			t.Fatalf("audit seq %d handed out twice", e.Seq)
		}
		seen[e.Seq] = true
	}
}

// TestReplicas_StartTogether: replicas starting at once on an empty
// database migrate it once (advisory lock) and all come up.
func TestReplicas_StartTogether(t *testing.T) {
	dbURL := pgtest.Schema(t)
	key := mustKey(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		dir := t.TempDir()
		go func() {
			defer wg.Done()
			st, err := store.Open(t.Context(), store.Config{DatabaseURL: dbURL, DataDir: dir, ServerKey: key})
			if err == nil {
				err = st.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("replica start: %v", err)
		}
	}
}
