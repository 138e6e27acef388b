package storesql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Dialect is what differs between the databases behind the stores.
type Dialect struct {
	Name      string // "sqlite" or "postgres"
	IsUnique  func(error) bool
	IsBusy    func(error) bool
	IsDataErr func(error) bool // the database refuses the data itself: retrying cannot succeed
	// GrantsHaveWorkspace: grants rows carry workspace_id (the server's
	// schema; the local vault's grants reach their workspace through the
	// agent).
	GrantsHaveWorkspace bool
	// Busy is the message of the EUNAVAILABLE a busy database becomes.
	Busy string
}

// Querier is what *sql.DB, *sql.Tx and *sql.Conn share.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// WithTx runs fn in a transaction, committing when it returns nil and
// rolling back otherwise. (SQLite transactions take the write lock at
// BEGIN: see DSN.)
func (d Dialect) WithTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return d.Err("begin transaction", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return d.Err("commit", err)
	}
	return nil
}

// Err translates a driver error at the store boundary: *agentkeys.Error
// and context errors pass through; a busy database becomes EUNAVAILABLE
// with d.Busy; anything else is wrapped (ErrorCode reports EINTERNAL and
// ErrorMessage hides the text).
func (d Dialect) Err(what string, err error) error {
	var ae *agentkeys.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case d.IsBusy != nil && d.IsBusy(err):
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s", d.Busy)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// NameKey is how names are compared: case-insensitively.
func NameKey(name string) string { return strings.ToLower(name) }

// FromMicros is a stored time (Unix microseconds) in UTC.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// NullTime is a nullable stored time; nil when NULL.
func NullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := FromMicros(n.Int64)
	return &t
}

// Stamp is now in the precision the stores keep (microseconds, UTC).
func Stamp(now func() time.Time) time.Time { return now().UTC().Truncate(time.Microsecond) }
