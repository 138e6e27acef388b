package localvault

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/sqlitedb"
)

// ListAgents implements agentkeys.AgentService: every agent with its
// assigned credentials, agents ordered by name, credentials by name.
func (v *Vault) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	return v.agents(ctx, v.db, "")
}

// agents lists all agents, or only the one with id when id is not empty.
func (v *Vault) agents(ctx context.Context, q querier, id string) ([]*agentkeys.Agent, error) {
	rows, err := q.QueryContext(ctx, `SELECT a.id, a.name, a.created_at, g.credential_id, c.name, g.created_at, g.last_used_at
		FROM agents a
		LEFT JOIN grants g ON g.agent_id = a.id
		LEFT JOIN credentials c ON c.id = g.credential_id
		WHERE a.workspace_id = ?1 AND (?2 = '' OR a.id = ?2)
		ORDER BY a.name_key, a.id, c.name_key, c.id`, v.wsID, id)
	if err != nil {
		return nil, storeErr("list agents", err)
	}
	defer rows.Close()
	out := []*agentkeys.Agent{}
	var cur *agentkeys.Agent
	for rows.Next() {
		var aid, aname string
		var acreated int64
		var cid, cname sql.NullString
		var gcreated, gused sql.NullInt64
		if err := rows.Scan(&aid, &aname, &acreated, &cid, &cname, &gcreated, &gused); err != nil {
			return nil, storeErr("list agents", err)
		}
		if cur == nil || cur.ID != aid {
			cur = &agentkeys.Agent{ID: aid, Name: aname, CreatedAt: fromMicros(acreated), Credentials: []agentkeys.AgentCredential{}}
			out = append(out, cur)
		}
		if cid.Valid {
			cur.Credentials = append(cur.Credentials, agentkeys.AgentCredential{
				CredentialID: cid.String, CredentialName: cname.String,
				AssignedAt: fromMicros(gcreated.Int64), LastUsedAt: nullTime(gused),
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list agents", err)
	}
	return out, nil
}

// FindAgent implements agentkeys.AgentService: by id, else by name
// case-insensitively. Returns ENOTFOUND otherwise.
func (v *Vault) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	ref = strings.TrimSpace(ref)
	var id string
	err := v.db.QueryRowContext(ctx, `SELECT id FROM agents WHERE workspace_id = ?1 AND (id = ?2 OR name_key = ?3)
		ORDER BY id = ?2 DESC LIMIT 1`, v.wsID, ref, nameKey(ref)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q: see `agentkeys agents list`", ref)
	}
	if err != nil {
		return nil, storeErr("find agent", err)
	}
	as, err := v.agents(ctx, v.db, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 { // deleted in between
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q: see `agentkeys agents list`", ref)
	}
	return as[0], nil
}

// CreateAgent implements agentkeys.AgentService. Returns EINVALID for a bad
// name and ECONFLICT when the name is taken (case-insensitively).
func (v *Vault) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	name, err := agentkeys.ValidateName("agent", name)
	if err != nil {
		return nil, err
	}
	a := &agentkeys.Agent{ID: agentkeys.NewID("agent"), Name: name, CreatedAt: v.stamp(), Credentials: []agentkeys.AgentCredential{}}
	err = v.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO agents (id, workspace_id, name, name_key, created_at) VALUES (?, ?, ?, ?, ?)`,
			a.ID, v.wsID, a.Name, nameKey(a.Name), a.CreatedAt.UnixMicro())
		if sqlitedb.IsUnique(err) {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "an agent named %q already exists (names are unique, ignoring case): choose another name", a.Name)
		}
		return err
	})
	if err != nil {
		return nil, storeErr("create agent", err)
	}
	return a, nil
}

// DeleteAgent implements agentkeys.AgentService: the agent and its grants
// go; their tokens fail on the next request. Returns ENOTFOUND.
func (v *Vault) DeleteAgent(ctx context.Context, id string) error {
	if err := v.usable(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE workspace_id = ? AND id = ?`, v.wsID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentNotFound(id)
		}
		return nil
	})
	return storeErr("delete agent", err)
}

func agentNotFound(id string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id %q: see `agentkeys agents list`", id)
}

func agentExists(ctx context.Context, q querier, wsID, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM agents WHERE workspace_id = ? AND id = ?`, wsID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return agentNotFound(id)
	}
	return err
}

// AssignCredential implements agentkeys.AgentService: a new pxr_ token for
// the pair, returned once; only its SHA-256 is stored. Assigning an assigned
// pair replaces the token (the old one stops working). Returns ENOTFOUND for
// an unknown agent or credential id.
func (v *Vault) AssignCredential(ctx context.Context, agentID, credentialID string) (*agentkeys.Grant, error) {
	return v.AssignCredentialUntil(ctx, agentID, credentialID, time.Time{})
}

// AssignCredentialUntil implements agentkeys.AgentService: AssignCredential
// for a token that stops working at expiresAt (zero: never). Returns
// EINVALID when expiresAt is not in the future.
func (v *Vault) AssignCredentialUntil(ctx context.Context, agentID, credentialID string, expiresAt time.Time) (*agentkeys.Grant, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	g := &agentkeys.Grant{ProxyToken: agentkeys.NewProxyToken(), AgentID: agentID, CredentialID: credentialID, CreatedAt: v.stamp()}
	if err := agentkeys.CheckGrantExpiry(expiresAt, g.CreatedAt); err != nil {
		return nil, err
	}
	var expires sql.NullInt64
	if !expiresAt.IsZero() {
		t := expiresAt.UTC().Truncate(time.Microsecond)
		g.ExpiresAt, expires = &t, sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		if err := agentExists(ctx, tx, v.wsID, agentID); err != nil {
			return err
		}
		if _, err := credentialByID(ctx, tx, v.wsID, credentialID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO grants (agent_id, credential_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (agent_id, credential_id) DO UPDATE SET
				token_hash = excluded.token_hash, created_at = excluded.created_at, last_used_at = NULL, expires_at = excluded.expires_at`,
			agentID, credentialID, agentkeys.HashToken(g.ProxyToken), g.CreatedAt.UnixMicro(), expires)
		return err
	})
	if err != nil {
		return nil, storeErr("assign credential", err)
	}
	return g, nil
}

// RevokeCredential implements agentkeys.AgentService: the grant goes and
// its token fails on the next request, also in a proxy running in another
// process. Returns ENOTFOUND when the agent, the credential or the
// assignment does not exist.
func (v *Vault) RevokeCredential(ctx context.Context, agentID, credentialID string) error {
	if err := v.usable(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		if err := agentExists(ctx, tx, v.wsID, agentID); err != nil {
			return err
		}
		c, err := credentialByID(ctx, tx, v.wsID, credentialID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE agent_id = ? AND credential_id = ?`, agentID, credentialID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "credential %q is not assigned to agent %s", c.Name, agentID)
		}
		return nil
	})
	return storeErr("revoke credential", err)
}
