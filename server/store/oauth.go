package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
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
		// The event credential.error, for the webhooks to deliver, and a
		// log line (never a token).
		Broken: func(ctx context.Context, c *agentkeys.Credential) {
			s.log.WarnContext(ctx, "credential.error", "workspace", w.id, "credential", c.ID, "name", c.Name,
				"reason", "the provider refused the refresh token (invalid_grant): reconnect needed")
			if _, err := s.RaiseOAuthRefreshRefused(context.WithoutCancel(ctx), w.id, c); err != nil {
				s.log.WarnContext(ctx, "webhooks: credential.error not raised", "credential", c.ID, "error", agentkeys.ErrorMessage(err))
			}
		},
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

// OAuthStateTTL is how long a connection started on the server may take.
const OAuthStateTTL = 10 * time.Minute

// StartOAuth begins connecting the workspace's credential name to provider
// (authorization code + PKCE; the browser comes back to redirectURI). The
// state is bound to the workspace, single use, valid for OAuthStateTTL.
// Returns the authorization URL; EINVALID for a bad name or provider,
// ECONFLICT when name is taken by a credential that is not OAUTH, ENOTFOUND
// (saying how to add one) when the provider has no app.
func (w *Workspace) StartOAuth(ctx context.Context, provider, name string, scopes []string, redirectURI string) (string, error) {
	provider = strings.ToLower(strings.TrimSpace(provider))
	if provider != agentkeys.CustomOAuthProvider {
		if _, err := agentkeys.LookupOAuthProvider(provider); err != nil {
			return "", err
		}
	}
	name, err := agentkeys.ValidateName("credential", name)
	if err != nil {
		return "", err
	}
	if c, err := w.FindCredential(ctx, name); err == nil && c.Type != agentkeys.OAuth {
		return "", agentkeys.Errorf(agentkeys.ECONFLICT, "a %s credential named %q already exists: choose another name", c.Type, name)
	}
	app, err := w.OAuthApp(ctx, provider)
	if err != nil {
		return "", err
	}
	if len(scopes) == 0 {
		scopes = app.Scopes
	}
	authURL, state, verifier := oauthflow.Start(app, scopes, redirectURI)
	sc, _ := json.Marshal(scopes)
	now := w.s.now()
	_, err = w.s.db.ExecContext(ctx, `INSERT INTO oauth_states (state_hash, workspace_id, provider, name, scopes, verifier, redirect_uri, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, agentkeys.HashToken(state), w.id, provider, name, string(sc), verifier, redirectURI,
		now.Add(OAuthStateTTL).UnixMicro())
	if err != nil {
		return "", w.s.storeErr("start OAuth", err)
	}
	_, _ = w.s.db.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at < $1`, now.UnixMicro())
	return authURL, nil
}

// FinishOAuth completes a connection begun by StartOAuth: it takes the
// state (once), exchanges the code and stores the credential in the
// state's workspace (an OAUTH credential of that name is reconnected).
// Returns EUNAUTHORIZED for an unknown, used or expired state.
func (s *Store) FinishOAuth(ctx context.Context, state, code string) (*agentkeys.Credential, error) {
	var wsID, provider, name, scopes, verifier, redirect string
	var expires int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT workspace_id, provider, name, scopes, verifier, redirect_uri, expires_at
			FROM oauth_states WHERE state_hash = $1`, agentkeys.HashToken(state)).Scan(&wsID, &provider, &name, &scopes, &verifier, &redirect, &expires)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE state_hash = $1`, agentkeys.HashToken(state))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || err == nil && s.now().UnixMicro() > expires {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this authorization is unknown, already used or older than %s: start the connection again", OAuthStateTTL)
	}
	if err != nil {
		return nil, s.storeErr("finish OAuth", err)
	}
	var sc []string
	_ = json.Unmarshal([]byte(scopes), &sc)
	w := s.Workspace(wsID)
	app, err := w.OAuthApp(ctx, provider)
	if err != nil {
		return nil, err
	}
	tok, err := oauthflow.Exchange(ctx, app, sc, redirect, code, verifier)
	if err != nil {
		return nil, err
	}
	sec := oauthflow.Secret(tok, provider, sc, "")
	if c, err := w.FindCredential(ctx, name); err == nil {
		if c.Type != agentkeys.OAuth {
			return nil, agentkeys.Errorf(agentkeys.ECONFLICT, "a %s credential named %q was created meanwhile: start again with another name", c.Type, name)
		}
		return w.UpdateCredential(ctx, c.ID, &agentkeys.CredentialUpdate{Secret: sec})
	}
	return w.CreateCredential(ctx, &agentkeys.CredentialInput{Name: name, Type: agentkeys.OAuth, AllowedHosts: app.AllowedHosts, Secret: *sec})
}
