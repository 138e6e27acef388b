package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"time"

	"github.com/agentkeys/agentkeys"
)

// SessionPolicy bounds how long a dashboard session lives: Idle after its
// last use, Absolute after it was made, whichever comes first.
type SessionPolicy struct {
	Idle, Absolute time.Duration
}

// CreateSession starts a dashboard session for member userID of wsID and
// returns its id, which only the browser keeps (the store keeps its HMAC).
// Returns EUNAUTHORIZED when the user is not a member of the workspace.
func (s *Store) CreateSession(ctx context.Context, userID, wsID string) (string, error) {
	id := "sess_" + rand.Text() + rand.Text() // 256 random bits
	now := s.stamp().UnixMicro()
	res, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, workspace_id, created_at, last_seen_at)
		SELECT $1, user_id, workspace_id, $2, $2 FROM members WHERE workspace_id = $3 AND user_id = $4`,
		s.hashToken(id), now, wsID, userID)
	if err != nil {
		return "", s.storeErr("create session", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "you are not a member of that workspace")
	}
	return id, nil
}

// SessionActor returns the actor of session id — its member with the role
// they have now — and marks it used. A session past its idle or absolute
// expiry is deleted. Returns EUNAUTHORIZED for an unknown, expired or
// revoked session, or one whose member has left the workspace.
func (s *Store) SessionActor(ctx context.Context, id string, p SessionPolicy) (*agentkeys.Actor, error) {
	if id == "" {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "not signed in")
	}
	h := s.hashToken(id)
	a := &agentkeys.Actor{Kind: agentkeys.ActorSession}
	var created, seen int64
	err := s.db.QueryRowContext(ctx, `SELECT s.workspace_id, s.user_id, u.email, m.role, s.created_at, s.last_seen_at
		FROM sessions s
		JOIN members m ON m.workspace_id = s.workspace_id AND m.user_id = s.user_id
		JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1`, h).Scan(&a.WorkspaceID, &a.UserID, &a.Email, &a.Role, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "your session has ended: log in again")
	}
	if err != nil {
		return nil, s.storeErr("read session", err)
	}
	now := s.stamp()
	if now.Sub(time.UnixMicro(seen)) >= p.Idle || now.Sub(time.UnixMicro(created)) >= p.Absolute {
		if err := s.DeleteSession(ctx, id); err != nil {
			return nil, err
		}
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "your session has expired: log in again")
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, now.UnixMicro(), h); err != nil {
		return nil, s.storeErr("touch session", err)
	}
	return a, nil
}

// DeleteSession ends session id (logging out). An unknown id is not an
// error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, s.hashToken(id))
	return s.storeErr("delete session", err)
}

// SwitchSession moves session id to workspace wsID, which its user must be
// a member of, and returns the session's new id: the old id stops working
// in the same transaction. The id rotates so that a form rendered for the
// old workspace (in another tab) fails its CSRF check instead of acting in
// the new one, and so that a changed role starts a fresh id. The absolute
// lifetime is kept (created_at carries over): switching never extends a
// session. Returns EUNAUTHORIZED for an unknown, expired or ended session,
// EFORBIDDEN when the user is not a member of wsID (the same answer whether
// or not it exists); nothing changes then.
func (s *Store) SwitchSession(ctx context.Context, id, wsID string, p SessionPolicy) (string, error) {
	if id == "" {
		return "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "not signed in")
	}
	next := "sess_" + rand.Text() + rand.Text()
	now := s.stamp()
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var userID string
		var created, seen int64
		err := tx.QueryRowContext(ctx, `SELECT s.user_id, s.created_at, s.last_seen_at FROM sessions s
			JOIN members m ON m.workspace_id = s.workspace_id AND m.user_id = s.user_id
			WHERE s.id_hash = $1`, s.hashToken(id)).Scan(&userID, &created, &seen)
		if errors.Is(err, sql.ErrNoRows) || err == nil && (now.Sub(time.UnixMicro(seen)) >= p.Idle || now.Sub(time.UnixMicro(created)) >= p.Absolute) {
			return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "your session has ended: log in again")
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, workspace_id, created_at, last_seen_at)
			SELECT $1, user_id, workspace_id, $2, $3 FROM members WHERE workspace_id = $4 AND user_id = $5`,
			s.hashToken(next), created, now.UnixMicro(), wsID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return agentkeys.Errorf(agentkeys.EFORBIDDEN, "you are not a member of that workspace: pick one from the workspace switcher")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, s.hashToken(id))
		return err
	})
	if err != nil {
		return "", s.storeErr("switch workspace", err)
	}
	return next, nil
}
