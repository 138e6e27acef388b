package storesql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/hostpolicy"
)

// CredentialCols are the metadata columns of credentials (alias c) that
// ScanCredential reads.
const CredentialCols = `c.id, c.name, c.type, c.allowed_hosts, c.created_at, c.updated_at, c.last_used_at, c.expires_at, c.oauth_status, c.oauth_expires_at`

// RowScanner is *sql.Row or *sql.Rows.
type RowScanner interface{ Scan(dest ...any) error }

// ScanCredential scans CredentialCols followed by extra destinations.
func ScanCredential(r RowScanner, extra ...any) (*agentkeys.Credential, error) {
	return NewCredentialScanner(extra...).Scan(r)
}

// CredentialScanner scans rows of CredentialCols (followed by extra
// destinations) into new credentials, reusing its destinations from row to
// row: a list of 10,000 credentials then allocates a credential per row
// rather than a dozen scan destinations as well (go run ./bench/cli). Not
// safe for concurrent use.
type CredentialScanner struct {
	c                           agentkeys.Credential
	hosts, oauthStatus          string
	created, updated            int64
	used, expires, oauthExpires sql.NullInt64
	dest                        []any
}

// NewCredentialScanner returns a scanner of CredentialCols followed by
// extra destinations (written by each Scan).
func NewCredentialScanner(extra ...any) *CredentialScanner {
	s := &CredentialScanner{}
	s.dest = append([]any{&s.c.ID, &s.c.Name, &s.c.Type, &s.hosts, &s.created, &s.updated, &s.used, &s.expires, &s.oauthStatus, &s.oauthExpires}, extra...)
	return s
}

