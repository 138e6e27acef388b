package localvault

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// ListCredentials implements agentkeys.CredentialService: metadata only,
// ordered by name (case-insensitively). It opens no value (no header or
// parameter names: see FindCredential).
func (v *Vault) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	// The rows are read in table order and sorted here: the same order as
	// storesql's ORDER BY name_key, id (SQLite compares both bytewise, as Go
	// does), without a b-tree seek into the table for every row of the
	// name index, which took a fifth of `credentials list` over 10,000
	// credentials (go run ./bench/cli). The sort key is computed from the
	// name (every writer stores name_key as storesql.NameKey(name)) rather
	// than read: one column less per row took another tenth of its CPU.
	rows, err := v.db.QueryContext(ctx, `SELECT `+storesql.CredentialCols+` FROM credentials c NOT INDEXED
		WHERE c.workspace_id = $1`, v.wsID)
	if err != nil {
		return nil, storeErr("list credentials", err)
	}
	defer rows.Close()
	type keyed struct {
		key string
		c   *agentkeys.Credential
	}
	var list []keyed
	scan := storesql.NewCredentialScanner()
	for rows.Next() {
		c, err := scan.Scan(rows)
		if err != nil {
			return nil, storeErr("list credentials", err)
		}
		list = append(list, keyed{storesql.NameKey(c.Name), c})
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list credentials", err)
	}
	slices.SortFunc(list, func(a, b keyed) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.c.ID, b.c.ID))
	})
	out := make([]*agentkeys.Credential, len(list))
	for i, k := range list {
		out[i] = k.c
	}
	return out, nil
}

// FindCredential implements agentkeys.CredentialService: by id, else by
// name case-insensitively, with a CUSTOM_HEADER's header names or a
// QUERY_PARAM's parameter name read from its value, opened in memory
// (storesql.Dialect.FindCredential). Returns ENOTFOUND otherwise.
func (v *Vault) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, false) // last_used_at of this process's requests
	return dialect.FindCredential(ctx, v.db, v.wsID, ref, v.openKey)
}

// sealing is the key new values are sealed with (storesql.SealFunc).
func (v *Vault) sealing(context.Context, *sql.Tx) (agentkeys.Key, int, error) {
	key, ver := v.keys.sealing()
	return key, ver, nil
}

// CreateCredential implements agentkeys.CredentialService. It checks and
// normalises a copy of in (storesql.CheckCredential; in itself is not
// changed), seals the secret under the current data key bound to workspace,
// credential id and key version, and stores it. Returns EINVALID for bad
// input and ECONFLICT for a taken name; nothing is written then.
func (v *Vault) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	n, err := storesql.CheckCredential(in)
	if err != nil {
		return nil, err
	}
	var c *agentkeys.Credential
	err = v.write(ctx, func(tx *sql.Tx) (err error) {
		c, err = dialect.InsertCredential(ctx, tx, v.wsID, n, v.stamp(), v.sealing)
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
	ch, err := storesql.CheckCredentialUpdate(upd)
	if err != nil {
		return nil, err
	}
	var c *agentkeys.Credential
	err = v.write(ctx, func(tx *sql.Tx) (err error) {
		c, err = dialect.UpdateCredential(ctx, tx, v.wsID, id, ch, v.stamp(), v.sealing)
		return err
	})
	if err != nil {
		return nil, storeErr("update credential", err)
	}
	return c, nil
}

// DeleteCredential implements agentkeys.CredentialService: the credential
// and its grants go; their tokens fail on the next request, in every
// process. Returns ENOTFOUND for an unknown id.
func (v *Vault) DeleteCredential(ctx context.Context, id string) error {
	if err := v.usable(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		if err := v.keepRevoked(ctx, tx, `g.credential_id = $3`, id); err != nil {
			return err
		}
		return dialect.DeleteCredential(ctx, tx, v.wsID, id)
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
