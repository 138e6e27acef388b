package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
)

// The hosted proxy path (Authorize, OpenSecret) answers from memory when it
// can: resolved routes, with the sealed value (decrypted per request, never
// cached in the clear), are kept together with the workspace revision they
// were read at. Every change a route depends on bumps workspaces.revision in
// the same transaction, on whichever replica makes it. Before a cached route
// is used, the workspace's current revision is read — one primary-key lookup,
// shared by every request of that workspace that arrived before the lookup
// began — and the route is used only if its revision is still current. A
// revocation committed through any replica is therefore refused by every
// replica on the very next request.

// maxCachedRoutes bounds the cache; past it, it starts over.
const maxCachedRoutes = 100_000

type routeEntry struct {
	route      agentkeys.Route // Credential points at cred
	cred       agentkeys.Credential
	sealed     []byte
	keyVersion int
	rev        int64
}

type keyEntry struct {
	ws  string
	rev int64
}

type nameID struct{ ws, key string }

// wsCheck coalesces revision reads of one workspace. A caller needs a read
// that began after it arrived: when none is in flight it reads itself;
// when one is, it waits for the next round, which the reader of the round
// in flight starts as soon as it finishes. So at most one read per
// workspace is in flight, and every read serves all who arrived during the
// one before.
type wsCheck struct {
	mu       sync.Mutex
	inflight bool
	next     *revRound    // the round callers arriving during a read wait for
	current  atomic.Int64 // the last revision read; -1: no such workspace; -2: never read
}

// revRound is one revision read and those waiting for it.
type revRound struct {
	done chan struct{} // closed once rev and err are set
	rev  int64
	err  error
}

type routeCache struct {
	mu     sync.RWMutex
	tokens map[string]*routeEntry // pxr_ token HMAC
	keys   map[string]keyEntry    // ak_ws_ key HMAC
	names  map[nameID]*routeEntry // credential name_key within a workspace
	creds  map[string]*routeEntry // credential id: the last route loaded for it
	checks map[string]*wsCheck
}

func newRouteCache() *routeCache {
	c := &routeCache{checks: map[string]*wsCheck{}}
	c.reset()
	return c
}

func (c *routeCache) reset() {
	c.tokens = map[string]*routeEntry{}
	c.keys = map[string]keyEntry{}
	c.names = map[nameID]*routeEntry{}
	c.creds = map[string]*routeEntry{}
}

func (c *routeCache) check(ws string) *wsCheck {
	c.mu.RLock()
	wc := c.checks[ws]
	c.mu.RUnlock()
	if wc != nil {
		return wc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if wc = c.checks[ws]; wc == nil {
		wc = &wsCheck{}
		wc.current.Store(-2) // never read
		c.checks[ws] = wc
	}
	return wc
}

// store keeps e under whichever of its lookups are given.
func (c *routeCache) store(tokenHash string, name *nameID, e *routeEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens)+len(c.names) > maxCachedRoutes {
		c.reset()
	}
	if tokenHash != "" {
		c.tokens[tokenHash] = e
	}
	if name != nil {
		c.names[*name] = e
	}
	c.creds[e.cred.ID] = e
}

// revision returns the workspace's revision as of a read that began after
// the call did.
func (s *Store) revision(ctx context.Context, ws string) (int64, error) {
	wc := s.cache.check(ws)
	wc.mu.Lock()
	if !wc.inflight {
		wc.inflight = true
		wc.mu.Unlock()
		r := &revRound{done: make(chan struct{})}
		s.readRevision(wc, ws, r)
		return r.rev, r.err
	}
	if wc.next == nil {
		wc.next = &revRound{done: make(chan struct{})}
	}
	r := wc.next
	wc.mu.Unlock()
	select {
	case <-r.done:
		return r.rev, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// readRevision reads ws's revision into r and releases r's waiters; if
// callers queued for a next round meanwhile, it starts that round in a
// goroutine of its own (the caller's request does not wait for it). The
// read is not tied to any one request's context.
func (s *Store) readRevision(wc *wsCheck, ws string, r *revRound) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.stmts.revision.QueryRowContext(ctx, ws).Scan(&r.rev)
	cancel()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.rev = -1
	case err != nil:
		r.err = s.storeErr("check for changes", err)
	}
	if r.err == nil {
		wc.current.Store(r.rev)
	}
	close(r.done)
	wc.mu.Lock()
	next := wc.next
	wc.next = nil
	wc.inflight = next != nil
	wc.mu.Unlock()
	if next != nil {
		go s.readRevision(wc, ws, next)
	}
}