// Scan scans the current row into a new credential.
func (s *CredentialScanner) Scan(r RowScanner) (*agentkeys.Credential, error) {
	if err := r.Scan(s.dest...); err != nil {
		return nil, err
	}
	c := &agentkeys.Credential{ID: s.c.ID, Name: s.c.Name, Type: s.c.Type}
	if c.Type == agentkeys.OAuth {
		c.OAuth = &agentkeys.OAuthState{Status: agentkeys.OAuthConnected, AccessTokenExpiresAt: NullTime(s.oauthExpires)}
		if s.oauthStatus == agentkeys.OAuthError {
			c.OAuth.Status = agentkeys.OAuthError
		}
	}
	var err error
	if c.AllowedHosts, err = DecodeHosts(s.hosts); err != nil {
		return nil, fmt.Errorf("credential %s: allowed hosts: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.LastUsedAt, c.ExpiresAt = FromMicros(s.created), FromMicros(s.updated), NullTime(s.used), NullTime(s.expires)
	return c, nil
}

// CredentialNotFound is the ENOTFOUND of a credential looked up by id or
// name.
func CredentialNotFound(ref string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id or name %q: see `agentkeys credentials list`", ref)
}

// credentialIDNotFound is the ENOTFOUND of a credential looked up by id.
func credentialIDNotFound(id string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
}

func credentialConflict(name string) error {
	return agentkeys.Errorf(agentkeys.ECONFLICT, "a credential named %q already exists (names are unique, ignoring case): choose another name or remove the old one", name)
}

// NewCredential is a credential input that passed CheckCredential: the only
// way to InsertCredential.
type NewCredential struct {
	in    agentkeys.CredentialInput
	hosts string // AllowedHosts as stored (JSON)
}

// CheckCredential is the one path every writer of a new credential takes
// (the CLI, TUI and MCP server through a Vault, the REST API, imports):
// it normalises a copy of in (in itself is not changed: agentkeys.
// CredentialInput.Normalize resolves name, type, allowlist and checks the
// secret against the type) and applies the allowlist policy
// (hostpolicy.CheckWildcards). Returns EINVALID saying what to fix.
func CheckCredential(in *agentkeys.CredentialInput) (*NewCredential, error) {
	if in == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential")
	}
	n := &NewCredential{in: *in}
	n.in.AllowedHosts = append([]string(nil), in.AllowedHosts...)
	if err := n.in.Normalize(); err != nil {
		return nil, err
	}
	if err := hostpolicy.CheckWildcards(n.in.AllowedHosts); err != nil {
		return nil, err
	}
	hosts, err := json.Marshal(n.in.AllowedHosts)
	if err != nil {
		return nil, err
	}
	n.hosts = string(hosts)
	return n, nil
}

// CredentialChange is a credential update that passed
// CheckCredentialUpdate: the only way to UpdateCredential.
type CredentialChange struct {
	upd agentkeys.CredentialUpdate
}

// CheckCredentialUpdate is the one path every writer of a credential
// change takes: it normalises a copy of upd (nil: no change) and applies
// the allowlist policy. The secret is checked against the stored type by
// UpdateCredential. Returns EINVALID saying what to fix.
func CheckCredentialUpdate(upd *agentkeys.CredentialUpdate) (*CredentialChange, error) {
	ch := &CredentialChange{}
	if upd != nil {
		ch.upd = *upd
	}
	if err := ch.upd.Normalize(); err != nil {
		return nil, err
	}
	if err := hostpolicy.CheckWildcards(ch.upd.AllowedHosts); err != nil {
		return nil, err
	}
	return ch, nil
}

// SealFunc returns the data key to seal with and its version, read within
// the writing transaction.
type SealFunc func(ctx context.Context, tx *sql.Tx) (agentkeys.Key, int, error)

// OpenFunc returns the sealer of a data key version, to open what was
// sealed under it.
type OpenFunc func(ctx context.Context, version int) (*agentkeys.Sealer, error)

// ListCredentials returns the workspace's credentials, ordered by name
// (case-insensitively), then id.
func (d Dialect) ListCredentials(ctx context.Context, q Querier, wsID string) ([]*agentkeys.Credential, error) {
	return d.queryCredentials(ctx, q, `SELECT `+CredentialCols+` FROM credentials c WHERE c.workspace_id = $1 ORDER BY c.name_key, c.id`, wsID)
}

// queryCredentials runs query (selecting CredentialCols) and returns its
// rows as credentials.
func (d Dialect) queryCredentials(ctx context.Context, q Querier, query string, args ...any) ([]*agentkeys.Credential, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, d.Err("list credentials", err)
	}
	defer rows.Close()
	out := []*agentkeys.Credential{}
	scan := NewCredentialScanner()
	for rows.Next() {
		c, err := scan.Scan(rows)
		if err != nil {
			return nil, d.Err("list credentials", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, d.Err("list credentials", err)
	}
	return out, nil
}

// CredentialPos is a position in the credential list's order: a
// credential's name key (NameKey of its name) and id.
type CredentialPos struct{ NameKey, ID string }

// CredentialPageQuery selects one page of a workspace's credentials in the
// list's order (name case-insensitively, then id).
type CredentialPageQuery struct {
	// Name, when not empty, keeps the credentials whose name contains it,
	// ignoring case.
	Name string
	// After starts the page just after this position; Before ends it just
	// before this one (paging back). At most one is set; neither: the first
	// page.
	After, Before *CredentialPos
	// Limit is the page size, at least 1.
	Limit int
}

// ListCredentialsPage returns up to q.Limit credentials in list order and
// whether more match beyond the page in the direction it was read (after
// its last one; before its first one when q.Before is set). It reads at
// most q.Limit+1 rows by the (workspace_id, name_key) index; a Name filter
// scans the workspace's rows without reading any secret.
func (d Dialect) ListCredentialsPage(ctx context.Context, q Querier, wsID string, p CredentialPageQuery) ([]*agentkeys.Credential, bool, error) {
	if p.Limit < 1 || p.After != nil && p.Before != nil {
		return nil, false, agentkeys.Errorf(agentkeys.EINVALID, "a credential page needs a limit of at least 1 and at most one of after and before")
	}
	where, args := []string{"c.workspace_id = $1"}, []any{wsID}
	if p.Name != "" {
		args = append(args, "%"+likeEscaper.Replace(NameKey(p.Name))+"%")
		where = append(where, fmt.Sprintf(`c.name_key LIKE $%d ESCAPE '\'`, len(args)))
	}
	order := "ASC"
	if pos := p.After; pos != nil {
		args = append(args, pos.NameKey, pos.ID)
		where = append(where, fmt.Sprintf("(c.name_key, c.id) > ($%d, $%d)", len(args)-1, len(args)))
	}
	if pos := p.Before; pos != nil {
		args = append(args, pos.NameKey, pos.ID)
		where = append(where, fmt.Sprintf("(c.name_key, c.id) < ($%d, $%d)", len(args)-1, len(args)))
		order = "DESC"
	}
	args = append(args, p.Limit+1)
	out, err := d.queryCredentials(ctx, q, `SELECT `+CredentialCols+` FROM credentials c WHERE `+strings.Join(where, " AND ")+
		` ORDER BY c.name_key `+order+`, c.id `+order+fmt.Sprintf(" LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > p.Limit
	out = out[:min(len(out), p.Limit)]
	if p.Before != nil {
		slices.Reverse(out)
	}
	return out, more, nil
}

// likeEscaper escapes LIKE's wildcards (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// FindCredential returns the workspace's credential with id ref, else the
// one named ref case-insensitively, with the names its value is sent under
// (agentkeys.Credential.SetInjectedNames): for a type that has them, the
// sealed value read with the metadata is opened in memory with the key
// open gives, and only the names are kept. A value that does not decrypt
// (agentkeys.ErrDecrypt) leaves the names empty rather than failing the
// lookup, so a broken credential can still be found to be given a new
// value or removed; the proxy refuses and logs it. Returns ENOTFOUND
// otherwise.
func (d Dialect) FindCredential(ctx context.Context, q Querier, wsID, ref string, open OpenFunc) (*agentkeys.Credential, error) {
	ref = strings.TrimSpace(ref)
	row := q.QueryRowContext(ctx, `SELECT `+RouteCols+` FROM credentials c
		WHERE c.workspace_id = $1 AND (c.id = $2 OR c.name_key = $3) ORDER BY c.id = $2 DESC LIMIT 1`, wsID, ref, NameKey(ref))
	var e RouteEntry
	err := e.Scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, CredentialNotFound(ref)
	}
	if err != nil {
		return nil, d.Err("find credential", err)
	}
	c := &e.Cred
	if c.Type.HasInjectedNames() {
		sl, err := open(ctx, e.KeyVersion)
		var s *agentkeys.Secret
		if err == nil {
			s, err = sl.OpenSecret(e.Sealed, wsID, c.ID, e.KeyVersion)
		}
		switch {
		case err == nil:
			c.SetInjectedNames(s)
		case !errors.Is(err, agentkeys.ErrDecrypt):
			return nil, err
		}
	}
	return c, nil
}

// CredentialByID returns the workspace's credential with id. Returns
// ENOTFOUND otherwise.
func (d Dialect) CredentialByID(ctx context.Context, q Querier, wsID, id string) (*agentkeys.Credential, error) {
	row := q.QueryRowContext(ctx, `SELECT `+CredentialCols+` FROM credentials c WHERE c.workspace_id = $1 AND c.id = $2`, wsID, id)
	c, err := ScanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, credentialIDNotFound(id)
	}
	if err != nil {
		return nil, d.Err("find credential", err)
	}
	return c, nil
}

// InsertCredential stores n as a new credential of workspace wsID within
// tx, created at now and sealed with the key seal returns (AAD: workspace,
// credential id, key version). Returns its metadata, or ECONFLICT for a
// taken name.
func (d Dialect) InsertCredential(ctx context.Context, tx *sql.Tx, wsID string, n *NewCredential, now time.Time, seal SealFunc) (*agentkeys.Credential, error) {
	c := &agentkeys.Credential{
		ID: agentkeys.NewID("cred"), Name: n.in.Name, Type: n.in.Type, AllowedHosts: n.in.AllowedHosts,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: n.in.ExpiresAt,
	}
	key, ver, err := seal(ctx, tx)
	if err != nil {
		return nil, err
	}
	sealed, err := agentkeys.SealSecret(key, &n.in.Secret, wsID, c.ID, ver)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO credentials
		(id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at, expires_at, oauth_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, wsID, c.Name, NameKey(c.Name), string(c.Type), n.hosts, sealed, ver, now.UnixMicro(), now.UnixMicro(), micros(c.ExpiresAt), oauthExpiry(c.Type, &n.in.Secret))
	if d.IsUnique(err) {
		return nil, credentialConflict(c.Name)
	}
	if err != nil {
		return nil, err
	}
	c.OAuth = oauthState(c.Type, &n.in.Secret)
	return c, nil
}

// oauthExpiry is the oauth_expires_at column of a secret of type t.
func oauthExpiry(t agentkeys.CredentialType, s *agentkeys.Secret) any {
	if t != agentkeys.OAuth || s.ExpiresAt.IsZero() {
		return nil
	}
	return s.ExpiresAt.UnixMicro()
}

// oauthState is the listing state of a freshly written secret of type t.
func oauthState(t agentkeys.CredentialType, s *agentkeys.Secret) *agentkeys.OAuthState {
	if t != agentkeys.OAuth {
		return nil
	}
	st := &agentkeys.OAuthState{Status: agentkeys.OAuthConnected}
	if !s.ExpiresAt.IsZero() {
		e := s.ExpiresAt.UTC().Truncate(time.Microsecond) // as stored
		st.AccessTokenExpiresAt = &e
	}
	return st
}

// UpdateCredential applies ch to the workspace's credential id within tx at
// now: rename, replace the allowlist, or re-seal a new secret (checked
// against the stored type) with the key seal returns. Returns the
// credential as changed, ENOTFOUND, EINVALID or ECONFLICT.
func (d Dialect) UpdateCredential(ctx context.Context, tx *sql.Tx, wsID, id string, ch *CredentialChange, now time.Time, seal SealFunc) (*agentkeys.Credential, error) {
	upd := &ch.upd
	c, err := d.CredentialByID(ctx, tx, wsID, id)
	if err != nil {
		return nil, err
	}
	if upd.Secret != nil {
		if err := upd.Secret.Validate(c.Type); err != nil {
			return nil, err
		}
	}
	if upd.Name != nil {
		c.Name = *upd.Name
	}
	if upd.AllowedHosts != nil {
		c.AllowedHosts = upd.AllowedHosts
	}
	if upd.ExpiresAt != nil {
		c.ExpiresAt = nil
		if !upd.ExpiresAt.IsZero() {
			t := *upd.ExpiresAt
			c.ExpiresAt = &t
		}
	}
	hosts, err := json.Marshal(c.AllowedHosts)
	if err != nil {
		return nil, err
	}
	c.UpdatedAt = now
	_, err = tx.ExecContext(ctx, `UPDATE credentials SET name = $1, name_key = $2, allowed_hosts = $3, updated_at = $4, expires_at = $5
		WHERE workspace_id = $6 AND id = $7`, c.Name, NameKey(c.Name), string(hosts), now.UnixMicro(), micros(c.ExpiresAt), wsID, c.ID)
	if d.IsUnique(err) {
		return nil, credentialConflict(c.Name)
	}
	if err != nil {
		return nil, err
	}
	if upd.Secret != nil {
		key, ver, err := seal(ctx, tx)
		if err != nil {
			return nil, err
		}
		sealed, err := agentkeys.SealSecret(key, upd.Secret, wsID, c.ID, ver)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET sealed = $1, key_version = $2, oauth_status = '', oauth_expires_at = $3, `+SetVersionBump+`
			WHERE workspace_id = $4 AND id = $5`, sealed, ver, oauthExpiry(c.Type, upd.Secret), wsID, c.ID); err != nil {
			return nil, err
		}
		c.OAuth = oauthState(c.Type, upd.Secret)
	}
	return c, nil
}

// micros is t as a nullable Unix-microseconds column.
func micros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// DeleteCredential deletes the workspace's credential id (its grants go
// with it). Returns ENOTFOUND for an unknown id.
func (d Dialect) DeleteCredential(ctx context.Context, q Querier, wsID, id string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM credentials WHERE workspace_id = $1 AND id = $2`, wsID, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return credentialIDNotFound(id)
	}
	return nil
}
