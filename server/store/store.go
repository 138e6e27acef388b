// Package store is the server's storage: one implementation over
// database/sql used with two drivers, SQLite (modernc.org/sqlite, the
// default: one file in the data directory) and PostgreSQL
// (github.com/jackc/pgx/v5, for several replicas). The SQL and the rules it
// shares with the local vault (checks every writer goes through, refusals,
// queries for credentials, agents, grants and audit) are in
// internal/storesql; the two dialects differ only in their embedded
// migrations, in how a driver error is recognised and in how concurrent
// migrations are serialised. What is the server's own: workspaces, keys,
// the revision-checked route cache (freshness.go) and the audit importer.
//
// The store is multi-tenant: every row carries workspace_id and every query
// is scoped by it. Credential values are sealed (AES-256-GCM) under a data key
// per workspace, wrapped by the server key; workspace keys and proxy tokens
// are stored as HMAC-SHA256 with a pepper derived from the server key, so a
// row inserted by someone without the key authenticates nothing.
//
// *Store implements agentkeys.ProxyBackend for the hosted /v1/proxy;
// Store.Workspace returns a workspace-scoped *Workspace that implements
// agentkeys.Contents (and ProxyBackend, for tests and in-process use). Teams live beside it, one noun per file: users (user.go),
// members and roles (member.go), API keys per member (apikey.go, with
// ActorForKey for server/auth), invitations, pending sign-ups, workspace
// life (workspace_admin.go), admin events of the audit log (adminevent.go)
// and the rate limits replicas share (ratelimit.go).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// DBFileName is the SQLite database in the data directory.
const DBFileName = "server.db"

// Config says where the store is and how to unlock it.
type Config struct {
	// DatabaseURL selects PostgreSQL when it starts with postgres:// or
	// postgresql:// (a search_path parameter picks the schema). Empty: SQLite
	// in DataDir.
	DatabaseURL string
	// DataDir holds server.db (created 0700; the file 0600) when DatabaseURL
	// is empty, and with either database the audit journals (DataDir/audit:
	// see audit.go). Required. Replicas may share it or have their own; a
	// replica's journal left behind by a crash is imported when a process
	// next opens a store on the same directory.
	DataDir string
	// ServerKey wraps every workspace's data key and derives the token
	// pepper. Required; see ParseServerKey.
	ServerKey agentkeys.Key
	// Logger gets diagnostics (never a secret). nil: discard.
	Logger *slog.Logger
	// DefaultPlan is the plan of new workspaces: "" (agentkeys.PlanUnlimited,
	// a self-hosted server) or agentkeys.PlanFree (serve --billing stripe).
	DefaultPlan string
	// LimitReached, when set, is called once per workspace and period when
	// the workspace reaches its request limit (the usage.limit_reached
	// event; the webhooks outbox raises it). Called from the proxied request
	// that found the limit reached; it should return quickly.
	LimitReached func(ctx context.Context, ev LimitReachedEvent)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// MaxOpenConns caps the connection pool (default 8 for SQLite, 32 for
	// PostgreSQL).
	MaxOpenConns int
	// RefreshLease is how long an OAuth refresh may hold a credential before
	// another replica takes over (one killed mid-refresh); 0: 20 s.
	RefreshLease time.Duration
}

// Store is an open server database. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	dialect  dialect
	log      *slog.Logger
	now      func() time.Time
	location string
	plan     string // DefaultPlan
	reached  func(context.Context, LimitReachedEvent)

	root   agentkeys.Key
	pepper []byte

	refreshLease time.Duration
	oauthMu      sync.RWMutex
	oauthApps    map[string]*agentkeys.OAuthApp // the operator's (serve --oauth-config)

	keysMu  sync.RWMutex
	keys    map[dataKeyID]agentkeys.Key // unwrapped data keys (immutable per version)
	sealers map[dataKeyID]*agentkeys.Sealer
	macs    sync.Pool // hash.Hash: HMAC-SHA256 keyed with pepper, for hashToken

	cache  *routeCache
	quotas quotaTable // quota.go
	audit  *auditWriter
	stmts  *statements

	// The freshness poller (freshness.go): running while polling; quit
	// closes at Close.
	pollMu  sync.Mutex
	polling bool
	quit    chan struct{}

	// credential.error raising (webhook.go): when each credential last
	// raised it in this process, and the background raises Close waits for.
	credErrMu   sync.Mutex
	credErrSeen map[string]time.Time
	hooks       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

var _ agentkeys.ProxyBackend = (*Store)(nil)

// dialect is what differs between the two databases: the shared rules'
// (storesql.Dialect) and where its migrations are.
type dialect struct {
	storesql.Dialect
	migrations string // directory in migrationFS
}

const busyMsg = "the database is busy: try again"

