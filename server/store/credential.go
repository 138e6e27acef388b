package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// ListCredentials implements agentkeys.CredentialService: metadata only,
// ordered by name (case-insensitively), then id. It opens no value (no
// header or parameter names: see FindCredential).
func (w *Workspace) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	return w.s.dialect.ListCredentials(ctx, w.s.db, w.id)
}

// Credential list pages: the default and largest page size.
const (
	DefaultCredentialPage = 100
	MaxCredentialPage     = 1000
)

// CredentialQuery asks for one page of a workspace's credentials.
type CredentialQuery struct {
	// Name, when not empty, keeps the credentials whose name contains it,
	// ignoring case.
	Name string
	// Cursor is a CredentialPage's Next or Prev; "" asks for the first page.
	Cursor string
	// Limit is the page size, 1 to MaxCredentialPage; 0 means
	// DefaultCredentialPage.
	Limit int
}

// CredentialPage is one page of credentials (metadata only) in the list's
// order, with the cursors of the pages either side ("" when there is none).
type CredentialPage struct {
	Credentials []*agentkeys.Credential
	Next, Prev  string
}

// credentialCursor is what a cursor encodes: a direction ("a": the page
// after the position, "b": the page before it) and a list position.
type credentialCursor struct {
	Dir     string `json:"d"`
	NameKey string `json:"k"`
	ID      string `json:"i"`
}

func encodeCursor(dir string, p *storesql.CredentialPos) string {
	b, _ := json.Marshal(credentialCursor{Dir: dir, NameKey: p.NameKey, ID: p.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func credentialPos(c *agentkeys.Credential) *storesql.CredentialPos {
	return &storesql.CredentialPos{NameKey: storesql.NameKey(c.Name), ID: c.ID}
}

func decodeCursor(s string) (credentialCursor, error) {
	var c credentialCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Dir != "a" && c.Dir != "b" || c.ID == "" {
		return c, agentkeys.Errorf(agentkeys.EINVALID, "cursor %.40q is not one this server gave: pass a nextCursor or prevCursor from a previous answer, or leave it out for the first page", s)
	}
	return c, nil
}

// ListCredentialsPage returns one page of the workspace's credentials
// (metadata only) in list order: name case-insensitively, then id. Next
// and Prev are set exactly when matching credentials lie after or before
// the page. Cost: one index read of Limit+1 rows, and one of a row to
// tell whether a page lies the other way (none for the first page); a
// Name filter scans the workspace's names. Returns EINVALID for a limit out of range
// or a cursor this store did not give.
func (w *Workspace) ListCredentialsPage(ctx context.Context, q CredentialQuery) (*CredentialPage, error) {
	if q.Limit == 0 {
		q.Limit = DefaultCredentialPage
	}
	if q.Limit < 1 || q.Limit > MaxCredentialPage {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "limit must be from 1 to %d", MaxCredentialPage)
	}
	pq := storesql.CredentialPageQuery{Name: q.Name, Limit: q.Limit}
	var at *storesql.CredentialPos
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		at = &storesql.CredentialPos{NameKey: c.NameKey, ID: c.ID}
		if c.Dir == "a" {
			pq.After = at
		} else {
			pq.Before = at
		}
	}
	cs, more, err := w.s.dialect.ListCredentialsPage(ctx, w.s.db, w.id, pq)
	if err != nil {
		return nil, err
	}
	page := &CredentialPage{Credentials: cs}
	// The boundaries either side: the page's first and last, or the
	// cursor's position for an empty page.
	first, last := at, at
	if len(cs) > 0 {
		first, last = credentialPos(cs[0]), credentialPos(cs[len(cs)-1])
	}
	exists := func(after, before *storesql.CredentialPos) (bool, error) {
		if after == nil && before == nil {
			return false, nil
		}
		r, _, err := w.s.dialect.ListCredentialsPage(ctx, w.s.db, w.id, storesql.CredentialPageQuery{Name: q.Name, After: after, Before: before, Limit: 1})
		return len(r) > 0, err
	}
	hasNext, hasPrev := more, more
	switch {
	case at == nil: // the first page
		hasPrev = false
	case pq.Before == nil:
		hasPrev, err = exists(nil, first)
	default:
		hasNext, err = exists(last, nil)
	}
	if err != nil {
		return nil, err
	}
	if hasNext {
		page.Next = encodeCursor("a", last)
	}
	if hasPrev {
		page.Prev = encodeCursor("b", first)
	}
	return page, nil
}

// FindCredential implements agentkeys.CredentialService: by id, else by
// name case-insensitively, with a CUSTOM_HEADER's header names or a
// QUERY_PARAM's parameter name read from its value, opened in memory
// (storesql.Dialect.FindCredential). Returns ENOTFOUND otherwise.
func (w *Workspace) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	return w.s.dialect.FindCredential(ctx, w.s.db, w.id, ref, w.open)
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
