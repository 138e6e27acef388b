package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// createWorkspaceTx writes a new workspace with its data key, makes userID
// its owner and gives them a first API key, which it returns.
func (s *Store) createWorkspaceTx(ctx context.Context, tx *sql.Tx, wsID, name, userID string) (string, error) {
	dataKey, err := agentkeys.NewKey()
	if err != nil {
		return "", err
	}
	wrapped, err := agentkeys.WrapKey(s.root, dataKey, agentkeys.DataKeyAAD(wsID, 1))
	clear(dataKey[:])
	if err != nil {
		return "", err
	}
	now := s.stamp().UnixMicro()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO workspaces (id, name, plan, revision, audit_seq, created_at) VALUES ($1, $2, $3, 0, 0, $4)`,
			[]any{wsID, name, s.plan, now}}, // Config.DefaultPlan (Free with --billing stripe)
		{`INSERT INTO members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
			[]any{wsID, userID, RoleOwner, now}},
		{`INSERT INTO data_keys (workspace_id, version, wrapped, created_at) VALUES ($1, 1, $2, $3)`,
			[]any{wsID, wrapped, now}},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return "", err
		}
	}
	_, key, err := s.insertKey(ctx, tx, wsID, userID, "default")
	return key, err
}

// CreateWorkspaceFor creates another workspace for the actor's user, who
// becomes its owner, and returns it with an API key for that membership
// (shown once). Returns EINVALID for a bad name.
func (s *Store) CreateWorkspaceFor(ctx context.Context, a *agentkeys.Actor, name string) (*CreatedWorkspace, error) {
	name, err := agentkeys.ValidateName("workspace", name)
	if err != nil {
		return nil, err
	}
	out := &CreatedWorkspace{ID: agentkeys.NewID("ws"), Name: name, Email: a.Email}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		out.APIKey, err = s.createWorkspaceTx(ctx, tx, out.ID, name, a.UserID)
		return err
	})
	if err != nil {
		return nil, s.storeErr("create workspace", err)
	}
	s.log.InfoContext(ctx, "workspace created", "workspace", out.ID)
	return out, nil
}

// WorkspaceInfo is a workspace's own record.
type WorkspaceInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"createdAt"`
}

// WorkspaceInfo returns the record of workspace wsID. Returns ENOTFOUND.
func (s *Store) WorkspaceInfo(ctx context.Context, wsID string) (*WorkspaceInfo, error) {
	w := WorkspaceInfo{ID: wsID}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT name, plan, created_at FROM workspaces WHERE id = $1`, wsID).Scan(&w.Name, &w.Plan, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no workspace %s", wsID)
	}
	if err != nil {
		return nil, s.storeErr("read workspace", err)
	}
	w.CreatedAt = storesql.FromMicros(created)
	return &w, nil
}

// RenameWorkspace renames the actor's workspace. Returns EINVALID for a bad
// name.
func (s *Store) RenameWorkspace(ctx context.Context, a *agentkeys.Actor, name string) (*WorkspaceInfo, error) {
	name, err := agentkeys.ValidateName("workspace", name)
	if err != nil {
		return nil, err
	}
	err = s.Workspace(a.WorkspaceID).write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE workspaces SET name = $1 WHERE id = $2`, name, a.WorkspaceID); err != nil {
			return err
		}
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionWorkspaceRenamed, name)
	})
	if err != nil {
		return nil, s.storeErr("rename workspace", err)
	}
	return s.WorkspaceInfo(ctx, a.WorkspaceID)
}

// DeleteWorkspace deletes the actor's workspace and everything of it,
// credentials first: its keys and proxy tokens stop working at once on
// every replica. confirm must be the workspace's name (EINVALID otherwise,
// and nothing is deleted).
func (s *Store) DeleteWorkspace(ctx context.Context, a *agentkeys.Actor, confirm string) error {
	err := s.Workspace(a.WorkspaceID).change(ctx, func(tx *sql.Tx) error {
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM workspaces WHERE id = $1`, a.WorkspaceID).Scan(&name); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return agentkeys.Errorf(agentkeys.ENOTFOUND, "no workspace %s", a.WorkspaceID)
			}
			return err
		}
		if confirm != name {
			return agentkeys.Errorf(agentkeys.EINVALID, "confirm must be the workspace's name exactly (%q): nothing was deleted", name)
		}
		for _, q := range []string{
			`DELETE FROM grants WHERE workspace_id = $1`,
			`DELETE FROM credentials WHERE workspace_id = $1`,
			`DELETE FROM agents WHERE workspace_id = $1`,
			`DELETE FROM workspace_keys WHERE workspace_id = $1`,
			`DELETE FROM invitations WHERE workspace_id = $1`,
			`DELETE FROM members WHERE workspace_id = $1`,
			`DELETE FROM data_keys WHERE workspace_id = $1`,
			`DELETE FROM usage WHERE workspace_id = $1`,
			`DELETE FROM audit_events WHERE workspace_id = $1`,
			`DELETE FROM admin_events WHERE workspace_id = $1`,
			`DELETE FROM workspaces WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, a.WorkspaceID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.storeErr("delete workspace", err)
	}
	s.log.InfoContext(ctx, "workspace deleted", "workspace", a.WorkspaceID, "by", a.UserID)
	return nil
}
