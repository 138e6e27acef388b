package localvault

import (
	"context"
	"database/sql"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// ListAgents implements agentkeys.AgentService: every agent with its
// assigned credentials, agents ordered by name, credentials by name.
func (v *Vault) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	return dialect.ListAgents(ctx, v.db, v.wsID, "")
}

// FindAgent implements agentkeys.AgentService: by id, else by name
// case-insensitively. Returns ENOTFOUND otherwise.
func (v *Vault) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	return dialect.FindAgent(ctx, v.db, v.wsID, ref)
}

// CreateAgent implements agentkeys.AgentService. Returns EINVALID for a bad
// name and ECONFLICT when the name is taken (case-insensitively).
func (v *Vault) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	name, err := storesql.CheckAgentName(name)
	if err != nil {
		return nil, err
	}
	var a *agentkeys.Agent
	err = v.write(ctx, func(tx *sql.Tx) (err error) {
		a, err = dialect.InsertAgent(ctx, tx, v.wsID, name, v.stamp())
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
		if err := v.keepRevoked(ctx, tx, `g.agent_id = $3`, id); err != nil {
			return err
		}
		return dialect.DeleteAgent(ctx, tx, v.wsID, id)
	})
	return storeErr("delete agent", err)
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
		if err := v.keepRevoked(ctx, tx, `g.agent_id = $3 AND g.credential_id = $4`, agentID, credentialID); err != nil {
			return err
		}
		_, err := dialect.AssignCredential(ctx, tx, v.wsID, agentID, credentialID, agentkeys.HashToken(g.ProxyToken), g.CreatedAt, expires)
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
		if err := v.keepRevoked(ctx, tx, `g.agent_id = $3 AND g.credential_id = $4`, agentID, credentialID); err != nil {
			return err
		}
		return dialect.RevokeCredential(ctx, tx, v.wsID, agentID, credentialID)
	})
	return storeErr("revoke credential", err)
}

// RevokedTokenRetention is how long the vault remembers whom a revoked
// token was issued to (revoked_tokens): for that long, the audit row of a
// request that still presents it names the agent and credential; after it,
// the row says only that the token is unknown. Without a limit the table
// would grow by a row for every token of every `agentkeys run`.
const RevokedTokenRetention = 30 * 24 * time.Hour

// keepRevoked records, within tx, who the tokens of the grants matching
// cond (over grants g; its arguments start at $3) were issued to, before
// those grants go: Authorize then names the agent and credential of a
// revoked token for the audit row (agentkeys.RevokedToken). Records older
// than RevokedTokenRetention go at the same time.
func (v *Vault) keepRevoked(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	now := v.stamp()
	if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE revoked_at < $1`, now.Add(-RevokedTokenRetention).UnixMicro()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO revoked_tokens
		(token_hash, agent_id, agent_name, credential_id, credential_name, revoked_at)
		SELECT g.token_hash, a.id, a.name, c.id, c.name, $2
		FROM grants g JOIN agents a ON a.id = g.agent_id JOIN credentials c ON c.id = g.credential_id
		WHERE a.workspace_id = $1 AND `+cond, append([]any{v.wsID, now.UnixMicro()}, args...)...)
	return err
}
