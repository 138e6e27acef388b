// Package localvault is the personal vault: one SQLite file (Home/vault.db)
// holding credentials sealed with AES-256-GCM under a per-workspace data key,
// agents, grants and the audit log. The data key is wrapped by a root key from
// AGENTKEYS_MASTER_KEY, a passphrase-wrapped key file (Home/vault.key), or
// the OS keychain (service "agentkeys", account = the vault's workspace id),
// in that order. There is never a plaintext fallback.
//
// *Vault implements agentkeys.Contents (what the CLI, TUI and MCP server
// read and change, once cmd joins it to the proxy with agentkeys.WithProxy)
// and agentkeys.ProxyBackend (what the proxy reads). Several processes may use one vault
// at a time: every transaction takes the write lock at BEGIN, and a proxy's
// in-memory caches notice commits made by other processes on the next call.
// Audit events go first to a per-process journal in Home/audit and reach
// the database in batches (audit.go). The rules and SQL it shares with the
// server's store are in internal/storesql.
//
// *Vault has no Proxy: the proxy is built on it (proxy.New) and the two are
// joined where the app is wired, with agentkeys.WithProxy (cmd/vault.go).
package localvault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// DBFileName is the vault's database file in Home.
const DBFileName = "vault.db"

// Config says where the vault is and how to unlock it.
type Config struct {
	Home       string       // directory holding vault.db (AGENTKEYS_HOME, default ~/.agentkeys); created 0700
	MasterKey  string       // AGENTKEYS_MASTER_KEY: base64 of 32 bytes; takes precedence
	Passphrase string       // AGENTKEYS_PASSPHRASE: unlocks/creates the passphrase-wrapped key file
	Keychain   KeyStore     // nil: SystemKeychain with a few seconds' timeout
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
	// RefreshLease is how long an OAuth refresh may hold a credential before
	// another process takes over (one killed mid-refresh); 0: 20 s.
	RefreshLease time.Duration
}

// InitOptions changes how Init creates a vault.
type InitOptions struct {
	UsePassphrase bool // init --passphrase: wrap the root key with Config.Passphrase (argon2id) in a key file
}

// InitResult is what Init created.
type InitResult struct {
	Path         string // vault.db path
	KeySource    string // "environment" | "passphrase" | "keychain"
	WorkspaceID  string
	WorkspaceKey string // the local ak_ws_ key, shown once; only its hash is stored
}

// Vault is an open personal vault. It is safe for concurrent use.
type Vault struct {
	log       *slog.Logger
	now       func() time.Time
	home      string
	path      string
	keySource string
	keychain  KeyStore // where a keychain vault's root key is replaced on rotation
	db        *sql.DB

	wsID, wsName, plan string

	keys *keyRing

	cache *routeCache
	shm   *shmWatch // the WAL-index header mapping the cache checks first
	audit *auditWriter

	refreshLease time.Duration // Config.RefreshLease

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ agentkeys.Contents     = (*Vault)(nil)
	_ agentkeys.ProxyBackend = (*Vault)(nil)
)

