package localvault

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"os"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]storesql.Migration, error) {
	return storesql.LoadMigrations(migrationFS, "migrations")
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
	// mmap_size: pages are read through a shared mapping of the file
	// instead of read(2) into freshly allocated page buffers, a quarter
	// fewer page faults for `credentials list` over 10,000 credentials (go
	// run ./bench/cli). The vault is a local file, where SQLite's caveats
	// about memory-mapped I/O (network file systems) do not apply.
	db, err := sql.Open("sqlite", storesql.DSN(file)+"&_pragma=mmap_size(268435456)")
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

// migrate brings the schema up to date, one transaction per step
// (storesql.Dialect.Migrate); PRAGMA user_version records the schema.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if migrateLimit > 0 {
		ms = ms[:min(migrateLimit, len(ms))]
	}
	begin := func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) }
	return dialect.Migrate(ctx, begin, userVersion{}, ms, nil)
}

// userVersion keeps the schema version in PRAGMA user_version.
type userVersion struct{}

func (userVersion) Applied(ctx context.Context, tx *sql.Tx) (int, error) {
	return schemaVersion(ctx, tx)
}

func (userVersion) Record(ctx context.Context, tx *sql.Tx, m storesql.Migration) error {
	_, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.Version))
	return err
}

// dialect is the local vault's: SQLite, with grants rows that reach their
// workspace through the agent.
var dialect = func() storesql.Dialect {
	d := storesql.SQLite
	d.GrantsHaveWorkspace = false
	d.Busy = "the vault is busy (another agentkeys process holds the write lock): try again"
	return d
}()

type querier = storesql.Querier

// withTx runs fn in an (immediate) transaction, committing when it returns
// nil and rolling back otherwise.
func withTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	return dialect.WithTx(ctx, db, fn)
}

// storeErr translates a driver error at the store boundary (see
// storesql.Dialect.Err).
func storeErr(what string, err error) error { return dialect.Err(what, err) }

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
