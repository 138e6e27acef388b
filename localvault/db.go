package localvault

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema step; version N turns schema N-1 into N.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. File names are
// NNNN_description.sql, numbered from 1 without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: n, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	m, err := migrations()
	if err != nil {
		panic("localvault: embedded migrations are broken: " + err.Error())
	}
	return len(m)
}

// openDB opens the pool on an existing vault file.
func openDB(file string) (*sql.DB, error) {
	if strings.ContainsAny(file, "?#") {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "vault path %s contains '?' or '#': choose another AGENTKEYS_HOME", file)
	}
	db, err := sql.Open("sqlite", sqlitedb.DSN(file))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	// Enough connections for concurrent proxy requests reading while the
	// audit writer commits; SQLite in WAL mode lets readers run beside it.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// schemaVersion reads PRAGMA user_version, which the migrations set.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// checkSchema refuses a vault written by a newer binary. It reads only.
func checkSchema(ctx context.Context, q querier, file string) (int, error) {
	v, err := schemaVersion(ctx, q)
	if err != nil {
		return 0, err
	}
	if known := SchemaVersion(); v > known {
		return v, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"vault.db was written by a newer agentkeys (schema %d, this binary knows %d): upgrade agentkeys", v, known)
	}
	if v == 0 {
		return v, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s is not an agentkeys vault (no schema): run `agentkeys init` in an empty AGENTKEYS_HOME", file)
	}
	return v, nil
}

// migrateLimit, when positive, is the newest schema migrate applies (tests
// of the upgrade from an older schema create their vaults with it).
var migrateLimit int

// migrate brings the schema up to date, one transaction per step. The
// version is re-read inside each transaction so two processes migrating at
// once do not apply a step twice.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if migrateLimit > 0 {
		ms = ms[:min(migrateLimit, len(ms))]
	}
	for _, m := range ms {
		err := withTx(ctx, db, func(tx *sql.Tx) error {
			v, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if v >= m.version {
				return nil
			}
			if v != m.version-1 {
				return fmt.Errorf("schema is at %d, cannot apply migration %s", v, m.name)
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err = tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// withTx runs fn in an (immediate) transaction, committing when it returns
// nil and rolling back otherwise.
func withTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return storeErr("begin transaction", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return storeErr("commit", err)
	}
	return nil
}

// storeErr translates a driver error at the store boundary: *agentkeys.Error
// passes through; a busy database becomes EUNAVAILABLE; anything else is
// wrapped (ErrorCode reports EINTERNAL and ErrorMessage hides the text).
func storeErr(what string, err error) error {
	var ae *agentkeys.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case sqlitedb.IsBusy(err):
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is busy (another agentkeys process holds the write lock): try again")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// createFile creates an empty file with mode 0600, failing if it exists.
// SQLite's -wal and -shm files copy the database file's mode, so creating
// vault.db ourselves first keeps all three private whatever the umask.
func createFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
