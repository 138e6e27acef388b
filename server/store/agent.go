package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

func agentNotFound(ref string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q in this workspace", ref)
}

// ListAgents implements agentkeys.AgentService: every agent with its
// assigned credentials, agents ordered by name, credentials by name.
func (w *Workspace) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	return w.agents(ctx, "")
}

// agents lists the workspace's agents, or only the one with id when id is
// not empty.
func (w *Workspace) agents(ctx context.Context, id string) ([]*agentkeys.Agent, error) {
	rows, err := w.s.db.QueryContext(ctx, `SELECT a.id, a.name, a.created_at, g.credential_id, c.name, g.created_at, g.last_used_at
		FROM agents a
		LEFT JOIN grants g ON g.workspace_id = a.workspace_id AND g.agent_id = a.id
		LEFT JOIN credentials c ON c.workspace_id = g.workspace_id AND c.id = g.credential_id
		WHERE a.workspace_id = $1 AND ($2 = '' OR a.id = $2)
		ORDER BY a.name_key, a.id, c.name_key, c.id`, w.id, id)
	if err != nil {
		return nil, w.s.storeErr("list agents", err)
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
			return nil, w.s.storeErr("list agents", err)
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
		return nil, w.s.storeErr("list agents", err)
	}
	return out, nil
}

// FindAgent implements agentkeys.AgentService: by id, else by name
// case-insensitively. Returns ENOTFOUND otherwise.
func (w *Workspace) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	ref = strings.TrimSpace(ref)
	var id string
	err := w.s.db.QueryRowContext(ctx, `SELECT id FROM agents WHERE workspace_id = $1 AND (id = $2 OR name_key = $3)
		ORDER BY id = $2 DESC LIMIT 1`, w.id, ref, nameKey(ref)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentNotFound(ref)
	}
	if err != nil {
		return nil, w.s.storeErr("find agent", err)
	}
	as, err := w.agents(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 { // deleted in between
		return nil, agentNotFound(ref)
	}
	return as[0], nil
}

// CreateAgent implements agentkeys.AgentService. Returns EINVALID for a bad
// name and ECONFLICT when the name is taken (case-insensitively).
func (w *Workspace) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	name, err := agentkeys.ValidateName("agent", name)
	if err != nil {
		return nil, err
	}
	a := &agentkeys.Agent{ID: agentkeys.NewID("agent"), Name: name, CreatedAt: w.s.stamp(), Credentials: []agentkeys.AgentCredential{}}
	err = w.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO agents (id, workspace_id, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
			a.ID, w.id, a.Name, nameKey(a.Name), a.CreatedAt.UnixMicro())
		if w.s.dialect.isUnique(err) {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "an agent named %q already exists (names are unique, ignoring case): choose another name", a.Name)
		}
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("create agent", err)
	}
	return a, nil
}

// DeleteAgent implements agentkeys.AgentService: the agent and its grants
// go; their tokens fail on the next request on every replica. Returns
// ENOTFOUND.
func (w *Workspace) DeleteAgent(ctx context.Context, id string) error {
	err := w.change(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE workspace_id = $1 AND id = $2`, w.id, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentNotFound(id)
		}
		return nil
	})
	return w.s.storeErr("delete agent", err)
}

func (w *Workspace) agentExists(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM agents WHERE workspace_id = $1 AND id = $2`, w.id, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return agentNotFound(id)
	}
	return err
}

// AssignCredential implements agentkeys.AgentService: a new pxr_ token for
// the pair, returned once; only its HMAC is stored. Assigning an assigned
// pair replaces the token (the old one stops working). Returns ENOTFOUND for
// an unknown agent or credential id.
func (w *Workspace) AssignCredential(ctx context.Context, agentID, credentialID string) (*agentkeys.Grant, error) {
	return w.AssignCredentialUntil(ctx, agentID, credentialID, time.Time{})
}

// AssignCredentialUntil implements agentkeys.AgentService: AssignCredential
// for a token that stops working at expiresAt (zero: never). Returns
// EINVALID when expiresAt is not in the future.
func (w *Workspace) AssignCredentialUntil(ctx context.Context, agentID, credentialID string, expiresAt time.Time) (*agentkeys.Grant, error) {
	g := &agentkeys.Grant{ProxyToken: agentkeys.NewProxyToken(), AgentID: agentID, CredentialID: credentialID, CreatedAt: w.s.stamp()}
	if err := agentkeys.CheckGrantExpiry(expiresAt, g.CreatedAt); err != nil {
		return nil, err
	}
	var expires sql.NullInt64
	if !expiresAt.IsZero() {
		t := expiresAt.UTC().Truncate(time.Microsecond)
		g.ExpiresAt, expires = &t, sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
	}
	replaced := false
	err := w.write(ctx, func(tx *sql.Tx) error {
		if err := w.agentExists(ctx, tx, agentID); err != nil {
			return err
		}
		if _, err := w.credentialByID(ctx, tx, credentialID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM grants WHERE workspace_id = $1 AND agent_id = $2 AND credential_id = $3)`,
			w.id, agentID, credentialID).Scan(&replaced)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO grants (workspace_id, agent_id, credential_id, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (agent_id, credential_id) DO UPDATE SET
				token_hash = excluded.token_hash, created_at = excluded.created_at, last_used_at = NULL, expires_at = excluded.expires_at`,
			w.id, agentID, credentialID, w.s.hashToken(g.ProxyToken), g.CreatedAt.UnixMicro(), expires)
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("assign credential", err)
	}
	if replaced {
		settle() // the old token must fail everywhere from now on
	}
	return g, nil
}

// RevokeCredential implements agentkeys.AgentService: the grant goes and
// its token fails on the next request, on every replica. Returns ENOTFOUND
// when the agent, the credential or the assignment does not exist.
func (w *Workspace) RevokeCredential(ctx context.Context, agentID, credentialID string) error {
	err := w.change(ctx, func(tx *sql.Tx) error {
		if err := w.agentExists(ctx, tx, agentID); err != nil {
			return err
		}
		c, err := w.credentialByID(ctx, tx, credentialID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE workspace_id = $1 AND agent_id = $2 AND credential_id = $3`,
			w.id, agentID, credentialID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "credential %q is not assigned to agent %s", c.Name, agentID)
		}
		return nil
	})
	return w.s.storeErr("revoke credential", err)
}