var (
	sqliteDialect = dialect{Dialect: withBusy(storesql.SQLite), migrations: "migrations/sqlite"}
	pgDialect     = dialect{Dialect: storesql.Dialect{Name: "postgres", IsUnique: pgUnique, IsBusy: pgBusy, IsDataErr: pgDataErr,
		GrantsHaveWorkspace: true, Busy: busyMsg}, migrations: "migrations/postgres"}
)

func withBusy(d storesql.Dialect) storesql.Dialect {
	d.Busy = busyMsg
	return d
}

// Open opens (and creates or migrates) the store. Returns EINVALID for a
// bad configuration, EUNAVAILABLE when the database cannot be reached or when
// the server key is not the one the database was created with (nothing is
// written then).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.ServerKey == (agentkeys.Key{}) {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no server key: set AGENTKEYS_SERVER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) or --server-key-file")
	}
	if cfg.DataDir == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no data directory: set --data-dir (it holds the audit journals, and the SQLite database unless --database-url names PostgreSQL)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.DefaultPlan {
	case "":
		cfg.DefaultPlan = agentkeys.PlanUnlimited
	case agentkeys.PlanUnlimited, agentkeys.PlanFree:
	default:
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "new workspaces start on plan unlimited or free, not %q", cfg.DefaultPlan)
	}
	s := &Store{log: cfg.Logger, now: cfg.Now, plan: cfg.DefaultPlan, reached: cfg.LimitReached, refreshLease: cfg.RefreshLease, root: cfg.ServerKey, keys: map[dataKeyID]agentkeys.Key{}, sealers: map[dataKeyID]*agentkeys.Sealer{}}
	s.pepper = derive(cfg.ServerKey, "agentkeys token pepper")
	var err error
	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://") || strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		s.dialect = pgDialect
		s.location = redactURL(cfg.DatabaseURL)
		s.db, err = sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "--database-url is not a valid PostgreSQL URL")
		}
		n := cfg.MaxOpenConns
		if n <= 0 {
			n = 32
		}
		s.db.SetMaxOpenConns(n)
		s.db.SetMaxIdleConns(n)
		s.db.SetConnMaxIdleTime(5 * time.Minute)
	case cfg.DatabaseURL != "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--database-url must start with postgres:// (leave it empty for SQLite in the data directory)")
	default:
		s.dialect = sqliteDialect
		if s.db, s.location, err = openSQLite(cfg.DataDir, cfg.MaxOpenConns); err != nil {
			return nil, err
		}
	}
	if err := s.start(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.stmts, err = prepareStatements(ctx, s.db); err != nil {
		s.db.Close()
		return nil, s.storeErr("prepare statements", err)
	}
	s.cache = newRouteCache()
	s.quotas.m = map[string]*quota{}
	s.quit = make(chan struct{})
	if s.audit, err = newAuditWriter(ctx, s, auditDir(cfg.DataDir)); err != nil {
		s.stmts.close()
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// statements are the hot-path statements, prepared once (modernc's SQLite
// driver and database/sql would otherwise parse them on every call).
type statements struct {
	revision    *sql.Stmt // a workspace's revision (freshness.go)
	revisionRow *sql.Stmt // the same with its id, for the poller
	auditSeq    *sql.Stmt
	usage       *sql.Stmt
	credUsed    *sql.Stmt
	grantUsed   *sql.Stmt
}

// newer keeps the later of a stored last_used_at and $1.
const newer = `CASE WHEN last_used_at IS NULL OR last_used_at < $1 THEN $1 ELSE last_used_at END`

func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.revision, `SELECT revision FROM workspaces WHERE id = $1`},
		{&st.revisionRow, `SELECT id, revision FROM workspaces WHERE id = $1`},
		{&st.auditSeq, `UPDATE workspaces SET audit_seq = audit_seq + $1 WHERE id = $2 RETURNING audit_seq, period_start, period_end`},
		{&st.usage, `INSERT INTO usage (workspace_id, month, requests) VALUES ($1, $2, $3)
			ON CONFLICT (workspace_id, month) DO UPDATE SET requests = usage.requests + excluded.requests`},
		{&st.credUsed, `UPDATE credentials SET last_used_at = ` + newer + ` WHERE workspace_id = $2 AND id = $3`},
		{&st.grantUsed, `UPDATE grants SET last_used_at = ` + newer + ` WHERE workspace_id = $2 AND agent_id = $3 AND credential_id = $4`},
	} {
		var err error
		if *p.dst, err = db.PrepareContext(ctx, p.q); err != nil {
			st.close()
			return nil, err
		}
	}
	return st, nil
}

func (st *statements) close() {
	for _, s := range []*sql.Stmt{st.revision, st.revisionRow, st.auditSeq, st.usage, st.credUsed, st.grantUsed} {
		if s != nil {
			s.Close()
		}
	}
}

