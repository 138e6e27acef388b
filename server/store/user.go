package store

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
	"github.com/agentkeys/agentkeys/server/auth"
)

// User is a person with an account on the server.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
}

// NormalizeEmail returns the address lowercased and trimmed. Returns
// EINVALID unless it is one plain address of at most 254 bytes.
func NormalizeEmail(s string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(s))
	if len(email) > 254 {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "email must be a plain address such as you@example.com")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "email must be a plain address such as you@example.com")
	}
	return email, nil
}

// errLogin is the one answer to a failed login, whichever part was wrong.
func errLogin() error {
	return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "wrong email or password")
}

// Login returns the user with this email and password. An unknown email
// costs the same password check as a known one (auth.VerifyPassword's dummy
// hash), and every failure is the same EUNAUTHORIZED "wrong email or
// password".
func (s *Store) Login(ctx context.Context, email, password string) (*User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		auth.VerifyPassword("", password)
		return nil, errLogin()
	}
	var u User
	var hash string
	var created int64
	err = s.db.QueryRowContext(ctx, `SELECT id, email, password_hash, created_at FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &hash, &created)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, s.storeErr("login", err)
	}
	if !auth.VerifyPassword(hash, password) { // hash is "" for an unknown email
		return nil, errLogin()
	}
	u.CreatedAt = storesql.FromMicros(created)
	return &u, nil
}

// userByEmail returns the user id and password hash for an email, or ""
// when there is none.
func userByEmail(ctx context.Context, q querier, email string) (id, hash string, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, password_hash FROM users WHERE email = $1`, email).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return id, hash, err
}

// UserWorkspace is one workspace a user belongs to, with their role there.
type UserWorkspace struct {
	ID   string         `json:"id"`
	Name string         `json:"name"`
	Role agentkeys.Role `json:"role"`
}

// UserWorkspaces lists the workspaces userID is a member of, by name.
func (s *Store) UserWorkspaces(ctx context.Context, userID string) ([]UserWorkspace, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT w.id, w.name, m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id
		WHERE m.user_id = $1 ORDER BY lower(w.name), w.id`, userID)
	if err != nil {
		return nil, s.storeErr("list workspaces", err)
	}
	defer rows.Close()
	out := []UserWorkspace{}
	for rows.Next() {
		var w UserWorkspace
		if err := rows.Scan(&w.ID, &w.Name, &w.Role); err != nil {
			return nil, s.storeErr("list workspaces", err)
		}
		out = append(out, w)
	}
	return out, s.storeErr("list workspaces", rows.Err())
}
