package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
	"github.com/agentkeys/agentkeys/server/auth"
)

// InvitationTTL is how long an invitation can be accepted after it was
// (re)sent.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation is a pending invitation to join a workspace. Its token (256
// random bits) is returned only when it is created or re-sent; only its
// HMAC is stored, and it works once.
type Invitation struct {
	ID        string         `json:"id"`
	Email     string         `json:"email"`
	Role      agentkeys.Role `json:"role"`
	InvitedBy string         `json:"invitedBy"` // user id
	CreatedAt time.Time      `json:"createdAt"`
	SentAt    time.Time      `json:"sentAt"`
	ExpiresAt time.Time      `json:"expiresAt"`
	Token     string         `json:"-"`
}

// invitationTokenPrefix marks invitation tokens.
const invitationTokenPrefix = "inv_"

func newInvitationToken() string {
	return invitationTokenPrefix + agentkeys.NewProxyToken()[len(agentkeys.ProxyTokenPrefix):]
}

const invitationCols = `id, email, role, invited_by, created_at, sent_at, expires_at`

func scanInvitation(sc storesql.RowScanner) (*Invitation, error) {
	var inv Invitation
	var c, sent, exp int64
	if err := sc.Scan(&inv.ID, &inv.Email, &inv.Role, &inv.InvitedBy, &c, &sent, &exp); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.SentAt, inv.ExpiresAt = storesql.FromMicros(c), storesql.FromMicros(sent), storesql.FromMicros(exp)
	return &inv, nil
}

// CreateInvitation invites email to the actor's workspace with role, and
// returns the invitation with its token. Returns EINVALID for a bad email
// or role, EFORBIDDEN when a non-owner invites an owner, ECONFLICT when the
// email is already a member or already invited (re-send that one instead).
func (s *Store) CreateInvitation(ctx context.Context, a *agentkeys.Actor, email string, role agentkeys.Role) (*Invitation, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if role, err = agentkeys.ParseRole(string(role)); err != nil {
		return nil, err
	}
	if role == agentkeys.RoleOwner && a.Role != agentkeys.RoleOwner {
		return nil, agentkeys.Errorf(agentkeys.EFORBIDDEN, "only an owner may invite an owner")
	}
	now := s.stamp()
	inv := &Invitation{ID: agentkeys.NewID("inv"), Email: email, Role: role, InvitedBy: a.UserID,
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(InvitationTTL), Token: newInvitationToken()}
	err = s.Workspace(a.WorkspaceID).write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM members m JOIN users u ON u.id = m.user_id
			WHERE m.workspace_id = $1 AND u.email = $2`, a.WorkspaceID, email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "%s is already a member of this workspace", email)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO invitations (id, workspace_id, email, role, token_hash, invited_by, created_at, sent_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, inv.ID, a.WorkspaceID, email, string(role), s.hashToken(inv.Token), a.UserID,
			now.UnixMicro(), now.UnixMicro(), inv.ExpiresAt.UnixMicro())
		if s.dialect.IsUnique(err) {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "%s is already invited: re-send that invitation (`agentkeys team resend %s`) or cancel it", email, email)
		}
		if err != nil {
			return err
		}
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionInvitationCreated, email+" "+string(role))
	})
	if err != nil {
		return nil, s.storeErr("invite", err)
	}
	return inv, nil
}

// ListInvitations lists the actor's workspace's pending invitations (the
// expired ones too, with their ExpiresAt), newest first.
func (s *Store) ListInvitations(ctx context.Context, wsID string) ([]*Invitation, error) {
	return queryAll(ctx, s, s.db, "list invitations", scanInvitation,
		`SELECT `+invitationCols+` FROM invitations WHERE workspace_id = $1 ORDER BY created_at DESC, id`, wsID)
}

func (s *Store) invitation(ctx context.Context, q querier, wsID, id string) (*Invitation, error) {
	inv, err := scanInvitation(q.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM invitations WHERE workspace_id = $1 AND id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no pending invitation %q in this workspace: see `agentkeys team list`", id)
	}
	if err != nil {
		return nil, s.storeErr("read invitation", err)
	}
	return inv, nil
}

// ResendInvitation gives an invitation a new token and a new expiry
// (InvitationTTL from now): the old link stops working. Returns ENOTFOUND.
func (s *Store) ResendInvitation(ctx context.Context, a *agentkeys.Actor, id string) (*Invitation, error) {
	var out *Invitation
	err := s.Workspace(a.WorkspaceID).write(ctx, func(tx *sql.Tx) error {
		inv, err := s.invitation(ctx, tx, a.WorkspaceID, id)
		if err != nil {
			return err
		}
		if inv.Role == agentkeys.RoleOwner && a.Role != agentkeys.RoleOwner {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "only an owner may invite an owner")
		}
		now := s.stamp()
		inv.SentAt, inv.ExpiresAt, inv.Token = now, now.Add(InvitationTTL), newInvitationToken()
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET token_hash = $1, sent_at = $2, expires_at = $3 WHERE workspace_id = $4 AND id = $5`,
			s.hashToken(inv.Token), now.UnixMicro(), inv.ExpiresAt.UnixMicro(), a.WorkspaceID, id); err != nil {
			return err
		}
		out = inv
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionInvitationResent, inv.Email)
	})
	if err != nil {
		return nil, s.storeErr("resend invitation", err)
	}
	return out, nil
}

