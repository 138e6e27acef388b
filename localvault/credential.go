package localvault

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/hostpolicy"
	"github.com/agentkeys/agentkeys/internal/sqlitedb"
)

const credentialCols = `id, name, type, allowed_hosts, created_at, updated_at, last_used_at`

// nameKey is how names are compared: case-insensitively.
func nameKey(name string) string { return strings.ToLower(name) }

type rowScanner interface{ Scan(dest ...any) error }

func scanCredential(s rowScanner, extra ...any) (*agentkeys.Credential, error) {
	var c agentkeys.Credential
	var hosts string
	var created, updated int64
	var used sql.NullInt64
	dest := append([]any{&c.ID, &c.Name, &c.Type, &hosts, &created, &updated, &used}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(hosts), &c.AllowedHosts); err != nil {
		return nil, fmt.Errorf("credential %s: allowed hosts: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.LastUsedAt = fromMicros(created), fromMicros(updated), nullTime(used)
	return &c, nil
}

// ListCredentials implements agentkeys.CredentialService: metadata only,
// ordered by name (case-insensitively).
func (v *Vault) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	rows, err := v.db.QueryContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE workspace_id = ? ORDER BY name_key, id`, v.wsID)
	if err != nil {
		return nil, storeErr("list credentials", err)
	}
	defer rows.Close()
	out := []*agentkeys.Credential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, storeErr("list credentials", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list credentials", err)
	}
	return out, nil
}

// FindCredential implements agentkeys.CredentialService: by id, else by
// name case-insensitively. Returns ENOTFOUND otherwise.
func (v *Vault) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	c, err := findCredential(ctx, v.db, v.wsID, ref)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func findCredential(ctx context.Context, q querier, wsID, ref string) (*agentkeys.Credential, error) {
	ref = strings.TrimSpace(ref)
	row := q.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials
		WHERE workspace_id = ?1 AND (id = ?2 OR name_key = ?3) ORDER BY id = ?2 DESC LIMIT 1`, wsID, ref, nameKey(ref))
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id or name %q: see `agentkeys credentials list`", ref)
	}
	if err != nil {
		return nil, storeErr("find credential", err)
	}
	return c, nil
}

// credentialByID is findCredential restricted to ids, for calls whose
// contract takes an id.
func credentialByID(ctx context.Context, q querier, wsID, id string) (*agentkeys.Credential, error) {
	row := q.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE workspace_id = ? AND id = ?`, wsID, id)
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
	}
	if err != nil {
		return nil, storeErr("find credential", err)
	}
	return c, nil
}

func credentialConflict(name string) error {
	return agentkeys.Errorf(agentkeys.ECONFLICT, "a credential named %q already exists (names are unique, ignoring case): choose another name or remove the old one", name)
}

// CreateCredential implements agentkeys.CredentialService. It normalises a
// copy of in (in itself is not changed), seals the secret under the current
// data key bound to workspace, credential id and key version, and stores it.
// Returns EINVALID for bad input and ECONFLICT for a taken name; nothing is
// written then.
func (v *Vault) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential")
	}
	n := *in
	n.AllowedHosts = append([]string(nil), in.AllowedHosts...)
	if err := n.Normalize(); err != nil {
		return nil, err
	}
	if err := hostpolicy.CheckWildcards(n.AllowedHosts); err != nil {
		return nil, err
	}
	hosts, err := json.Marshal(n.AllowedHosts)
	if err != nil {
		return nil, err
	}
	now := v.stamp()
	c := &agentkeys.Credential{
		ID: agentkeys.NewID("cred"), Name: n.Name, Type: n.Type, AllowedHosts: n.AllowedHosts,
		CreatedAt: now, UpdatedAt: now,
	}
	key, ver := v.keys.sealing()
	sealed, err := agentkeys.SealSecret(key, &n.Secret, v.wsID, c.ID, ver)
	if err != nil {
		return nil, err
	}
	err = v.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials
			(id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, v.wsID, c.Name, nameKey(c.Name), string(c.Type), string(hosts), sealed, ver, now.UnixMicro(), now.UnixMicro())
		if sqlitedb.IsUnique(err) {
			return credentialConflict(c.Name)
		}
		return err
	})
	if err != nil {
		return nil, storeErr("create credential", err)
	}
	return c, nil
}

// UpdateCredential implements agentkeys.CredentialService: rename, replace
// the allowlist (an empty non-nil list is refused) or re-seal a new secret
// under the current data key. Returns ENOTFOUND, EINVALID or ECONFLICT, and
// writes nothing on error.
func (v *Vault) UpdateCredential(ctx context.Context, id string, upd *agentkeys.CredentialUpdate) (*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if upd == nil {
		upd = &agentkeys.CredentialUpdate{}
	}
	norm := *upd // Normalize works in place; the caller's value stays as given
	if err := norm.Normalize(); err != nil {
		return nil, err
	}
	if err := hostpolicy.CheckWildcards(norm.AllowedHosts); err != nil {
		return nil, err
	}
	upd = &norm
	var out *agentkeys.Credential
	err := v.write(ctx, func(tx *sql.Tx) error {
		c, err := credentialByID(ctx, tx, v.wsID, id)
		if err != nil {
			return err
		}
		if upd.Secret != nil {
			if err := upd.Secret.Validate(c.Type); err != nil {
				return err
			}
		}
		now := v.stamp()
		if upd.Name != nil {
			c.Name = *upd.Name
		}
		if upd.AllowedHosts != nil {
			c.AllowedHosts = upd.AllowedHosts
		}
		hj, err := json.Marshal(c.AllowedHosts)
		if err != nil {
			return err
		}
		c.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE credentials SET name = ?, name_key = ?, allowed_hosts = ?, updated_at = ? WHERE id = ?`,
			c.Name, nameKey(c.Name), string(hj), now.UnixMicro(), c.ID)
		if sqlitedb.IsUnique(err) {
			return credentialConflict(c.Name)
		}
		if err != nil {
			return err
		}
		if upd.Secret != nil {
			key, ver := v.keys.sealing()
			sealed, err := agentkeys.SealSecret(key, upd.Secret, v.wsID, c.ID, ver)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE credentials SET sealed = ?, key_version = ? WHERE id = ?`, sealed, ver, c.ID); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, storeErr("update credential", err)
	}
	return out, nil
}

// DeleteCredential implements agentkeys.CredentialService: the credential
// and its grants go; their tokens fail on the next request, in every
// process. Returns ENOTFOUND for an unknown id.
func (v *Vault) DeleteCredential(ctx context.Context, id string) error {
	if err := v.usable(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE workspace_id = ? AND id = ?`, v.wsID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
		}
		return nil
	})
	return storeErr("delete credential", err)
}

// write runs fn in a transaction and then drops this process's proxy cache,
// so its own changes are seen at once (other processes' are noticed through
// cache_gen).
func (v *Vault) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	err := withTx(ctx, v.db, fn)
	if v.cache != nil {
		v.cache.invalidate()
	}
	return err
}
