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

// SignupTTL is how long a sign-up's confirmation link works.
const SignupTTL = 24 * time.Hour

// PendingSignup is a sign-up waiting for its email to be confirmed. Exists
// is true (and nothing is stored) when the email already has an account:
// the caller then emails a note instead of a link, and answers the same way
// either way.
type PendingSignup struct {
	Email     string
	Exists    bool
	Token     string // the confirmation token, to email; only its HMAC is stored
	ExpiresAt time.Time
}

// StartSignup checks a sign-up like CreateWorkspace does (EINVALID for a
// bad email, password or name) and, for a new email, stores it pending
// with a single-use confirmation token. The password is hashed either way,
// so the time taken does not tell whether the email has an account.
func (s *Store) StartSignup(ctx context.Context, in NewWorkspace) (*PendingSignup, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if err := auth.CheckPasswordPolicy(in.Password); err != nil {
		return nil, err
	}
	name, err := agentkeys.ValidateName("workspace", in.Name)
	if err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	out := &PendingSignup{Email: email}
	id, _, err := userByEmail(ctx, s.db, email)
	if err != nil {
		return nil, s.storeErr("sign up", err)
	}
	if id != "" {
		out.Exists = true
		return out, nil
	}
	now := s.stamp()
	out.Token, out.ExpiresAt = "su_"+agentkeys.NewProxyToken()[len(agentkeys.ProxyTokenPrefix):], now.Add(SignupTTL)
	_, err = s.db.ExecContext(ctx, `INSERT INTO pending_signups (token_hash, email, password_hash, workspace_name, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.hashToken(out.Token), email, hash, name, now.UnixMicro(), out.ExpiresAt.UnixMicro())
	if err != nil {
		return nil, s.storeErr("sign up", err)
	}
	return out, nil
}

// ConfirmSignup turns a pending sign-up into a user, its workspace and a
// first API key (shown once). The token works once. Returns EUNAUTHORIZED
// for an unknown or used token, EINVALID for an expired one, ECONFLICT when
// the email got an account meanwhile.
func (s *Store) ConfirmSignup(ctx context.Context, token string) (*CreatedWorkspace, error) {
	var out *CreatedWorkspace
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var email, hash, name string
		var exp int64
		err := tx.QueryRowContext(ctx, `DELETE FROM pending_signups WHERE token_hash = $1 RETURNING email, password_hash, workspace_name, expires_at`,
			s.hashToken(token)).Scan(&email, &hash, &name, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this sign-up link is not valid: it was used already, or never existed; sign up again")
		}
		if err != nil {
			return err
		}
		if !s.now().Before(storesql.FromMicros(exp)) {
			return agentkeys.Errorf(agentkeys.EINVALID, "this sign-up link expired: sign up again")
		}
		userID := agentkeys.NewID("user")
		_, err = tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
			userID, email, hash, s.stamp().UnixMicro())
		if s.dialect.IsUnique(err) {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "%s has an account already: log in (agentkeys login --email %s)", email, email)
		}
		if err != nil {
			return err
		}
		out = &CreatedWorkspace{ID: agentkeys.NewID("ws"), Name: name, Email: email}
		out.APIKey, err = s.createWorkspaceTx(ctx, tx, out.ID, name, userID)
		return err
	})
	if err != nil {
		// An expired token is deleted all the same: the refusal is final.
		if agentkeys.ErrorCode(err) == agentkeys.EINVALID {
			_, _ = s.db.ExecContext(ctx, `DELETE FROM pending_signups WHERE token_hash = $1`, s.hashToken(token))
		}
		return nil, s.storeErr("confirm sign-up", err)
	}
	s.log.InfoContext(ctx, "workspace created", "workspace", out.ID)
	return out, nil
}