// fresh reports whether a cached entry read at rev is still current.
func (s *Store) fresh(ctx context.Context, ws string, rev int64) (bool, error) {
	cur, err := s.revision(ctx, ws)
	return err == nil && cur == rev, err
}

func (e *routeEntry) copyRoute() *agentkeys.Route {
	r := e.route
	cred := e.cred
	r.Credential = &cred
	return &r
}

func unauthorized(msg string) error { return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "%s", msg) }

// Authorize implements agentkeys.ProxyBackend for the hosted proxy: a pxr_
// token opens its grant in whatever workspace it belongs to; an ak_ws_ key
// opens the credential of its workspace named name (case-insensitively).
// Tokens are looked up by their HMAC. Returns EUNAUTHORIZED for a missing,
// malformed, unknown or revoked token, EINVALID for an ak_ws_ key without a
// name, ENOTFOUND for an unknown name.
func (s *Store) Authorize(ctx context.Context, token, name string) (*agentkeys.Route, error) {
	switch {
	case token == "":
		return nil, unauthorized("missing token: send Authorization: Bearer pxr_… (a proxy token) or Bearer ak_ws_… with X-Credential-Name")
	case agentkeys.IsProxyToken(token):
		return s.routeByToken(ctx, s.hashToken(token))
	case agentkeys.IsWorkspaceKey(token):
		ws, err := s.workspaceOfKey(ctx, s.hashToken(token))
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(name) == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "a workspace key needs the credential's name: set the X-Credential-Name header")
		}
		return s.routeByName(ctx, ws, name)
	default:
		return nil, unauthorized("invalid token: expected a pxr_ proxy token or an ak_ws_ workspace key")
	}
}

// RouteByName implements agentkeys.ProxyBackend. The hosted proxy has no
// owner authority (it is reachable only over HTTP, where every request
// carries a token), so it always returns EFORBIDDEN.
func (s *Store) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	return nil, agentkeys.Errorf(agentkeys.EFORBIDDEN, "the hosted proxy needs a token: send Authorization: Bearer pxr_… or Bearer ak_ws_… with X-Credential-Name")
}

const routeCols = credentialCols + `, c.sealed, c.key_version, w.revision`

func (s *Store) routeByToken(ctx context.Context, hash string) (*agentkeys.Route, error) {
	s.cache.mu.RLock()
	e := s.cache.tokens[hash]
	s.cache.mu.RUnlock()
	if e != nil {
		ok, err := s.fresh(ctx, e.route.WorkspaceID, e.rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return e.copyRoute(), nil
		}
	}
	e = &routeEntry{}
	row := s.db.QueryRowContext(ctx, `SELECT `+routeCols+`, g.workspace_id, a.id, a.name
		FROM grants g
		JOIN agents a ON a.workspace_id = g.workspace_id AND a.id = g.agent_id
		JOIN credentials c ON c.workspace_id = g.workspace_id AND c.id = g.credential_id
		JOIN workspaces w ON w.id = g.workspace_id
		WHERE g.token_hash = $1`, hash)
	cred, err := scanCredential(row, &e.sealed, &e.keyVersion, &e.rev, &e.route.WorkspaceID, &e.route.AgentID, &e.route.AgentName)
	if errors.Is(err, sql.ErrNoRows) {
		s.cache.mu.Lock()
		delete(s.cache.tokens, hash) // revoked: forget the stale route
		s.cache.mu.Unlock()
		return nil, unauthorized("invalid or revoked proxy token")
	}
	if err != nil {
		return nil, s.storeErr("authorize", err)
	}
	e.cred = *cred
	e.route.Credential = &e.cred
	s.cache.store(hash, nil, e)
	return e.copyRoute(), nil
}

func (s *Store) workspaceOfKey(ctx context.Context, hash string) (string, error) {
	s.cache.mu.RLock()
	k, ok := s.cache.keys[hash]
	s.cache.mu.RUnlock()
	if ok {
		fresh, err := s.fresh(ctx, k.ws, k.rev)
		if err != nil {
			return "", err
		}
		if fresh {
			return k.ws, nil
		}
	}
	err := s.db.QueryRowContext(ctx, `SELECT k.workspace_id, w.revision FROM workspace_keys k JOIN workspaces w ON w.id = k.workspace_id
		WHERE k.key_hash = $1`, hash).Scan(&k.ws, &k.rev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", unauthorized("invalid workspace key")
	}
	if err != nil {
		return "", s.storeErr("authorize", err)
	}
	s.cache.mu.Lock()
	s.cache.keys[hash] = k
	s.cache.mu.Unlock()
	return k.ws, nil
}

