package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// APIKey is one member's ak_ws_ key for one workspace. Key is set only in
// the answer that creates or rotates it (shown once; only its HMAC is
// stored).
type APIKey struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	UserID    string         `json:"userId"`
	Email     string         `json:"email"`
	Role      agentkeys.Role `json:"role"` // the member's current role, with which the key acts
	CreatedAt time.Time      `json:"createdAt"`
	Key       string         `json:"key,omitempty"`
}

// ActorForKey implements auth.KeyStore: the member an ak_ws_ key belongs
// to, with the member's role as it is now (a role change or removal is seen
// by the key's very next call, on every replica: this reads the database).
// Returns EUNAUTHORIZED for an unknown or revoked key.
func (s *Store) ActorForKey(ctx context.Context, key string) (*agentkeys.Actor, error) {
	if !agentkeys.IsWorkspaceKey(key) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "invalid API key: send Authorization: Bearer ak_ws_…")
	}
	a := &agentkeys.Actor{Kind: agentkeys.ActorAPIKey}
	err := s.db.QueryRowContext(ctx, `SELECT k.id, k.workspace_id, k.user_id, u.email, m.role
		FROM workspace_keys k
		JOIN members m ON m.workspace_id = k.workspace_id AND m.user_id = k.user_id
		JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1`, s.hashToken(key)).Scan(&a.KeyID, &a.WorkspaceID, &a.UserID, &a.Email, &a.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "invalid API key")
	}
	if err != nil {
		return nil, s.storeErr("authenticate", err)
	}
	return a, nil
}

// insertKey stores a new key for member userID of wsID and returns it.
func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, wsID, userID, name string) (id, key string, err error) {
	id, key = agentkeys.NewID("key"), agentkeys.NewWorkspaceKey()
	_, err = tx.ExecContext(ctx, `INSERT INTO workspace_keys (key_hash, workspace_id, created_at, id, user_id, name) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.hashToken(key), wsID, s.stamp().UnixMicro(), id, userID, name)
	return id, key, err
}

const apiKeyCols = `k.id, k.name, k.user_id, u.email, m.role, k.created_at`

func scanAPIKey(sc storesql.RowScanner) (*APIKey, error) {
	var k APIKey
	var created int64
	if err := sc.Scan(&k.ID, &k.Name, &k.UserID, &k.Email, &k.Role, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = storesql.FromMicros(created)
	return &k, nil
}

const apiKeyFrom = ` FROM workspace_keys k JOIN members m ON m.workspace_id = k.workspace_id AND m.user_id = k.user_id
	JOIN users u ON u.id = k.user_id`

// ListAPIKeys lists the keys of the actor's workspace (every member's),
// oldest first. Values are never listed.
func (s *Store) ListAPIKeys(ctx context.Context, a *agentkeys.Actor) ([]*APIKey, error) {
	return queryAll(ctx, s, s.db, "list API keys", scanAPIKey,
		`SELECT `+apiKeyCols+apiKeyFrom+` WHERE k.workspace_id = $1 ORDER BY k.created_at, k.id`, a.WorkspaceID)
}

func (s *Store) apiKey(ctx context.Context, q querier, wsID, id string) (*APIKey, error) {
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+apiKeyCols+apiKeyFrom+` WHERE k.workspace_id = $1 AND k.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no API key %q in this workspace: see `agentkeys keys list`", id)
	}
	if err != nil {
		return nil, s.storeErr("read API key", err)
	}
	return k, nil
}

// CreateAPIKey makes a new key for the actor itself (its member in its
// workspace) and returns it with its value, shown this once. Returns
// EINVALID for a bad name.
func (s *Store) CreateAPIKey(ctx context.Context, a *agentkeys.Actor, name string) (*APIKey, error) {
	name, err := agentkeys.ValidateName("API key", name)
	if err != nil {
		return nil, err
	}
	var out *APIKey
	err = s.Workspace(a.WorkspaceID).write(ctx, func(tx *sql.Tx) error {
		id, key, err := s.insertKey(ctx, tx, a.WorkspaceID, a.UserID, name)
		if err != nil {
			return err
		}
		if out, err = s.apiKey(ctx, tx, a.WorkspaceID, id); err != nil {
			return err
		}
		out.Key = key
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionAPIKeyCreated, id+" "+name)
	})
	if err != nil {
		return nil, s.storeErr("create API key", err)
	}
	return out, nil
}

// outranks reports whether a member of role r is above one of role o
// (owner > admin > member).
func outranks(o, r agentkeys.Role) bool { return rank(o) > rank(r) }

func rank(r agentkeys.Role) int {
	switch r {
	case agentkeys.RoleOwner:
		return 3
	case agentkeys.RoleAdmin:
		return 2
	case agentkeys.RoleMember:
		return 1
	}
	return 0
}

// RevokeAPIKey deletes a key of the actor's workspace: it stops working at
// once, on the API and the hosted proxy of every replica. Returns
// ENOTFOUND for an unknown id, EFORBIDDEN when the key's member outranks the
// actor (an admin cannot revoke an owner's key).
func (s *Store) RevokeAPIKey(ctx context.Context, a *agentkeys.Actor, id string) error {
	err := s.Workspace(a.WorkspaceID).change(ctx, func(tx *sql.Tx) error {
		k, err := s.apiKey(ctx, tx, a.WorkspaceID, id)
		if err != nil {
			return err
		}
		if k.UserID != a.UserID && outranks(k.Role, a.Role) {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "an %s cannot revoke the API key of an %s", a.Role, k.Role)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM workspace_keys WHERE workspace_id = $1 AND id = $2`, a.WorkspaceID, id); err != nil {
			return err
		}
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionAPIKeyRevoked, k.ID+" "+k.Name+" of "+k.Email)
	})
	return s.storeErr("revoke API key", err)
}

// RotateAPIKey replaces the value of one of the actor's own keys: the new
// value is returned once, the old one stops working at once. Returns
// ENOTFOUND for an unknown id, EFORBIDDEN for another member's key (rotating
// it would hand its holder's role to the caller).
func (s *Store) RotateAPIKey(ctx context.Context, a *agentkeys.Actor, id string) (*APIKey, error) {
	var out *APIKey
	err := s.Workspace(a.WorkspaceID).change(ctx, func(tx *sql.Tx) error {
		k, err := s.apiKey(ctx, tx, a.WorkspaceID, id)
		if err != nil {
			return err
		}
		if k.UserID != a.UserID {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "only the member a key belongs to may rotate it (%s): revoke it instead", k.Email)
		}
		key := agentkeys.NewWorkspaceKey()
		if _, err := tx.ExecContext(ctx, `UPDATE workspace_keys SET key_hash = $1 WHERE workspace_id = $2 AND id = $3`,
			s.hashToken(key), a.WorkspaceID, id); err != nil {
			return err
		}
		k.Key, out = key, k
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionAPIKeyRotated, k.ID+" "+k.Name)
	})
	if err != nil {
		return nil, s.storeErr("rotate API key", err)
	}
	return out, nil
}
