package storesql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
)

// OAuth apps and the refresh of OAUTH credentials, the same in both stores.
// An app's client secret is sealed like a credential value, bound to the
// workspace and to "oauthapp:" and the provider's name in place of a
// credential id. A refresh is serialised across processes and replicas by
// a lease on the credential's row (refresh_lease, Unix µs) taken with a
// compare-and-swap on its version; the new pair is written with another
// compare-and-swap, so a rotated refresh token is saved with its access
// token or not at all.

func oauthAppAAD(provider string) string { return "oauthapp:" + provider }

// SaveOAuthApp resolves app (agentkeys.OAuthApp.Resolve) and stores it in
// tx, replacing the provider's app. Returns EINVALID for a bad app.
func (d Dialect) SaveOAuthApp(ctx context.Context, tx *sql.Tx, wsID string, app *agentkeys.OAuthApp, now time.Time, seal SealFunc) error {
	if err := app.Resolve(); err != nil {
		return err
	}
	key, ver, err := seal(ctx, tx)
	if err != nil {
		return err
	}
	sealed, err := agentkeys.SealSecret(key, &agentkeys.Secret{Value: app.ClientSecret.Value}, wsID, oauthAppAAD(app.Provider), ver)
	if err != nil {
		return err
	}
	scopes, _ := json.Marshal(app.Scopes)
	hosts, _ := json.Marshal(app.AllowedHosts)
	if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_apps WHERE workspace_id = $1 AND provider = $2`, wsID, app.Provider); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO oauth_apps
		(workspace_id, provider, client_id, sealed, key_version, auth_url, token_url, device_url, scopes, allowed_hosts, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		wsID, app.Provider, app.ClientID, sealed, ver, app.AuthURL, app.TokenURL, app.DeviceURL, string(scopes), string(hosts), now.UnixMicro())
	return err
}

const oauthAppCols = `provider, client_id, sealed, key_version, auth_url, token_url, device_url, scopes, allowed_hosts`

func scanOAuthApp(r RowScanner) (*agentkeys.OAuthApp, []byte, int, error) {
	var a agentkeys.OAuthApp
	var sealed []byte
	var ver int
	var scopes, hosts string
	if err := r.Scan(&a.Provider, &a.ClientID, &sealed, &ver, &a.AuthURL, &a.TokenURL, &a.DeviceURL, &scopes, &hosts); err != nil {
		return nil, nil, 0, err
	}
	if err := json.Unmarshal([]byte(scopes), &a.Scopes); err != nil {
		return nil, nil, 0, err
	}
	var err error
	if a.AllowedHosts, err = DecodeHosts(hosts); err != nil {
		return nil, nil, 0, err
	}
	return &a, sealed, ver, nil
}

// OAuthApp returns the provider's app with its client secret opened.
// Returns agentkeys.MissingOAuthApp when there is none.
func (d Dialect) OAuthApp(ctx context.Context, q Querier, wsID, provider string, open OpenFunc) (*agentkeys.OAuthApp, error) {
	a, sealed, ver, err := scanOAuthApp(q.QueryRowContext(ctx, `SELECT `+oauthAppCols+` FROM oauth_apps WHERE workspace_id = $1 AND provider = $2`, wsID, provider))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.MissingOAuthApp(provider)
	}
	if err != nil {
		return nil, d.Err("read OAuth app", err)
	}
	sl, err := open(ctx, ver)
	if err != nil {
		return nil, err
	}
	s, err := sl.OpenSecret(sealed, wsID, oauthAppAAD(a.Provider), ver)
	if err != nil {
		return nil, err
	}
	a.ClientSecret = agentkeys.Secret{Value: s.Value}
	return a, nil
}

// ListOAuthApps returns the workspace's apps by provider, without secrets.
func (d Dialect) ListOAuthApps(ctx context.Context, q Querier, wsID string) ([]*agentkeys.OAuthApp, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+oauthAppCols+` FROM oauth_apps WHERE workspace_id = $1 ORDER BY provider`, wsID)
	if err != nil {
		return nil, d.Err("list OAuth apps", err)
	}
	defer rows.Close()
	out := []*agentkeys.OAuthApp{}
	for rows.Next() {
		a, _, _, err := scanOAuthApp(rows)
		if err != nil {
			return nil, d.Err("list OAuth apps", err)
		}
		out = append(out, a)
	}
	return out, d.Err("list OAuth apps", rows.Err())
}

// DeleteOAuthApp removes the provider's app. Returns ENOTFOUND.
func (d Dialect) DeleteOAuthApp(ctx context.Context, q Querier, wsID, provider string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM oauth_apps WHERE workspace_id = $1 AND provider = $2`, wsID, provider)
	if err != nil {
		return d.Err("delete OAuth app", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no OAuth app for %q: see `agentkeys oauth apps list`", provider)
	}
	return nil
}

