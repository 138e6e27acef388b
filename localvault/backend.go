package localvault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/agentkeys/agentkeys"
)

// The proxy path (Authorize, RouteByName, OpenSecret) answers from memory:
// resolved routes and sealed rows are cached, and values are decrypted per
// request (never cached in the clear). Before each Authorize the cache is
// checked against the database, in up to three steps, each run only when
// the previous one saw a change:
//  1. the WAL-index header in vault.db-shm (shm_unix.go), read from a
//     read-only mapping without a lock or a system call: every commit, of
//     any process, rewrites it before it returns;
//  2. PRAGMA data_version on a dedicated connection, which changes whenever
//     any other connection — of this process or another — commits;
//  3. cache_gen, which triggers bump on every change a route depends on
//     (not on audit rows or last_used_at); the cache is dropped if it moved.
//
// A revocation committed by the CLI in another process is therefore refused
// on the very next request. Audit rows reach the database in batches
// (audit.go), so steps 2 and 3 run about once per batch, not per request.

type routeEntry struct {
	route agentkeys.Route // Credential points at cred
	cred  agentkeys.Credential
}

type sealedEntry struct {
	sealed     []byte
	keyVersion int
}

type routeCache struct {
	shm     *shmWatch                 // set by the vault once open; step 1 is skipped unless shm.ok()
	lastHdr atomic.Pointer[shmHeader] // header read before the last completed check
	conn    *sql.Conn                 // dedicated: data_version is per connection
	dvStmt  *sql.Stmt                 // PRAGMA data_version, prepared on conn
	genStmt *sql.Stmt                 // SELECT gen, prepared on conn

	// Freshness checks are coalesced: a caller may skip its own check when a
	// check that began after the caller arrived has finished.
	checkMu       sync.Mutex
	ticket        atomic.Uint64
	checkedTicket uint64
	dataVersion   int64
	gen           int64

	mu       sync.RWMutex
	epoch    uint64                 // bumped by every invalidation; stale loads are not stored
	byToken  map[string]*routeEntry // pxr_ token hash
	byName   map[string]*routeEntry // credential name_key (ak_ws_ and owner routes)
	byCred   map[string]*sealedEntry
	wsKeyHex string // HashToken of the workspace key; "" until loaded
}

func newRouteCache(ctx context.Context, db *sql.DB) (*routeCache, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, storeErr("open cache connection", err)
	}
	c := &routeCache{conn: conn, dataVersion: -1, gen: -1}
	if c.dvStmt, err = conn.PrepareContext(ctx, "PRAGMA data_version"); err == nil {
		c.genStmt, err = conn.PrepareContext(ctx, "SELECT gen FROM cache_gen WHERE id = 1")
	}
	if err == nil {
		// The first read creates vault.db-shm if no connection had yet.
		err = c.dvStmt.QueryRowContext(ctx).Scan(new(int64))
	}
	if err != nil {
		conn.Close()
		return nil, storeErr("prepare cache checks", err)
	}
	c.reset()
	return c, nil
}

func (c *routeCache) reset() {
	c.byToken = map[string]*routeEntry{}
	c.byName = map[string]*routeEntry{}
	c.byCred = map[string]*sealedEntry{}
	c.wsKeyHex = ""
}

// invalidate drops everything; loads that began before it are not stored.
func (c *routeCache) invalidate() {
	c.mu.Lock()
	c.epoch++
	c.reset()
	c.mu.Unlock()
}

func (c *routeCache) close() error {
	c.dvStmt.Close()
	c.genStmt.Close()
	return c.conn.Close()
}