// CancelInvitation deletes a pending invitation: its link stops working.
// Returns ENOTFOUND.
func (s *Store) CancelInvitation(ctx context.Context, a *agentkeys.Actor, id string) error {
	err := s.Workspace(a.WorkspaceID).write(ctx, func(tx *sql.Tx) error {
		inv, err := s.invitation(ctx, tx, a.WorkspaceID, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM invitations WHERE workspace_id = $1 AND id = $2`, a.WorkspaceID, id); err != nil {
			return err
		}
		return s.recordAdmin(ctx, tx, a.WorkspaceID, a, ActionInvitationCancelled, inv.Email)
	})
	return s.storeErr("cancel invitation", err)
}

// Accepted is what accepting an invitation gives: the workspace joined, the
// role, and an API key for the new membership (shown once).
type Accepted struct {
	Workspace UserWorkspace `json:"workspace"`
	UserID    string        `json:"userId"`
	Email     string        `json:"email"`
	APIKey    string        `json:"apiKey"`
}

// AcceptInvitation joins the invited email to the workspace. A new email
// becomes a user with password (which must meet the policy); an existing
// user must give their password. The token then stops working. Returns
// EUNAUTHORIZED for an unknown, used or cancelled token and for a wrong
// password, EINVALID for an expired one (ask for it to be re-sent) or a
// weak password; nothing is written then.
func (s *Store) AcceptInvitation(ctx context.Context, token, password string) (*Accepted, error) {
	var wsID, email, role, invitedBy, invID string
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT id, workspace_id, email, role, invited_by, expires_at FROM invitations WHERE token_hash = $1`,
		s.hashToken(token)).Scan(&invID, &wsID, &email, &role, &invitedBy, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this invitation is not valid: it was used, cancelled or replaced by a newer one; ask for a new invitation")
	}
	if err != nil {
		return nil, s.storeErr("accept invitation", err)
	}
	if !s.now().Before(storesql.FromMicros(exp)) {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "this invitation expired on %s: ask the workspace's owner or an admin to re-send it", storesql.FromMicros(exp).Format("2006-01-02 15:04 UTC"))
	}
	userID, hash, err := userByEmail(ctx, s.db, email)
	if err != nil {
		return nil, s.storeErr("accept invitation", err)
	}
	newHash := ""
	if userID == "" {
		if err := auth.CheckPasswordPolicy(password); err != nil {
			return nil, err
		}
		if newHash, err = auth.HashPassword(password); err != nil {
			return nil, err
		}
	} else if !auth.VerifyPassword(hash, password) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "%s already has an account: give its password to accept", email)
	}
	out := &Accepted{Email: email, Workspace: UserWorkspace{ID: wsID, Role: agentkeys.Role(role)}}
	err = s.Workspace(wsID).write(ctx, func(tx *sql.Tx) error {
		// The invitation is taken in the transaction: a second accept of the
		// same token finds nothing.
		res, err := tx.ExecContext(ctx, `DELETE FROM invitations WHERE id = $1 AND token_hash = $2`, invID, s.hashToken(token))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this invitation is not valid: it was used, cancelled or replaced by a newer one")
		}
		now := s.stamp().UnixMicro()
		if userID == "" {
			userID = agentkeys.NewID("user")
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
				userID, email, newHash, now); err != nil {
				if s.dialect.IsUnique(err) {
					return agentkeys.Errorf(agentkeys.ECONFLICT, "an account for %s was just created: accept again with its password", email)
				}
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
			wsID, userID, role, now); err != nil {
			if s.dialect.IsUnique(err) {
				return agentkeys.Errorf(agentkeys.ECONFLICT, "%s is already a member of this workspace", email)
			}
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT name FROM workspaces WHERE id = $1`, wsID).Scan(&out.Workspace.Name); err != nil {
			return err
		}
		if _, out.APIKey, err = s.insertKey(ctx, tx, wsID, userID, "default"); err != nil {
			return err
		}
		a := &agentkeys.Actor{Kind: agentkeys.ActorSession, UserID: userID, Email: email, WorkspaceID: wsID, Role: agentkeys.Role(role)}
		return s.recordAdmin(ctx, tx, wsID, a, ActionInvitationAccepted, email+" "+role)
	})
	if err != nil {
		return nil, s.storeErr("accept invitation", err)
	}
	out.UserID = userID
	return out, nil
}

// InvitationInfo is what the holder of an invitation token may read about
// it before accepting.
type InvitationInfo struct {
	Email     string         `json:"email"`
	Role      agentkeys.Role `json:"role"`
	Workspace string         `json:"workspace"` // its name
	ExpiresAt time.Time      `json:"expiresAt"`
	Expired   bool           `json:"expired"`
}

// LookupInvitation returns the invitation a token opens. Returns
// EUNAUTHORIZED for an unknown, used or cancelled token.
func (s *Store) LookupInvitation(ctx context.Context, token string) (*InvitationInfo, error) {
	var in InvitationInfo
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT i.email, i.role, w.name, i.expires_at FROM invitations i JOIN workspaces w ON w.id = i.workspace_id
		WHERE i.token_hash = $1`, s.hashToken(token)).Scan(&in.Email, &in.Role, &in.Workspace, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this invitation is not valid: it was used, cancelled or replaced by a newer one; ask for a new invitation")
	}
	if err != nil {
		return nil, s.storeErr("read invitation", err)
	}
	in.ExpiresAt = storesql.FromMicros(exp)
	in.Expired = !s.now().Before(in.ExpiresAt)
	return &in, nil
}
