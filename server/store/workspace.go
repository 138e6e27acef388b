package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/auth"
)

// RoleOwner is the role of the user who created a workspace.
const RoleOwner = string(agentkeys.RoleOwner)

// NewWorkspace is what creating a workspace takes.
type NewWorkspace struct {
	Email string
	// Password is required for sign-up (RequirePassword); the server host's
	// create-workspace command makes an owner without one.
	Password        string
	RequirePassword bool
	Name            string
}

// CreatedWorkspace is a new workspace and its ak_ws_ key, returned once
// (only its HMAC is stored).
type CreatedWorkspace struct {
	ID     string
	Name   string
	Email  string
	APIKey string
}

// Password length bounds for sign-up.
const (
	MinPasswordLen = auth.MinPasswordLen
	MaxPasswordLen = auth.MaxPasswordLen
)

// CreateWorkspace creates a workspace, its owner (a new user, or the
// existing user with that email when no password is required), its data key
// and its first workspace key. Returns EINVALID for a bad email, password or
// name and ECONFLICT when sign-up names an email that has an account;
// nothing is written then.
func (s *Store) CreateWorkspace(ctx context.Context, in NewWorkspace) (*CreatedWorkspace, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if in.RequirePassword || in.Password != "" {
		if err := auth.CheckPasswordPolicy(in.Password); err != nil {
			return nil, err
		}
	}
	name, err := agentkeys.ValidateName("workspace", in.Name)
	if err != nil {
		return nil, err
	}
	pwHash := ""
	if in.Password != "" {
		if pwHash, err = auth.HashPassword(in.Password); err != nil {
			return nil, err
		}
	}
	out := &CreatedWorkspace{ID: agentkeys.NewID("ws"), Name: name, Email: email}
	now := s.stamp().UnixMicro()
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var userID string
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = $1`, email).Scan(&userID)
		switch {
		case err == nil && in.RequirePassword:
			return agentkeys.Errorf(agentkeys.ECONFLICT, "an account with this email already exists")
		case errors.Is(err, sql.ErrNoRows):
			userID = agentkeys.NewID("user")
			_, err = tx.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
				userID, email, pwHash, now)
			if s.dialect.IsUnique(err) {
				return agentkeys.Errorf(agentkeys.ECONFLICT, "an account with this email already exists")
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		}
		out.APIKey, err = s.createWorkspaceTx(ctx, tx, out.ID, name, userID)
		return err
	})
	if err != nil {
		return nil, s.storeErr("create workspace", err)
	}
	s.log.InfoContext(ctx, "workspace created", "workspace", out.ID)
	return out, nil
}

// AuthenticateKey returns the id of the workspace whose ak_ws_ key this is.
// Returns EUNAUTHORIZED for anything else. See ActorForKey for the member
// and role.
func (s *Store) AuthenticateKey(ctx context.Context, key string) (string, error) {
	a, err := s.ActorForKey(ctx, key)
	if err != nil {
		return "", err
	}
	return a.WorkspaceID, nil
}

// Workspace is one workspace seen through the store: it implements
// agentkeys.Contents (every call scoped to the workspace; the hosted proxy is
// reached over HTTP, so it has no Proxy of its own) and
// agentkeys.ProxyBackend (tokens of this workspace only; RouteByName with the
// authority of whoever holds the view, i.e. the workspace key's holder).
type Workspace struct {
	s  *Store
	id string

	mu       sync.RWMutex
	location string
}

var (
	_ agentkeys.Contents     = (*Workspace)(nil)
	_ agentkeys.ProxyBackend = (*Workspace)(nil)
)

// Workspace returns the view of workspace id. It does not check that the
// workspace exists: calls on an unknown one find nothing (Status returns
// ENOTFOUND).
func (s *Store) Workspace(id string) *Workspace {
	return &Workspace{s: s, id: id, location: s.location}
}

// ID is the workspace's id.
func (w *Workspace) ID() string { return w.id }

// SetLocation sets what Status reports as Location (the server's URL).
func (w *Workspace) SetLocation(loc string) {
	w.mu.Lock()
	w.location = loc
	w.mu.Unlock()
}

// Status implements agentkeys.Contents: mode "remote", plan and limits (0:
// unlimited; the plan's with the operator's overrides), counts, and the
// requests forwarded in the current billing period (Stripe's, else the
// calendar month in UTC; the usage counter, counted when each request's
// audit row is imported from the journal — this process's journal is
// imported first). Returns ENOTFOUND for an unknown workspace.
func (w *Workspace) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	st, _, err := w.status(ctx)
	return st, err
}

// status is Status with the billing period it counted.
func (w *Workspace) status(ctx context.Context) (*agentkeys.WorkspaceStatus, Period, error) {
	w.s.flushAudit(ctx)
	w.mu.RLock()
	st := &agentkeys.WorkspaceStatus{ID: w.id, Mode: agentkeys.ModeRemote, Location: w.location}
	w.mu.RUnlock()
	var p planRow
	err := p.scan(w.s.db.QueryRowContext(ctx, `SELECT `+planCols+`, name,
		(SELECT COUNT(*) FROM credentials WHERE workspace_id = $1),
		(SELECT COUNT(*) FROM agents WHERE workspace_id = $1)
		FROM workspaces WHERE id = $1`, w.id), &st.Name, &st.Usage.Credentials, &st.Usage.Agents)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Period{}, agentkeys.Errorf(agentkeys.ENOTFOUND, "no workspace %s", w.id)
	}
	if err != nil {
		return nil, Period{}, w.s.storeErr("status", err)
	}
	period := periodAt(w.s.now(), p.periodStart, p.periodEnd)
	err = w.s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(requests), 0) FROM usage WHERE workspace_id = $1 AND month = $2`,
		w.id, period.Key).Scan(&st.Usage.RequestsThisMonth)
	if err != nil {
		return nil, Period{}, w.s.storeErr("status", err)
	}
	st.Plan, st.Limits, st.BillingStatus = p.plan, p.limits(), p.billingStatus
	return st, period, nil
}

// write runs fn in a transaction that also bumps the workspace's revision,
// so every replica's route cache (this one's included) notices the change
// within trustWindow. Changes that must be seen by the very next request
// use change (freshness.go).
func (w *Workspace) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	err := w.s.withTx(ctx, func(tx *sql.Tx) error {
		// The workspace row is locked first, as the audit writer does, so the
		// two never wait on each other in opposite orders (PostgreSQL).
		if _, err := tx.ExecContext(ctx, `UPDATE workspaces SET revision = revision + 1 WHERE id = $1`, w.id); err != nil {
			return err
		}
		return fn(tx)
	})
	return err
}