// refresh makes sure the cache holds nothing older than the last commit
// made before the call began.
func (c *routeCache) refresh(ctx context.Context) error {
	var hdr shmHeader
	shm := c.shm.ok()
	if shm {
		c.shm.read(&hdr)
		if last := c.lastHdr.Load(); last != nil && *last == hdr {
			return nil // nothing committed since a completed check began
		}
	}
	// The checks are short; without cancellation the driver starts no
	// goroutine to watch ctx.
	ctx = context.WithoutCancel(ctx)
	arrived := c.ticket.Add(1)
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	if c.checkedTicket > arrived {
		return nil // a check that started after we arrived has completed
	}
	started := c.ticket.Add(1)
	var dv int64
	if err := c.dvStmt.QueryRowContext(ctx).Scan(&dv); err != nil {
		return storeErr("check for changes", err)
	}
	if dv != c.dataVersion {
		var gen int64
		if err := c.genStmt.QueryRowContext(ctx).Scan(&gen); err != nil {
			return storeErr("check for changes", err)
		}
		if gen != c.gen {
			c.invalidate()
			c.gen = gen
		}
		c.dataVersion = dv
	}
	c.checkedTicket = started
	if shm {
		// hdr was read before this check's data_version: a commit after
		// that read changes the header again.
		c.lastHdr.Store(&hdr)
	}
	return nil
}

func (c *routeCache) snapshotEpoch() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// copyRoute returns a route the caller may keep; it shares AllowedHosts,
// which callers must not modify.
func (e *routeEntry) copyRoute() *agentkeys.Route {
	r := e.route
	cred := e.cred
	r.Credential = &cred
	return &r
}

func unauthorized(msg string) error { return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "%s", msg) }

// Authorize implements agentkeys.ProxyBackend. A pxr_ token is looked up
// by its SHA-256 (the hash is the index key); an ak_ws_ key is compared in
// constant time with the workspace key's hash and opens the credential
// named name (case-insensitively). Returns EUNAUTHORIZED for a missing,
// malformed, unknown or revoked token, EINVALID for an ak_ws_ key without a
// name, ENOTFOUND for an unknown name.
func (v *Vault) Authorize(ctx context.Context, token, name string) (*agentkeys.Route, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	switch {
	case token == "":
		return nil, unauthorized("missing token: send Authorization: Bearer pxr_… (a proxy token) or Bearer ak_ws_… with X-Credential-Name")
	case agentkeys.IsProxyToken(token):
		if err := v.cache.refresh(ctx); err != nil {
			return nil, err
		}
		return v.routeByToken(ctx, agentkeys.HashToken(token))
	case agentkeys.IsWorkspaceKey(token):
		if err := v.cache.refresh(ctx); err != nil {
			return nil, err
		}
		ok, err := v.checkWorkspaceKey(ctx, agentkeys.HashToken(token))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, unauthorized("invalid workspace key")
		}
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "a workspace key needs the credential's name: set the X-Credential-Name header")
		}
		return v.routeByName(ctx, name)
	default:
		return nil, unauthorized("invalid token: expected a pxr_ proxy token or an ak_ws_ workspace key")
	}
}

// RouteByName implements agentkeys.ProxyBackend: the credential named name
// (case-insensitively), with the authority of whoever opened the vault.
// Returns ENOTFOUND for an unknown name.
func (v *Vault) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if err := v.cache.refresh(ctx); err != nil {
		return nil, err
	}
	return v.routeByName(ctx, name)
}

func (v *Vault) checkWorkspaceKey(ctx context.Context, hash string) (bool, error) {
	c := v.cache
	c.mu.RLock()
	stored := c.wsKeyHex
	c.mu.RUnlock()
	if stored == "" {
		epoch := c.snapshotEpoch()
		if err := v.db.QueryRowContext(ctx, `SELECT key_hash FROM workspaces WHERE id = ?`, v.wsID).Scan(&stored); err != nil {
			return false, storeErr("check workspace key", err)
		}
		c.mu.Lock()
		if c.epoch == epoch {
			c.wsKeyHex = stored
		}
		c.mu.Unlock()
	}
	return agentkeys.EqualHash(hash, stored), nil
}

const routeCols = `c.id, c.name, c.type, c.allowed_hosts, c.created_at, c.updated_at, c.last_used_at, c.sealed, c.key_version`

