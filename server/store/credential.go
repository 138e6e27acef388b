package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/hostpolicy"
)

const credentialCols = `c.id, c.name, c.type, c.allowed_hosts, c.created_at, c.updated_at, c.last_used_at`

// nameKey is how names are compared: case-insensitively.
func nameKey(name string) string { return strings.ToLower(name) }

type rowScanner interface{ Scan(dest ...any) error }

// scanCredential scans credentialCols followed by extra destinations.
func scanCredential(r rowScanner, extra ...any) (*agentkeys.Credential, error) {
	var c agentkeys.Credential
	var hosts string
	var created, updated int64
	var used sql.NullInt64
	if err := r.Scan(append([]any{&c.ID, &c.Name, &c.Type, &hosts, &created, &updated, &used}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(hosts), &c.AllowedHosts); err != nil {
		return nil, fmt.Errorf("credential %s: allowed hosts: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.LastUsedAt = fromMicros(created), fromMicros(updated), nullTime(used)
	return &c, nil
}

func credentialNotFound(ref string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id or name %q in this workspace", ref)
}

func credentialConflict(name string) error {
	return agentkeys.Errorf(agentkeys.ECONFLICT, "a credential named %q already exists (names are unique, ignoring case): choose another name or remove the old one", name)
}

// ListCredentials implements agentkeys.CredentialService: metadata only,
// ordered by name (case-insensitively), then id.
func (w *Workspace) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	rows, err := w.s.db.QueryContext(ctx, `SELECT `+credentialCols+` FROM credentials c WHERE c.workspace_id = $1 ORDER BY c.name_key, c.id`, w.id)
	if err != nil {
		return nil, w.s.storeErr("list credentials", err)
	}
	defer rows.Close()
	out := []*agentkeys.Credential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, w.s.storeErr("list credentials", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, w.s.storeErr("list credentials", err)
	}
	return out, nil
}

// FindCredential implements agentkeys.CredentialService: by id, else by
// name case-insensitively. Returns ENOTFOUND otherwise.
func (w *Workspace) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	ref = strings.TrimSpace(ref)
	row := w.s.db.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials c
		WHERE c.workspace_id = $1 AND (c.id = $2 OR c.name_key = $3) ORDER BY c.id = $2 DESC LIMIT 1`, w.id, ref, nameKey(ref))
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, credentialNotFound(ref)
	}
	if err != nil {
		return nil, w.s.storeErr("find credential", err)
	}
	return c, nil
}

// credentialByID reads one credential of the workspace by id.
func (w *Workspace) credentialByID(ctx context.Context, q querier, id string) (*agentkeys.Credential, error) {
	row := q.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials c WHERE c.workspace_id = $1 AND c.id = $2`, w.id, id)
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, credentialNotFound(id)
	}
	if err != nil {
		return nil, w.s.storeErr("find credential", err)
	}
	return c, nil
}

// CreateCredential implements agentkeys.CredentialService: it normalises a
// copy of in, seals the secret under the workspace's newest data key (AAD:
// workspace, credential id, key version) and stores it. Returns EINVALID for
// bad input and ECONFLICT for a taken name; nothing is written then.
func (w *Workspace) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
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
	now := w.s.stamp()
	c := &agentkeys.Credential{ID: agentkeys.NewID("cred"), Name: n.Name, Type: n.Type, AllowedHosts: n.AllowedHosts, CreatedAt: now, UpdatedAt: now}
	err = w.write(ctx, func(tx *sql.Tx) error {
		key, ver, err := w.s.sealingKey(ctx, tx, w.id)
		if err != nil {
			return err
		}
		sealed, err := agentkeys.SealSecret(key, &n.Secret, w.id, c.ID, ver)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO credentials
			(id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			c.ID, w.id, c.Name, nameKey(c.Name), string(c.Type), string(hosts), sealed, ver, now.UnixMicro(), now.UnixMicro())
		if w.s.dialect.isUnique(err) {
			return credentialConflict(c.Name)
		}
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("create credential", err)
	}
	return c, nil
}

// UpdateCredential implements agentkeys.CredentialService: rename, replace
// the allowlist (an empty non-nil list is refused) or re-seal a new secret
// under the newest data key. Returns ENOTFOUND, EINVALID or ECONFLICT, and
// writes nothing on error.
func (w *Workspace) UpdateCredential(ctx context.Context, id string, upd *agentkeys.CredentialUpdate) (*agentkeys.Credential, error) {
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
	err := w.change(ctx, func(tx *sql.Tx) error {
		c, err := w.credentialByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if upd.Secret != nil {
			if err := upd.Secret.Validate(c.Type); err != nil {
				return err
			}
		}
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
		c.UpdatedAt = w.s.stamp()
		_, err = tx.ExecContext(ctx, `UPDATE credentials SET name = $1, name_key = $2, allowed_hosts = $3, updated_at = $4
			WHERE workspace_id = $5 AND id = $6`, c.Name, nameKey(c.Name), string(hj), c.UpdatedAt.UnixMicro(), w.id, c.ID)
		if w.s.dialect.isUnique(err) {
			return credentialConflict(c.Name)
		}
		if err != nil {
			return err
		}
		if upd.Secret != nil {
			key, ver, err := w.s.sealingKey(ctx, tx, w.id)
			if err != nil {
				return err
			}
			sealed, err := agentkeys.SealSecret(key, upd.Secret, w.id, c.ID, ver)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE credentials SET sealed = $1, key_version = $2 WHERE workspace_id = $3 AND id = $4`,
				sealed, ver, w.id, c.ID); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, w.s.storeErr("update credential", err)
	}
	return out, nil
}

// DeleteCredential implements agentkeys.CredentialService: the credential
// and its grants go; their tokens fail on the next request on every
// replica. Returns ENOTFOUND for an unknown id.
func (w *Workspace) DeleteCredential(ctx context.Context, id string) error {
	err := w.change(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE workspace_id = $1 AND id = $2`, w.id, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return credentialNotFound(id)
		}
		return nil
	})
	return w.s.storeErr("delete credential", err)
}
