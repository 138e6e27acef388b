package localvault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
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
	epoch    uint64                          // bumped by every invalidation; stale loads are not stored
	byToken  map[string]*storesql.RouteEntry // pxr_ token hash
	byName   map[string]*storesql.RouteEntry // credential name_key (ak_ws_ and owner routes)
	byCred   map[string]*storesql.RouteEntry // credential id: its sealed value
	wsKeyHex string                          // HashToken of the workspace key; "" until loaded
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
	c.byToken = map[string]*storesql.RouteEntry{}
	c.byName = map[string]*storesql.RouteEntry{}
	c.byCred = map[string]*storesql.RouteEntry{}
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
	kind, err := storesql.ClassifyToken(token)
	if err != nil {
		return nil, err
	}
	if err := v.cache.refresh(ctx); err != nil {
		return nil, err
	}
	if kind == storesql.ProxyToken {
		return v.routeByToken(ctx, agentkeys.HashToken(token))
	}
	ok, err := v.checkWorkspaceKey(ctx, agentkeys.HashToken(token))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, storesql.Unauthorized(storesql.InvalidKey)
	}
	if name, err = storesql.CheckRouteName(name, true); err != nil {
		return nil, err
	}
	return v.routeByName(ctx, name)
}

// RouteByName implements agentkeys.ProxyBackend: the credential named name
// (case-insensitively), with the authority of whoever opened the vault.
// Returns ENOTFOUND for an unknown name.
func (v *Vault) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	name, err := storesql.CheckRouteName(name, false)
	if err != nil {
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

func (v *Vault) routeByToken(ctx context.Context, hash string) (*agentkeys.Route, error) {
	c := v.cache
	c.mu.RLock()
	e := c.byToken[hash]
	c.mu.RUnlock()
	if e != nil {
		return e.Copy(), nil
	}
	epoch := c.snapshotEpoch()
	var stored string
	var expires sql.NullInt64
	e = &storesql.RouteEntry{Route: agentkeys.Route{WorkspaceID: v.wsID}}
	row := v.db.QueryRowContext(ctx, `SELECT `+storesql.RouteCols+`, g.token_hash, a.id, a.name, g.expires_at
		FROM grants g JOIN agents a ON a.id = g.agent_id JOIN credentials c ON c.id = g.credential_id
		WHERE g.token_hash = $1 AND c.workspace_id = $2`, hash, v.wsID)
	err := e.Scan(row, &stored, &e.Route.AgentID, &e.Route.AgentName, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, v.revokedToken(ctx, hash)
	}
	if err != nil {
		return nil, storeErr("authorize", err)
	}
	if !agentkeys.EqualHash(hash, stored) {
		return nil, storesql.Unauthorized(storesql.RevokedToken)
	}
	if expires.Valid {
		e.Route.ExpiresAt = storesql.FromMicros(expires.Int64)
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.byToken[hash] = e
		c.byCred[e.Cred.ID] = e
	}
	c.mu.Unlock()
	return e.Copy(), nil
}

// revokedToken is Authorize's refusal of a pxr_ token with no grant: an
// *agentkeys.RevokedToken naming the agent and credential it was issued to
// when the vault remembers them (revoked_tokens), else plain EUNAUTHORIZED.
func (v *Vault) revokedToken(ctx context.Context, hash string) error {
	refusal := storesql.Unauthorized(storesql.RevokedToken)
	var e agentkeys.RevokedToken
	err := v.db.QueryRowContext(ctx, `SELECT agent_id, agent_name, credential_id, credential_name
		FROM revoked_tokens WHERE token_hash = $1`, hash).Scan(&e.AgentID, &e.AgentName, &e.CredentialID, &e.CredentialName)
	if err != nil {
		return refusal // unknown token, or the lookup failed: refused either way
	}
	e.Err = refusal
	return &e
}

func (v *Vault) routeByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	key := storesql.NameKey(name)
	c := v.cache
	c.mu.RLock()
	e := c.byName[key]
	c.mu.RUnlock()
	if e != nil {
		return e.Copy(), nil
	}
	epoch := c.snapshotEpoch()
	e = &storesql.RouteEntry{Route: agentkeys.Route{WorkspaceID: v.wsID}}
	row := v.db.QueryRowContext(ctx, `SELECT `+storesql.RouteCols+` FROM credentials c WHERE c.workspace_id = $1 AND c.name_key = $2`, v.wsID, key)
	err := e.Scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storesql.RouteNotFound(name)
	}
	if err != nil {
		return nil, storeErr("authorize", err)
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.byName[key] = e
		c.byCred[e.Cred.ID] = e
	}
	c.mu.Unlock()
	return e.Copy(), nil
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
		se = &storesql.RouteEntry{}
		err := v.db.QueryRowContext(ctx, `SELECT sealed, key_version FROM credentials WHERE workspace_id = $1 AND id = $2`, v.wsID, id).
			Scan(&se.Sealed, &se.KeyVersion)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, storesql.Unauthorized(storesql.CredentialDeleted)
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
	sealer, err := v.keys.opener(ctx, v.db, se.KeyVersion)
	if err != nil {
		return nil, err
	}
	s, err := sealer.OpenSecret(se.Sealed, v.wsID, id, se.KeyVersion)
	if err != nil {
		v.log.Error("credential does not decrypt", "credential", id, "keyVersion", se.KeyVersion)
		return nil, fmt.Errorf("credential %s: %w", id, err)
	}
	return s, nil
}
