package store

import (
	"context"
	"database/sql"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// ListCredentials implements agentkeys.CredentialService: metadata only,
// ordered by name (case-insensitively), then id.
func (w *Workspace) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	return w.s.dialect.ListCredentials(ctx, w.s.db, w.id)
}

// FindCredential implements agentkeys.CredentialService: by id, else by
// name case-insensitively. Returns ENOTFOUND otherwise.
func (w *Workspace) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	return w.s.dialect.FindCredential(ctx, w.s.db, w.id, ref)
}

// sealing is the workspace's newest data key (storesql.SealFunc).
func (w *Workspace) sealing(ctx context.Context, tx *sql.Tx) (agentkeys.Key, int, error) {
	return w.s.sealingKey(ctx, tx, w.id)
}

// CreateCredential implements agentkeys.CredentialService: it checks and
// normalises a copy of in (storesql.CheckCredential), seals the secret
// under the workspace's newest data key (AAD: workspace, credential id, key
// version) and stores it. Returns EINVALID for bad input and ECONFLICT for
// a taken name, EPLANLIMIT when the workspace has as many credentials as
// its plan allows (checked in the inserting transaction); nothing is
// written then.
func (w *Workspace) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
	n, err := storesql.CheckCredential(in)
	if err != nil {
		return nil, err
	}
	var c *agentkeys.Credential
	err = w.write(ctx, func(tx *sql.Tx) (err error) {
		if err := checkCreate(ctx, tx, w.id, agentkeys.LimitCredentials); err != nil {
			return err
		}
		c, err = w.s.dialect.InsertCredential(ctx, tx, w.id, n, w.s.stamp(), w.sealing)
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
	ch, err := storesql.CheckCredentialUpdate(upd)
	if err != nil {
		return nil, err
	}
	var c *agentkeys.Credential
	err = w.change(ctx, func(tx *sql.Tx) (err error) {
		c, err = w.s.dialect.UpdateCredential(ctx, tx, w.id, id, ch, w.s.stamp(), w.sealing)
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("update credential", err)
	}
	return c, nil
}

// DeleteCredential implements agentkeys.CredentialService: the credential
// and its grants go; their tokens fail on the next request on every
// replica. Returns ENOTFOUND for an unknown id.
func (w *Workspace) DeleteCredential(ctx context.Context, id string) error {
	err := w.change(ctx, func(tx *sql.Tx) error {
		return w.s.dialect.DeleteCredential(ctx, tx, w.id, id)
	})
	return w.s.storeErr("delete credential", err)
}
