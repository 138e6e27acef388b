package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// The hosted proxy path (Authorize, OpenSecret) answers from memory when it
// can: resolved routes, with the sealed value (decrypted per request, never
// cached in the clear), are kept together with the workspace revision they
// were read at, and used while freshness.go says that revision is current.

// maxCachedRoutes bounds the cache; past it, it starts over.
const maxCachedRoutes = 100_000

type routeEntry struct {
	storesql.RouteEntry
	rev int64 // the workspace revision it was read at
}

type keyEntry struct {
	ws  string
	rev int64
}

type nameID struct{ ws, key string }

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
	c.creds[e.Cred.ID] = e
}

// Authorize implements agentkeys.ProxyBackend for the hosted proxy: a pxr_
// token opens its grant in whatever workspace it belongs to; an ak_ws_ key
// opens the credential of its workspace named name (case-insensitively).
// Tokens are looked up by their HMAC. Returns EUNAUTHORIZED for a missing,
// malformed, unknown or revoked token, EINVALID for an ak_ws_ key without a
// name, ENOTFOUND for an unknown name.
func (s *Store) Authorize(ctx context.Context, token, name string) (*agentkeys.Route, error) {
	kind, err := storesql.ClassifyToken(token)
	if err != nil {
		return nil, err
	}
	if kind == storesql.ProxyToken {
		return s.routeByToken(ctx, s.hashToken(token))
	}
	ws, err := s.workspaceOfKey(ctx, s.hashToken(token))
	if err != nil {
		return nil, err
	}
	if name, err = storesql.CheckRouteName(name, true); err != nil {
		return nil, err
	}
	return s.routeByName(ctx, ws, name)
}

// RouteByName implements agentkeys.ProxyBackend. The hosted proxy has no
// owner authority (it is reachable only over HTTP, where every request
// carries a token), so it always returns EFORBIDDEN.
func (s *Store) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	return nil, agentkeys.Errorf(agentkeys.EFORBIDDEN, "the hosted proxy needs a token: send Authorization: Bearer pxr_… or Bearer ak_ws_… with X-Credential-Name")
}

const routeCols = storesql.RouteCols + `, w.revision`

func (s *Store) routeByToken(ctx context.Context, hash string) (*agentkeys.Route, error) {
	s.cache.mu.RLock()
	e := s.cache.tokens[hash]
	s.cache.mu.RUnlock()
	if e != nil {
		ok, err := s.fresh(ctx, e.Route.WorkspaceID, e.rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return e.Copy(), nil
		}
	}
	e = &routeEntry{}
	start := time.Now()
	var expires sql.NullInt64
	row := s.db.QueryRowContext(ctx, `SELECT `+routeCols+`, g.workspace_id, a.id, a.name, g.expires_at
		FROM grants g
		JOIN agents a ON a.workspace_id = g.workspace_id AND a.id = g.agent_id
		JOIN credentials c ON c.workspace_id = g.workspace_id AND c.id = g.credential_id
		JOIN workspaces w ON w.id = g.workspace_id
		WHERE g.token_hash = $1`, hash)
	err := e.Scan(row, &e.rev, &e.Route.WorkspaceID, &e.Route.AgentID, &e.Route.AgentName, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		s.cache.mu.Lock()
		delete(s.cache.tokens, hash) // revoked: forget the stale route
		s.cache.mu.Unlock()
		return nil, storesql.Unauthorized(storesql.RevokedToken)
	}
	if err != nil {
		return nil, s.storeErr("authorize", err)
	}
	if expires.Valid {
		e.Route.ExpiresAt = storesql.FromMicros(expires.Int64)
	}
	s.cache.check(e.Route.WorkspaceID).record(revRead{rev: e.rev, start: start})
	s.cache.store(hash, nil, e)
	return e.Copy(), nil
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
	start := time.Now()
	err := s.db.QueryRowContext(ctx, `SELECT k.workspace_id, w.revision FROM workspace_keys k JOIN workspaces w ON w.id = k.workspace_id
		WHERE k.key_hash = $1`, hash).Scan(&k.ws, &k.rev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", storesql.Unauthorized(storesql.InvalidKey)
	}
	if err != nil {
		return "", s.storeErr("authorize", err)
	}
	s.cache.check(k.ws).record(revRead{rev: k.rev, start: start})
	s.cache.mu.Lock()
	s.cache.keys[hash] = k
	s.cache.mu.Unlock()
	return k.ws, nil
}

// routeByName opens the credential of workspace ws named name, with no agent.
func (s *Store) routeByName(ctx context.Context, ws, name string) (*agentkeys.Route, error) {
	name = strings.TrimSpace(name)
	id := nameID{ws, storesql.NameKey(name)}
	s.cache.mu.RLock()
	e := s.cache.names[id]
	s.cache.mu.RUnlock()
	if e != nil {
		ok, err := s.fresh(ctx, ws, e.rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return e.Copy(), nil
		}
	}
	e = &routeEntry{RouteEntry: storesql.RouteEntry{Route: agentkeys.Route{WorkspaceID: ws}}}
	start := time.Now()
	row := s.db.QueryRowContext(ctx, `SELECT `+routeCols+` FROM credentials c JOIN workspaces w ON w.id = c.workspace_id
		WHERE c.workspace_id = $1 AND c.name_key = $2`, ws, id.key)
	err := e.Scan(row, &e.rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storesql.RouteNotFound(name)
	}
	if err != nil {
		return nil, s.storeErr("authorize", err)
	}
	s.cache.check(ws).record(revRead{rev: e.rev, start: start})
	s.cache.store("", &id, e)
	return e.Copy(), nil
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
	if e != nil && e.Route.WorkspaceID == ws && s.cache.check(ws).lastRev() == e.rev {
		sealed, ver = e.Sealed, e.KeyVersion
	} else {
		err := s.db.QueryRowContext(ctx, `SELECT sealed, key_version FROM credentials WHERE workspace_id = $1 AND id = $2`, ws, id).
			Scan(&sealed, &ver)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, storesql.Unauthorized(storesql.CredentialDeleted)
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
		return nil, storesql.Unauthorized(storesql.RevokedToken)
	}
	return r, nil
}

// RouteByName implements agentkeys.ProxyBackend: the workspace's credential
// named name, with the authority of the view's holder. Returns ENOTFOUND.
func (w *Workspace) RouteByName(ctx context.Context, name string) (*agentkeys.Route, error) {
	name, err := storesql.CheckRouteName(name, false)
	if err != nil {
		return nil, err
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
