package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// Member is a user's membership of a workspace.
type Member struct {
	UserID   string         `json:"userId"`
	Email    string         `json:"email"`
	Role     agentkeys.Role `json:"role"`
	JoinedAt time.Time      `json:"joinedAt"`
}

const memberCols = `m.user_id, u.email, m.role, m.created_at`

func scanMember(sc storesql.RowScanner) (*Member, error) {
	var m Member
	var joined int64
	if err := sc.Scan(&m.UserID, &m.Email, &m.Role, &joined); err != nil {
		return nil, err
	}
	m.JoinedAt = storesql.FromMicros(joined)
	return &m, nil
}

// ListMembers lists the members of a workspace, by email.
func (s *Store) ListMembers(ctx context.Context, wsID string) ([]*Member, error) {
	return queryAll(ctx, s, s.db, "list members", scanMember, `SELECT `+memberCols+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.workspace_id = $1 ORDER BY u.email`, wsID)
}

func (s *Store) member(ctx context.Context, q querier, wsID, userID string) (*Member, error) {
	m, err := scanMember(q.QueryRowContext(ctx, `SELECT `+memberCols+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.workspace_id = $1 AND m.user_id = $2`, wsID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no member %q in this workspace: see `agentkeys team list`", userID)
	}
	if err != nil {
		return nil, s.storeErr("read member", err)
	}
	return m, nil
}

// owners counts a workspace's owners.
func owners(ctx context.Context, tx *sql.Tx, wsID string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM members WHERE workspace_id = $1 AND role = $2`, wsID, string(agentkeys.RoleOwner)).Scan(&n)
	return n, err
}

// SetRole changes the role of member userID of the actor's workspace. Only
// an owner may make someone an owner (transferring ownership) or change an
// owner's role; a workspace always keeps at least one owner. Takes effect on
// the member's keys' very next call. Returns EINVALID for an unknown role,
// ENOTFOUND for a non-member, EFORBIDDEN and ECONFLICT (the last owner) as
// said; nothing changes then.
func (s *Store) SetRole(ctx context.Context, a *agentkeys.Actor, userID string, role agentkeys.Role) (*Member, error) {
	role, err := agentkeys.ParseRole(string(role))
	if err != nil {
		return nil, err
	}
	var out *Member
	err = s.Workspace(a.WorkspaceID).change(ctx, func(tx *sql.Tx) error {
		m, err := s.member(ctx, tx, a.WorkspaceID, userID)
		if err != nil {
			return err
		}
		if a.Role != agentkeys.RoleOwner && (m.Role == agentkeys.RoleOwner || role == agentkeys.RoleOwner) {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "only an owner may change an owner's role or make someone an owner")
		}
		if m.Role == role {
			out = m
			return nil
		}
		if m.Role == agentkeys.RoleOwner {
			if n, err := owners(ctx, tx, a.WorkspaceID); err != nil {
				return err
			} else if n <= 1 {
				return agentkeys.Errorf(agentkeys.ECONFLICT, "%s is the workspace's only owner: make another member owner first", m.Email)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE workspace_id = $2 AND user_id = $3`, string(role), a.WorkspaceID, userID); err != nil {
			return err
		}
		m.Role, out = role, m
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionMemberRoleChanged, m.Email+" "+string(role))
	})
	if err != nil {
		return nil, s.storeErr("change role", err)
	}
	return out, nil
}

// RemoveMember takes member userID out of the actor's workspace and revokes
// their API keys and dashboard sessions there at once (every replica refuses them on their next
// call). A member may remove themself (leave); removing someone else needs
// the caller's route permission, and an admin cannot remove an owner. The
// last owner cannot leave or be removed (ECONFLICT). Returns ENOTFOUND for
// a non-member.
func (s *Store) RemoveMember(ctx context.Context, a *agentkeys.Actor, userID string) error {
	err := s.Workspace(a.WorkspaceID).change(ctx, func(tx *sql.Tx) error {
		m, err := s.member(ctx, tx, a.WorkspaceID, userID)
		if err != nil {
			return err
		}
		self := userID == a.UserID
		if !self && a.Role != agentkeys.RoleOwner && m.Role == agentkeys.RoleOwner {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "only an owner may remove an owner")
		}
		if m.Role == agentkeys.RoleOwner {
			if n, err := owners(ctx, tx, a.WorkspaceID); err != nil {
				return err
			} else if n <= 1 {
				return agentkeys.Errorf(agentkeys.ECONFLICT, "%s is the workspace's only owner: make another member owner first, or delete the workspace", m.Email)
			}
		}
		for _, q := range []string{
			`DELETE FROM workspace_keys WHERE workspace_id = $1 AND user_id = $2`,
			`DELETE FROM sessions WHERE workspace_id = $1 AND user_id = $2`,
			`DELETE FROM members WHERE workspace_id = $1 AND user_id = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, a.WorkspaceID, userID); err != nil {
				return err
			}
		}
		action := ActionMemberRemoved
		if self {
			action = ActionMemberLeft
		}
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, action, m.Email)
	})
	return s.storeErr("remove member", err)
}
