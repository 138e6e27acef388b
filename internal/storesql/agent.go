package storesql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// AgentNotFound is the ENOTFOUND of an agent looked up by id or name.
func AgentNotFound(ref string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q: see `agentkeys agents list`", ref)
}

func agentIDNotFound(id string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id %q: see `agentkeys agents list`", id)
}

// CheckAgentName is the one path every writer of an agent takes: the name
// as it will be stored (agentkeys.ValidateName). Returns EINVALID.
func CheckAgentName(name string) (string, error) {
	return agentkeys.ValidateName("agent", name)
}

// ListAgents returns the workspace's agents, or only the one with id when
// id is not empty, each with its assigned credentials; agents ordered by
// name, credentials by name.
func (d Dialect) ListAgents(ctx context.Context, q Querier, wsID, id string) ([]*agentkeys.Agent, error) {
	// Ids are primary keys: a grant's agent and credential are those of
	// its workspace, so the joins need no workspace_id (the local schema's
	// grants have none).
	rows, err := q.QueryContext(ctx, `SELECT a.id, a.name, a.created_at, g.credential_id, c.name, g.created_at, g.last_used_at
		FROM agents a
		LEFT JOIN grants g ON g.agent_id = a.id
		LEFT JOIN credentials c ON c.id = g.credential_id
		WHERE a.workspace_id = $1 AND ($2 = '' OR a.id = $2)
		ORDER BY a.name_key, a.id, c.name_key, c.id`, wsID, id)
	if err != nil {
		return nil, d.Err("list agents", err)
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
			return nil, d.Err("list agents", err)
		}
		if cur == nil || cur.ID != aid {
			cur = &agentkeys.Agent{ID: aid, Name: aname, CreatedAt: FromMicros(acreated), Credentials: []agentkeys.AgentCredential{}}
			out = append(out, cur)
		}
		if cid.Valid {
			cur.Credentials = append(cur.Credentials, agentkeys.AgentCredential{
				CredentialID: cid.String, CredentialName: cname.String,
				AssignedAt: FromMicros(gcreated.Int64), LastUsedAt: NullTime(gused),
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, d.Err("list agents", err)
	}
	return out, nil
}

// FindAgent returns the workspace's agent with id ref, else the one named
// ref case-insensitively. Returns ENOTFOUND otherwise.
func (d Dialect) FindAgent(ctx context.Context, q Querier, wsID, ref string) (*agentkeys.Agent, error) {
	ref = strings.TrimSpace(ref)
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM agents WHERE workspace_id = $1 AND (id = $2 OR name_key = $3)
		ORDER BY id = $2 DESC LIMIT 1`, wsID, ref, NameKey(ref)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, AgentNotFound(ref)
	}
	if err != nil {
		return nil, d.Err("find agent", err)
	}
	as, err := d.ListAgents(ctx, q, wsID, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 { // deleted in between
		return nil, AgentNotFound(ref)
	}
	return as[0], nil
}

// InsertAgent stores a new agent named name (which passed CheckAgentName)
// in workspace wsID at now. Returns ECONFLICT when the name is taken
// (case-insensitively).
func (d Dialect) InsertAgent(ctx context.Context, q Querier, wsID, name string, now time.Time) (*agentkeys.Agent, error) {
	a := &agentkeys.Agent{ID: agentkeys.NewID("agent"), Name: name, CreatedAt: now, Credentials: []agentkeys.AgentCredential{}}
	_, err := q.ExecContext(ctx, `INSERT INTO agents (id, workspace_id, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.ID, wsID, a.Name, NameKey(a.Name), now.UnixMicro())
	if d.IsUnique(err) {
		return nil, agentkeys.Errorf(agentkeys.ECONFLICT, "an agent named %q already exists (names are unique, ignoring case): choose another name", a.Name)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DeleteAgent deletes the workspace's agent id and its grants. Returns
// ENOTFOUND for an unknown id.
func (d Dialect) DeleteAgent(ctx context.Context, q Querier, wsID, id string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM agents WHERE workspace_id = $1 AND id = $2`, wsID, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return agentIDNotFound(id)
	}
	return nil
}

func (d Dialect) agentExists(ctx context.Context, q Querier, wsID, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM agents WHERE workspace_id = $1 AND id = $2`, wsID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return agentIDNotFound(id)
	}
	return err
}

// AssignCredential stores the grant of credentialID to agentID (both of
// workspace wsID) with the token's hash, replacing an earlier grant of the
// pair (whose token stops working; replaced reports it). Returns ENOTFOUND
// for an unknown agent or credential id.
func (d Dialect) AssignCredential(ctx context.Context, tx *sql.Tx, wsID, agentID, credentialID, tokenHash string, now time.Time, expires sql.NullInt64) (replaced bool, err error) {
	if err := d.agentExists(ctx, tx, wsID, agentID); err != nil {
		return false, err
	}
	if _, err := d.CredentialByID(ctx, tx, wsID, credentialID); err != nil {
		return false, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM grants WHERE agent_id = $1 AND credential_id = $2)`,
		agentID, credentialID).Scan(&replaced); err != nil {
		return false, err
	}
	const upsert = ` ON CONFLICT (agent_id, credential_id) DO UPDATE SET
		token_hash = excluded.token_hash, created_at = excluded.created_at, last_used_at = NULL, expires_at = excluded.expires_at`
	if d.GrantsHaveWorkspace {
		_, err = tx.ExecContext(ctx, `INSERT INTO grants (workspace_id, agent_id, credential_id, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`+upsert, wsID, agentID, credentialID, tokenHash, now.UnixMicro(), expires)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO grants (agent_id, credential_id, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`+upsert, agentID, credentialID, tokenHash, now.UnixMicro(), expires)
	}
	return replaced, err
}

// RevokeCredential deletes the grant of credentialID to agentID. Returns
// ENOTFOUND when the agent, the credential or the assignment does not
// exist in workspace wsID.
func (d Dialect) RevokeCredential(ctx context.Context, tx *sql.Tx, wsID, agentID, credentialID string) error {
	if err := d.agentExists(ctx, tx, wsID, agentID); err != nil {
		return err
	}
	c, err := d.CredentialByID(ctx, tx, wsID, credentialID)
	if err != nil {
		return err
	}
	// Both ids were just found in wsID: the pair needs no further scope.
	res, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE agent_id = $1 AND credential_id = $2`, agentID, credentialID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "credential %q is not assigned to agent %s", c.Name, agentID)
	}
	return nil
}