func (s *Store) start(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.db.PingContext(pctx); err != nil {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot reach the %s database at %s: %s", s.dialect.Name, s.location, driverMessage(err))
	}
	// The key is checked before anything is written to an existing database.
	if err := s.checkKey(ctx, false); err != nil {
		return err
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	return s.checkKey(ctx, true)
}

// openSQLite creates the directory (0700) and the file (0600) before the
// driver does, so the -wal and -shm files inherit 0600 whatever the umask.
func openSQLite(dir string, maxConns int) (*sql.DB, string, error) {
	if dir == "" {
		return nil, "", agentkeys.Errorf(agentkeys.EINVALID, "no data directory: give --data-dir (or --database-url postgres://…)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot create the data directory %s: %v", abs, err)
	}
	file := filepath.Join(abs, DBFileName)
	if strings.ContainsAny(file, "?#") {
		return nil, "", agentkeys.Errorf(agentkeys.EINVALID, "data directory %s contains '?' or '#': choose another", abs)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot create %s: %v", file, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", storesql.DSN(file))
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", file, err)
	}
	if maxConns <= 0 {
		maxConns = 8
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(0)
	return db, file, nil
}

// redactURL drops the password from a database URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the configured database"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}

// Close stops the audit writer (committing what is queued) and closes the
// database. Calls after the first return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.quit != nil {
			close(s.quit)
		}
		var errs []error
		if s.stmts != nil {
			s.returnLeases()
		}
		if s.audit != nil {
			errs = append(errs, s.audit.close())
		}
		s.hooks.Wait()
		if s.stmts != nil {
			s.stmts.close()
		}
		errs = append(errs, s.db.Close())
		s.keysMu.Lock()
		for k := range s.keys {
			s.keys[k] = agentkeys.Key{}
		}
		clear(s.sealers)
		s.keysMu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.Name }

// Location is the SQLite file's path or the PostgreSQL URL without its
// password.
func (s *Store) Location() string { return s.location }

// DB returns the underlying pool (tests and benchmarks inspect rows).
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the database does not answer")
	}
	return nil
}

func (s *Store) stamp() time.Time { return storesql.Stamp(s.now) }

// ---- migrations ----

//go:embed migrations
var migrationFS embed.FS

func (d dialect) loadMigrations() ([]storesql.Migration, error) {
	return storesql.LoadMigrations(migrationFS, d.migrations)
}

// migrationLock is the pg_advisory_lock key serialising migrations of
// replicas that start at once ("agentkeys" in ASCII, truncated).
const migrationLock = 0x6167656e746b6579

// migrate applies the missing migrations, each in its own transaction, on
// one connection. PostgreSQL replicas take an advisory lock first; SQLite
// transactions take the write lock at BEGIN. The applied set is re-read
// under the lock, so no step runs twice.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.dialect.loadMigrations()
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.storeErr("migrate", err)
	}
	defer conn.Close()
	if s.dialect.Name == "postgres" {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
			return s.storeErr("migrate: lock", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return s.storeErr("migrate", err)
	}
	begin := func(ctx context.Context) (*sql.Tx, error) { return conn.BeginTx(ctx, nil) }
	return s.dialect.Migrate(ctx, begin, migrationTable{s}, ms, func(m storesql.Migration) {
		s.log.Info("database migrated", "dialect", s.dialect.Name, "migration", m.Name)
	})
}

// migrationTable records applied migrations in schema_migrations.
type migrationTable struct{ s *Store }

func (t migrationTable) Applied(ctx context.Context, tx *sql.Tx) (int, error) {
	var newest int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest)
	return newest, err
}

func (t migrationTable) Record(ctx context.Context, tx *sql.Tx, m storesql.Migration) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, t.s.stamp().UnixMicro())
	return err
}

// ---- transactions and errors ----

type querier = storesql.Querier

// queryAll runs query on q and returns every row as scan reads it, in
// order (an empty slice when there is none); an error is s.storeErr(what).
func queryAll[T any](ctx context.Context, s *Store, q querier, what string, scan func(storesql.RowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.storeErr(what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.storeErr(what, err)
		}
		out = append(out, v)
	}
	return out, s.storeErr(what, rows.Err())
}

// withTx runs fn in a transaction, committing when it returns nil.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.dialect.WithTx(ctx, s.db, fn)
}

// storeErr translates a driver error at the store boundary (see
// storesql.Dialect.Err).
func (s *Store) storeErr(what string, err error) error { return s.dialect.Err(what, err) }

func pgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgDataErr: a data exception (class 22) or an integrity constraint
// violation (class 23).
func pgDataErr(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

func pgBusy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "55P03")
}

// driverMessage is a driver error's text without anything that could be a
// password (pgx never prints one; SQLite errors name files).
func driverMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return "connection failed"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