// ResealOAuthApps re-seals every app's client secret of the workspace
// under a new data key (key rotation); opened gives the old keys.
func (d Dialect) ResealOAuthApps(ctx context.Context, tx *sql.Tx, wsID string, open func(version int) (agentkeys.Key, bool), key agentkeys.Key, ver int) error {
	_, err := Reseal(ctx, tx, wsID, open, key, ver, oauthAppAAD,
		`SELECT provider, sealed, key_version FROM oauth_apps WHERE workspace_id = $1`,
		`UPDATE oauth_apps SET sealed = $1, key_version = $2 WHERE workspace_id = $3 AND provider = $4`)
	return err
}

// Reseal re-seals, under key as data-key version ver, every sealed value
// the query sel lists for workspace wsID as (id, sealed, key_version): each
// is opened with its old key (open; an unknown version is an error) and
// additional data aad(id), and written back by upd with the arguments
// (sealed, ver, wsID, id). It returns how many it re-sealed. Used by key
// rotation for credentials and OAuth apps alike.
func Reseal(ctx context.Context, tx *sql.Tx, wsID string, open func(version int) (agentkeys.Key, bool), key agentkeys.Key, ver int,
	aad func(id string) string, sel, upd string) (int, error) {
	rows, err := tx.QueryContext(ctx, sel, wsID)
	if err != nil {
		return 0, err
	}
	type row struct {
		id     string
		sealed []byte
		ver    int
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.sealed, &r.ver); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range all {
		old, ok := open(r.ver)
		if !ok {
			return 0, fmt.Errorf("%s is sealed under an unknown data key %d", r.id, r.ver)
		}
		s, err := agentkeys.OpenSecret(old, r.sealed, wsID, aad(r.id), r.ver)
		if err != nil {
			return 0, err
		}
		sealed, err := agentkeys.SealSecret(key, s, wsID, aad(r.id), ver)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, upd, sealed, ver, wsID, r.id); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

// NeedsRefresh reports whether an OAUTH secret's access token expires
// within a minute of now (a token without expiry never needs it).
func NeedsRefresh(s *agentkeys.Secret, now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now.Add(time.Minute))
}

// Refresher refreshes the OAUTH credentials of one workspace in a store
// (agentkeys.TokenRefresher).
type Refresher struct {
	DB          *sql.DB
	Dialect     Dialect
	WorkspaceID string
	Open        OpenFunc
	Seal        SealFunc
	Now         func() time.Time
	// Client calls the token endpoint; nil: a client with a 10 s timeout.
	Client *http.Client
	// Lease is how long a refresh may hold the row before another process
	// may take over (a holder killed mid-refresh); default 20 s.
	Lease time.Duration
	// Changed runs after the row changed (the store drops its caches).
	Changed func()
	// InTx, when set, runs first in the transaction that stores the new
	// pair (the server bumps the workspace's revision there).
	InTx func(ctx context.Context, tx *sql.Tx) error
	// Broken, when set, is told when this refresh marked the credential
	// broken (the provider answered invalid_grant): the server raises
	// credential.error there.
	Broken func(ctx context.Context, cred *agentkeys.Credential)
	// App returns the app of a provider; nil: the workspace's oauth_apps.
	App func(ctx context.Context, provider string) (*agentkeys.OAuthApp, error)
}

type oauthRow struct {
	sealed  []byte
	keyVer  int
	version int64
	lease   sql.NullInt64
	status  string
}

func (rf *Refresher) load(ctx context.Context, id string) (*oauthRow, error) {
	var r oauthRow
	err := rf.DB.QueryRowContext(ctx, `SELECT sealed, key_version, version, refresh_lease, oauth_status FROM credentials
		WHERE workspace_id = $1 AND id = $2`, rf.WorkspaceID, id).Scan(&r.sealed, &r.keyVer, &r.version, &r.lease, &r.status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Unauthorized(CredentialDeleted)
	}
	if err != nil {
		return nil, rf.Dialect.Err("read credential", err)
	}
	return &r, nil
}

func (rf *Refresher) open(ctx context.Context, id string, r *oauthRow) (*agentkeys.Secret, error) {
	sl, err := rf.Open(ctx, r.keyVer)
	if err != nil {
		return nil, err
	}
	return sl.OpenSecret(r.sealed, rf.WorkspaceID, id, r.keyVer)
}

