package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// ListAgents implements agentkeys.AgentService: every agent with its
// assigned credentials, agents ordered by name, credentials by name.
func (w *Workspace) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	return w.s.dialect.ListAgents(ctx, w.s.db, w.id, "")
}

// FindAgent implements agentkeys.AgentService: by id, else by name
// case-insensitively. Returns ENOTFOUND otherwise.
func (w *Workspace) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	return w.s.dialect.FindAgent(ctx, w.s.db, w.id, ref)
}

// CreateAgent implements agentkeys.AgentService. Returns EINVALID for a bad
// name, ECONFLICT when the name is taken (case-insensitively) and
// EPLANLIMIT when the workspace has as many agents as its plan allows
// (checked in the inserting transaction); nothing is written then.
func (w *Workspace) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	name, err := storesql.CheckAgentName(name)
	if err != nil {
		return nil, err
	}
	var a *agentkeys.Agent
	err = w.write(ctx, func(tx *sql.Tx) (err error) {
		if err := checkCreate(ctx, tx, w.id, agentkeys.LimitAgents); err != nil {
			return err
		}
		a, err = w.s.dialect.InsertAgent(ctx, tx, w.id, name, w.s.stamp())
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
		return w.s.dialect.DeleteAgent(ctx, tx, w.id, id)
	})
	return w.s.storeErr("delete agent", err)
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
	err := w.write(ctx, func(tx *sql.Tx) (err error) {
		replaced, err = w.s.dialect.AssignCredential(ctx, tx, w.id, agentID, credentialID, w.s.hashToken(g.ProxyToken), g.CreatedAt, expires)
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
		return w.s.dialect.RevokeCredential(ctx, tx, w.id, agentID, credentialID)
	})
	return w.s.storeErr("revoke credential", err)
}
