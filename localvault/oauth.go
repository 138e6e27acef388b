package localvault

import (
	"context"
	"database/sql"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

var (
	_ agentkeys.OAuthApps      = (*Vault)(nil)
	_ agentkeys.TokenRefresher = (*Vault)(nil)
)

func (v *Vault) openKey(ctx context.Context, version int) (*agentkeys.Sealer, error) {
	return v.keys.opener(ctx, v.db, version)
}

// SaveOAuthApp implements agentkeys.OAuthApps: the client secret is sealed
// under the current data key. Returns EINVALID and writes nothing for a bad
// app.
func (v *Vault) SaveOAuthApp(ctx context.Context, app *agentkeys.OAuthApp) error {
	if err := v.usable(); err != nil {
		return err
	}
	if err := app.Resolve(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		return dialect.SaveOAuthApp(ctx, tx, v.wsID, app, v.stamp(), v.sealing)
	})
	return storeErr("save OAuth app", err)
}

// OAuthApp implements agentkeys.OAuthApps.
func (v *Vault) OAuthApp(ctx context.Context, provider string) (*agentkeys.OAuthApp, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	return dialect.OAuthApp(ctx, v.db, v.wsID, strings.ToLower(strings.TrimSpace(provider)), v.openKey)
}

// ListOAuthApps implements agentkeys.OAuthApps: no client secret.
func (v *Vault) ListOAuthApps(ctx context.Context) ([]*agentkeys.OAuthApp, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	return dialect.ListOAuthApps(ctx, v.db, v.wsID)
}

// DeleteOAuthApp implements agentkeys.OAuthApps. Returns ENOTFOUND.
func (v *Vault) DeleteOAuthApp(ctx context.Context, provider string) error {
	if err := v.usable(); err != nil {
		return err
	}
	return dialect.DeleteOAuthApp(ctx, v.db, v.wsID, strings.ToLower(strings.TrimSpace(provider)))
}

// RefreshSecret implements agentkeys.TokenRefresher: one refresh at a time
// per credential across every process on this vault (a lease on the row),
// the new pair saved atomically (storesql.Refresher).
func (v *Vault) RefreshSecret(ctx context.Context, r *agentkeys.Route, stale *agentkeys.Secret) (*agentkeys.Secret, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	rf := &storesql.Refresher{
		DB: v.db, Dialect: dialect, WorkspaceID: v.wsID, Open: v.openKey, Seal: v.sealing, Now: v.now,
		Lease: v.refreshLease, Changed: v.cache.invalidate,
	}
	return rf.RefreshSecret(ctx, r, stale)
}