func (cfg *Config) defaults() error {
	if cfg.Home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return agentkeys.Errorf(agentkeys.EINVALID, "cannot find your home directory: set AGENTKEYS_HOME")
		}
		cfg.Home = filepath.Join(h, ".agentkeys")
	}
	abs, err := filepath.Abs(cfg.Home)
	if err != nil {
		return fmt.Errorf("vault home: %w", err)
	}
	cfg.Home = abs
	if cfg.Keychain == nil {
		cfg.Keychain = SystemKeychain{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// Init creates a vault in cfg.Home: the directory (0700), vault.db (0600),
// the root key (from Config.MasterKey; else a new one wrapped by the
// passphrase in Home/vault.key when opts.UsePassphrase or Config.Passphrase
// is set; else a new one stored in the OS keychain), the workspace
// ("Personal", plan "local"), its data key and its ak_ws_ workspace key,
// returned once.
//
// Returns ECONFLICT if a vault (or a key file) exists there, changing
// nothing; EINVALID for a bad master key or --passphrase without a
// passphrase; EUNAVAILABLE naming every option when no key source works.
// On failure everything Init created is removed again.
func Init(ctx context.Context, cfg Config, opts InitOptions) (res *InitResult, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.Home, DBFileName)
	kfPath := filepath.Join(cfg.Home, KeyFileName)
	for _, p := range []string{dbPath, kfPath} {
		ok, err := fileExists(p)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		if ok {
			return nil, agentkeys.Errorf(agentkeys.ECONFLICT,
				"a vault already exists at %s: use it, or set AGENTKEYS_HOME to an empty directory for a new one", p)
		}
	}
	usePass := opts.UsePassphrase || cfg.Passphrase != ""
	switch {
	case cfg.MasterKey != "" && opts.UsePassphrase:
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--passphrase and AGENTKEYS_MASTER_KEY are both given: unset one of them")
	case opts.UsePassphrase && cfg.Passphrase == "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "init --passphrase needs the passphrase: set AGENTKEYS_PASSPHRASE")
	}

	var root agentkeys.Key
	source := SourceKeychain
	if cfg.MasterKey != "" {
		if root, err = parseMasterKey(cfg.MasterKey); err != nil {
			return nil, err
		}
		source = SourceEnvironment
	} else {
		if root, err = agentkeys.NewKey(); err != nil {
			return nil, err
		}
		if usePass {
			source = SourcePassphrase
		}
	}
	wsID := agentkeys.NewID("ws")
	wsKey := agentkeys.NewWorkspaceKey()
	dataKey, err := agentkeys.NewKey()
	if err != nil {
		return nil, err
	}
	wrapped, err := agentkeys.WrapKey(root, dataKey, agentkeys.DataKeyAAD(wsID, 1))
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Home, err)
	}
	if err := os.Chmod(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", cfg.Home, err)
	}

	// Undo on failure whatever this call created.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	switch source {
	case SourcePassphrase:
		if err := writeKeyFile(kfPath, cfg.Passphrase, root); err != nil {
			if errors.Is(err, os.ErrExist) {
				return nil, agentkeys.Errorf(agentkeys.ECONFLICT, "a vault already exists at %s", kfPath)
			}
			return nil, err
		}
		undo = append(undo, func() { os.Remove(kfPath) })
	case SourceKeychain:
		user := keychainUser(wsID)
		if err := cfg.Keychain.Set(KeychainService, user, encodeKey(root)); err != nil {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "no place for the vault key (%v): %s", err, noKeyHelp)
		}
		undo = append(undo, func() { _ = cfg.Keychain.Delete(KeychainService, user) })
		// Read it back: some keychains accept a write they cannot return.
		got, err := cfg.Keychain.Get(KeychainService, user)
		if err != nil || got != encodeKey(root) {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the OS keychain did not return the vault key it was given: %s", noKeyHelp)
		}
	}

	if err := createFile(dbPath); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, agentkeys.Errorf(agentkeys.ECONFLICT, "a vault already exists at %s", dbPath)
		}
		return nil, fmt.Errorf("create %s: %w", dbPath, err)
	}
	undo = append(undo, func() {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(dbPath + suffix)
		}
	})
	db, err := openDB(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	now := cfg.Now().UTC().UnixMicro()
	err = withTx(ctx, db, func(tx *sql.Tx) error {
		stmts := []struct {
			q    string
			args []any
		}{
			{`INSERT INTO workspaces (id, name, plan, key_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
				[]any{wsID, "Personal", "local", agentkeys.HashToken(wsKey), now}},
			{`INSERT INTO data_keys (workspace_id, version, wrapped, created_at) VALUES (?, 1, ?, ?)`,
				[]any{wsID, wrapped, now}},
			{`INSERT INTO meta (key, value) VALUES ('key_source', ?), ('created_at', ?)`,
				[]any{source, time.UnixMicro(now).UTC().Format(time.RFC3339)}},
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
				return fmt.Errorf("init: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("init: close: %w", err)
	}
	cfg.Logger.Info("vault created", "path", dbPath, "keySource", source, "workspace", wsID)
	return &InitResult{Path: dbPath, KeySource: source, WorkspaceID: wsID, WorkspaceKey: wsKey}, nil
}

// Open opens the vault in cfg.Home. Returns ENOTFOUND when there is none
// ("run `agentkeys init`"), EUNAVAILABLE when its schema is newer than this
// binary knows, when no root key is available (naming every option) or when
// the key is wrong (naming the key source), EINVALID for a malformed
// AGENTKEYS_MASTER_KEY. Nothing is written before the key is checked.
func Open(ctx context.Context, cfg Config) (*Vault, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.Home, DBFileName)
	ok, err := fileExists(dbPath)
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no vault at %s: run `agentkeys init`", dbPath)
	}
	db, err := openDB(dbPath)
	if err != nil {
		return nil, err
	}
	v, err := open(ctx, cfg, db, dbPath)
	if err != nil {
		db.Close()
		return nil, err
	}
	return v, nil
}

func open(ctx context.Context, cfg Config, db *sql.DB, dbPath string) (*Vault, error) {
	schema, err := checkSchema(ctx, db, dbPath)
	if err != nil {
		if agentkeys.ErrorCode(err) == agentkeys.EINTERNAL {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s cannot be read as an agentkeys vault (%v)", dbPath, err)
		}
		return nil, err
	}
	v := &Vault{log: cfg.Logger, now: cfg.Now, home: cfg.Home, path: dbPath, db: db, keychain: cfg.Keychain, refreshLease: cfg.RefreshLease}
	var initSource string
	err = db.QueryRowContext(ctx, `SELECT id, name, plan,
		COALESCE((SELECT value FROM meta WHERE key = 'key_source'), '') FROM workspaces LIMIT 1`).
		Scan(&v.wsID, &v.wsName, &v.plan, &initSource)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s holds no workspace: it was not created by `agentkeys init`", dbPath)
	}
	if err != nil {
		return nil, storeErr("read workspace", err)
	}
	root, source, err := openRootKey(cfg, cfg.Keychain, cfg.Home, v.wsID, initSource)
	if err != nil {
		return nil, err
	}
	v.keySource = source
	v.keys = &keyRing{root: root, wsID: v.wsID, keys: map[int]agentkeys.Key{}}
	if err := v.keys.load(ctx, db); err != nil {
		if !errors.Is(err, agentkeys.ErrDecrypt) {
			return nil, err
		}
		// A key rotation interrupted after the new key was saved (rotate.go).
		finished, ferr := finishRotation(ctx, db, v.keys)
		if ferr != nil {
			return nil, ferr
		}
		if !finished {
			return nil, wrongKeyError(source, cfg.Home)
		}
	}
	// Only now, with the key proven, may anything be written.
	if schema < SchemaVersion() {
		if err := migrate(ctx, db); err != nil {
			return nil, fmt.Errorf("upgrade vault schema: %w", err)
		}
	}
	if v.cache, err = newRouteCache(ctx, db); err != nil {
		return nil, err
	}
	if v.audit, err = newAuditWriter(db, cfg.Home, v.log); err != nil {
		v.cache.close()
		return nil, err
	}
	// Last, as nothing may fail after it: the mapping's descriptor must
	// outlive the database (see shmWatch), so only Close releases it.
	v.shm = openShmWatch(dbPath)
	v.cache.shm = v.shm
	v.log.Debug("vault opened", "path", dbPath, "keySource", source)
	return v, nil
}

// Close flushes queued audit writes and closes the database. It first
// waits (up to half a second) for audit events begun and not yet ended, so
// a response a handler is still finishing gets its outcome recorded; an
// EndAudit after Close is dropped (logged) and its row stays "pending".
// Calls after the first return the first result.
func (v *Vault) Close() error {
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		var errs []error
		if v.audit != nil {
			errs = append(errs, v.audit.close())
		}
		if v.cache != nil {
			errs = append(errs, v.cache.close())
		}
		errs = append(errs, v.db.Close())
		v.shm.close() // after the database: see shmWatch
		v.keys.wipe()
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}

// Path returns the vault file's path.
func (v *Vault) Path() string { return v.path }

// KeySource says where the root key came from: "environment", "passphrase"
// or "keychain".
func (v *Vault) KeySource() string { return v.keySource }

// WorkspaceID returns the vault's workspace id.
func (v *Vault) WorkspaceID() string { return v.wsID }

// usable returns EUNAVAILABLE after Close.
func (v *Vault) usable() error {
	if v.closed.Load() {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is closed")
	}
	return nil
}

// Status implements agentkeys.Contents: mode "local", the vault path, the key
// source, plan "unlimited" (the local vault has no limits), and counts (requests this month are
// audit rows since the first of the month, UTC, that were forwarded;
// journaled rows are imported first, as for ListAudit).
func (v *Vault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	v.flushAudit(ctx, true)
	now := v.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	st := &agentkeys.WorkspaceStatus{
		ID: v.wsID, Name: v.wsName, Plan: agentkeys.PlanUnlimited, Mode: agentkeys.ModeLocal,
		Location: v.path, KeySource: v.keySource,
	}
	err := v.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM credentials WHERE workspace_id = ?1),
		(SELECT COUNT(*) FROM agents WHERE workspace_id = ?1),
		(SELECT COUNT(*) FROM audit_events WHERE time >= ?2 AND decision <> ?3)`,
		v.wsID, month, agentkeys.DecisionDenied).
		Scan(&st.Usage.Credentials, &st.Usage.Agents, &st.Usage.RequestsThisMonth)
	if err != nil {
		return nil, storeErr("status", err)
	}
	return st, nil
}

// stamp is the vault's clock, in the precision the store keeps.
func (v *Vault) stamp() time.Time { return storesql.Stamp(v.now) }