func (v *Vault) routeByToken(ctx context.Context, hash string) (*agentkeys.Route, error) {
	c := v.cache
	c.mu.RLock()
	e := c.byToken[hash]
	c.mu.RUnlock()
	if e != nil {
		return e.copyRoute(), nil
	}
	epoch := c.snapshotEpoch()
	var stored, agentID, agentName string
	var sealed []byte
	var ver int
	var expires sql.NullInt64
	row := v.db.QueryRowContext(ctx, `SELECT `+routeCols+`, g.token_hash, a.id, a.name, g.expires_at
		FROM grants g JOIN agents a ON a.id = g.agent_id JOIN credentials c ON c.id = g.credential_id
		WHERE g.token_hash = ? AND c.workspace_id = ?`, hash, v.wsID)
	cred, err := scanCredential(row, &sealed, &ver, &stored, &agentID, &agentName, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, unauthorized("invalid or revoked proxy token")
	}
	if err != nil {
		return nil, storeErr("authorize", err)
	}
	if !agentkeys.EqualHash(hash, stored) {
		return nil, unauthorized("invalid or revoked proxy token")
	}
	e = &routeEntry{cred: *cred, route: agentkeys.Route{WorkspaceID: v.wsID, AgentID: agentID, AgentName: agentName}}
	if expires.Valid {
		e.route.ExpiresAt = fromMicros(expires.Int64)
	}
	e.route.Credential = &e.cred
	c.mu.Lock()
	if c.epoch == epoch {
		c.byToken[hash] = e
		c.byCred[cred.ID] = &sealedEntry{sealed: sealed, keyVersion: ver}
	}
	c.mu.Unlock()
	return e.copyRoute(), nil
}

func (v *Vault) routeByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	key := nameKey(name)
	c := v.cache
	c.mu.RLock()
	e := c.byName[key]
	c.mu.RUnlock()
	if e != nil {
		return e.copyRoute(), nil
	}
	epoch := c.snapshotEpoch()
	var sealed []byte
	var ver int
	row := v.db.QueryRowContext(ctx, `SELECT `+routeCols+` FROM credentials c WHERE c.workspace_id = ? AND c.name_key = ?`, v.wsID, key)
	cred, err := scanCredential(row, &sealed, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential named %q in this vault", name)
	}
	if err != nil {
		return nil, storeErr("authorize", err)
	}
	e = &routeEntry{cred: *cred, route: agentkeys.Route{WorkspaceID: v.wsID}}
	e.route.Credential = &e.cred
	c.mu.Lock()
	if c.epoch == epoch {
		c.byName[key] = e
		c.byCred[cred.ID] = &sealedEntry{sealed: sealed, keyVersion: ver}
	}
	c.mu.Unlock()
	return e.copyRoute(), nil
}

// OpenSecret implements agentkeys.ProxyBackend: it decrypts the route's
// credential in memory. The sealed row comes from the cache Authorize
// filled, or from the database. Returns EUNAUTHORIZED when the credential
// no longer exists, and agentkeys.ErrDecrypt when the ciphertext does not
// open (tampered, or copied from another credential).
func (v *Vault) OpenSecret(ctx context.Context, r *agentkeys.Route) (*agentkeys.Secret, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if r == nil || r.Credential == nil || r.Credential.ID == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no credential to open")
	}
	id := r.Credential.ID
	c := v.cache
	c.mu.RLock()
	se := c.byCred[id]
	c.mu.RUnlock()
	if se == nil {
		epoch := c.snapshotEpoch()
		se = &sealedEntry{}
		err := v.db.QueryRowContext(ctx, `SELECT sealed, key_version FROM credentials WHERE workspace_id = ? AND id = ?`, v.wsID, id).
			Scan(&se.sealed, &se.keyVersion)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, unauthorized("the credential was deleted")
		}
		if err != nil {
			return nil, storeErr("open secret", err)
		}
		c.mu.Lock()
		if c.epoch == epoch {
			c.byCred[id] = se
		}
		c.mu.Unlock()
	}
	sealer, err := v.keys.opener(ctx, v.db, se.keyVersion)
	if err != nil {
		return nil, err
	}
	s, err := sealer.OpenSecret(se.sealed, v.wsID, id, se.keyVersion)
	if err != nil {
		v.log.Error("credential does not decrypt", "credential", id, "keyVersion", se.keyVersion)
		return nil, fmt.Errorf("credential %s: %w", id, err)
	}
	return s, nil
}