// RefreshSecret implements agentkeys.TokenRefresher.
func (rf *Refresher) RefreshSecret(ctx context.Context, route *agentkeys.Route, stale *agentkeys.Secret) (*agentkeys.Secret, error) {
	if route == nil || route.Credential == nil || stale == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no credential to refresh")
	}
	cred := route.Credential
	if cred.Type != agentkeys.OAuth {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "credential %q is %s, not OAUTH: only OAuth connections refresh", cred.Name, cred.Type)
	}
	lease := rf.Lease
	if lease <= 0 {
		lease = 20 * time.Second
	}
	giveUp := rf.Now().Add(lease + 10*time.Second)
	var (
		row *oauthRow
		cur *agentkeys.Secret
	)
	for {
		var err error
		if row, err = rf.load(ctx, cred.ID); err != nil {
			return nil, err
		}
		if cur, err = rf.open(ctx, cred.ID, row); err != nil {
			return nil, err
		}
		if row.status == agentkeys.OAuthError {
			return nil, agentkeys.ReconnectError(cred.Name, cur.OAuthApp)
		}
		if cur.Value != stale.Value || cur.RefreshToken != stale.RefreshToken || !cur.ExpiresAt.Equal(stale.ExpiresAt) {
			return cur, nil // refreshed (or reconnected) by someone else since the caller read it
		}
		now := rf.Now()
		if !row.lease.Valid || row.lease.Int64 <= now.UnixMicro() {
			res, err := rf.DB.ExecContext(ctx, `UPDATE credentials SET refresh_lease = $1
				WHERE workspace_id = $2 AND id = $3 AND version = $4 AND (refresh_lease IS NULL OR refresh_lease <= $5)`,
				now.Add(lease).UnixMicro(), rf.WorkspaceID, cred.ID, row.version, now.UnixMicro())
			if err != nil {
				return nil, rf.Dialect.Err("claim refresh", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				break
			}
		}
		if now.After(giveUp) {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "another process is still refreshing credential %q: try again", cred.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// This caller holds the lease on version row.version.
	release := func(status string) {
		_, err := rf.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE credentials SET refresh_lease = NULL, oauth_status = $1
			WHERE workspace_id = $2 AND id = $3 AND version = $4`, status, rf.WorkspaceID, cred.ID, row.version)
		_ = err // the lease expires by itself
	}
	var app *agentkeys.OAuthApp
	var err error
	if rf.App != nil {
		app, err = rf.App(ctx, cur.OAuthApp)
	} else {
		app, err = rf.Dialect.OAuthApp(ctx, rf.DB, rf.WorkspaceID, cur.OAuthApp, rf.Open)
	}
	if err != nil {
		release("")
		return nil, err
	}
	// The refresh ends well before the lease does, so no other process
	// takes over while this one may still be talking to the provider.
	ctx, cancel := context.WithTimeout(ctx, lease*3/4)
	defer cancel()
	client := rf.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	fresh, err := oauthflow.Refresh(ctx, client, app, cred.Name, cur)
	if err != nil {
		if agentkeys.ErrorCode(err) == agentkeys.ECREDENTIAL {
			release(agentkeys.OAuthError)
			if rf.Broken != nil {
				rf.Broken(ctx, cred)
			}
		} else {
			release("")
		}
		return nil, err
	}
	var stored bool
	err = rf.Dialect.WithTx(ctx, rf.DB, func(tx *sql.Tx) error {
		if rf.InTx != nil {
			if err := rf.InTx(ctx, tx); err != nil {
				return err
			}
		}
		key, ver, err := rf.Seal(ctx, tx)
		if err != nil {
			return err
		}
		sealed, err := agentkeys.SealSecret(key, fresh, rf.WorkspaceID, cred.ID, ver)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE credentials SET sealed = $1, key_version = $2, version = version + 1,
			refresh_lease = NULL, oauth_status = '', oauth_expires_at = $3, updated_at = $4 WHERE workspace_id = $5 AND id = $6 AND version = $7`,
			sealed, ver, oauthExpiry(agentkeys.OAuth, fresh), Stamp(rf.Now).UnixMicro(), rf.WorkspaceID, cred.ID, row.version)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		stored = n == 1
		return nil
	})
	if rf.Changed != nil {
		rf.Changed()
	}
	if err != nil || !stored {
		release("")
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"the refreshed OAuth token of credential %q could not be saved, so the previous one was kept: try again", cred.Name)
	}
	return fresh, nil
}

// SetVersionBump is the SQL fragment a writer of credentials.sealed adds
// so a refresh in flight does not overwrite it. (A new value also clears
// oauth_status: a reconnected credential works again.)
const SetVersionBump = `version = version + 1`