// routeByName opens the credential of workspace ws named name, with no agent.
func (s *Store) routeByName(ctx context.Context, ws, name string) (*agentkeys.Route, error) {
	id := nameID{ws, nameKey(strings.TrimSpace(name))}
	s.cache.mu.RLock()
	e := s.cache.names[id]
	s.cache.mu.RUnlock()
	if e != nil {
		ok, err := s.fresh(ctx, ws, e.rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return e.copyRoute(), nil
		}
	}
	e = &routeEntry{route: agentkeys.Route{WorkspaceID: ws}}
	row := s.db.QueryRowContext(ctx, `SELECT `+routeCols+` FROM credentials c JOIN workspaces w ON w.id = c.workspace_id
		WHERE c.workspace_id = $1 AND c.name_key = $2`, ws, id.key)
	cred, err := scanCredential(row, &e.sealed, &e.keyVersion, &e.rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential named %q in this workspace", strings.TrimSpace(name))
	}
	if err != nil {
		return nil, s.storeErr("authorize", err)
	}
	e.cred = *cred
	e.route.Credential = &e.cred
	s.cache.store("", &id, e)
	return e.copyRoute(), nil
}

// OpenSecret implements agentkeys.ProxyBackend: it decrypts the route's
// credential in memory, from the sealed row Authorize cached when that is
// still current, else from the database. Returns EUNAUTHORIZED when the
// credential no longer exists, and an error wrapping agentkeys.ErrDecrypt
// when the ciphertext does not open (tampered, or copied from another
// credential or workspace).
func (s *Store) OpenSecret(ctx context.Context, r *agentkeys.Route) (*agentkeys.Secret, error) {
	if r == nil || r.Credential == nil || r.Credential.ID == "" || r.WorkspaceID == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no credential to open")
	}
	ws, id := r.WorkspaceID, r.Credential.ID
	s.cache.mu.RLock()
	e := s.cache.creds[id]
	s.cache.mu.RUnlock()
	var sealed []byte
	var ver int
	if e != nil && e.route.WorkspaceID == ws && e.rev == s.cache.check(ws).current.Load() {
		sealed, ver = e.sealed, e.keyVersion
	} else {
		err := s.db.QueryRowContext(ctx, `SELECT sealed, key_version FROM credentials WHERE workspace_id = $1 AND id = $2`, ws, id).
			Scan(&sealed, &ver)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, unauthorized("the credential was deleted")
		}
		if err != nil {
			return nil, s.storeErr("open secret", err)
		}
	}
	sl, err := s.sealer(ctx, s.db, ws, ver)
	if err != nil {
		return nil, err
	}
	secret, err := sl.OpenSecret(sealed, ws, id, ver)
	if err != nil {
		s.log.ErrorContext(ctx, "credential does not decrypt", "workspace", ws, "credential", id, "keyVersion", ver)
		return nil, fmt.Errorf("credential %s: %w", id, err)
	}
	return secret, nil
}

// Authorize implements agentkeys.ProxyBackend for the workspace view: like
// Store.Authorize, but a token of another workspace is EUNAUTHORIZED.
func (w *Workspace) Authorize(ctx context.Context, token, name string) (*agentkeys.Route, error) {
	r, err := w.s.Authorize(ctx, token, name)
	if err != nil {
		return nil, err
	}
	if r.WorkspaceID != w.id {
		return nil, unauthorized("invalid or revoked proxy token")
	}
	return r, nil
}

// RouteByName implements agentkeys.ProxyBackend: the workspace's credential
// named name, with the authority of the view's holder. Returns ENOTFOUND.
func (w *Workspace) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	if strings.TrimSpace(name) == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential name")
	}
	return w.s.routeByName(ctx, w.id, name)
}

// OpenSecret implements agentkeys.ProxyBackend for routes of this workspace.
func (w *Workspace) OpenSecret(ctx context.Context, r *agentkeys.Route) (*agentkeys.Secret, error) {
	if r == nil || r.WorkspaceID != w.id {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no credential of this workspace to open")
	}
	return w.s.OpenSecret(ctx, r)
}

// BeginAudit implements agentkeys.ProxyBackend; events not yet attributed
// to a workspace are attributed to this one.
func (w *Workspace) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	if e.WorkspaceID == "" {
		e.WorkspaceID = w.id
	}
	return w.s.BeginAudit(ctx, e)
}

// EndAudit implements agentkeys.ProxyBackend; see BeginAudit.
func (w *Workspace) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	if e.WorkspaceID == "" {
		e.WorkspaceID = w.id
	}
	w.s.EndAudit(ctx, e)
}
