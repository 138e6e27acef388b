package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

var (
	_ agentkeys.OAuthApps      = (*Workspace)(nil)
	_ agentkeys.TokenRefresher = (*Store)(nil)
)

func (w *Workspace) open(ctx context.Context, version int) (*agentkeys.Sealer, error) {
	return w.s.sealer(ctx, w.s.db, w.id, version)
}

// SaveOAuthApp implements agentkeys.OAuthApps for the workspace: the
// client secret is sealed under its newest data key.
func (w *Workspace) SaveOAuthApp(ctx context.Context, app *agentkeys.OAuthApp) error {
	if err := app.Resolve(); err != nil {
		return err
	}
	err := w.write(ctx, func(tx *sql.Tx) error {
		return w.s.dialect.SaveOAuthApp(ctx, tx, w.id, app, w.s.stamp(), w.sealing)
	})
	return w.s.storeErr("save OAuth app", err)
}

// OAuthApp implements agentkeys.OAuthApps: the operator's app for the
// provider (serve --oauth-config) when there is one, else the workspace's.
func (w *Workspace) OAuthApp(ctx context.Context, provider string) (*agentkeys.OAuthApp, error) {
	provider = strings.ToLower(strings.TrimSpace(provider))
	if a := w.s.operatorApp(provider); a != nil {
		return a, nil
	}
	return w.s.dialect.OAuthApp(ctx, w.s.db, w.id, provider, w.open)
}

// ListOAuthApps implements agentkeys.OAuthApps: the workspace's apps,
// without secrets.
func (w *Workspace) ListOAuthApps(ctx context.Context) ([]*agentkeys.OAuthApp, error) {
	return w.s.dialect.ListOAuthApps(ctx, w.s.db, w.id)
}

// DeleteOAuthApp implements agentkeys.OAuthApps. Returns ENOTFOUND.
func (w *Workspace) DeleteOAuthApp(ctx context.Context, provider string) error {
	return w.s.dialect.DeleteOAuthApp(ctx, w.s.db, w.id, strings.ToLower(strings.TrimSpace(provider)))
}

// SetOAuthApps sets the operator's OAuth apps (serve --oauth-config), one
// per provider, used by every workspace before its own. Each is resolved;
// returns EINVALID for a bad one and keeps the previous set then.
func (s *Store) SetOAuthApps(apps []*agentkeys.OAuthApp) error {
	m := map[string]*agentkeys.OAuthApp{}
	for _, a := range apps {
		if err := a.Resolve(); err != nil {
			return err
		}
		m[a.Provider] = a
	}
	s.oauthMu.Lock()
	s.oauthApps = m
	s.oauthMu.Unlock()
	return nil
}

func (s *Store) operatorApp(provider string) *agentkeys.OAuthApp {
	s.oauthMu.RLock()
	defer s.oauthMu.RUnlock()
	if a := s.oauthApps[provider]; a != nil {
		cp := *a
		return &cp
	}
	return nil
}

// RefreshSecret implements agentkeys.TokenRefresher for the hosted proxy:
// one refresh across every replica on the database (a lease on the row,
// storesql.Refresher); the new pair is stored with the workspace's
// revision bumped, so every replica's route cache notices it.
func (s *Store) RefreshSecret(ctx context.Context, r *agentkeys.Route, stale *agentkeys.Secret) (*agentkeys.Secret, error) {
	if r == nil || r.WorkspaceID == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no credential to refresh")
	}
	w := s.Workspace(r.WorkspaceID)
	rf := &storesql.Refresher{
		DB: s.db, Dialect: s.dialect.Dialect, WorkspaceID: w.id, Open: w.open, Seal: w.sealing, Now: s.now,
		Lease: s.refreshLease, App: w.OAuthApp,
		InTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE workspaces SET revision = revision + 1 WHERE id = $1`, w.id)
			return err
		},
	}
	return rf.RefreshSecret(ctx, r, stale)
}

// RefreshSecret implements agentkeys.TokenRefresher for a proxy built on
// the workspace view (Store.RefreshSecret).
func (w *Workspace) RefreshSecret(ctx context.Context, r *agentkeys.Route, stale *agentkeys.Secret) (*agentkeys.Secret, error) {
	return w.s.RefreshSecret(ctx, r, stale)
}
