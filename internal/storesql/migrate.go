package storesql

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Migration is one numbered schema step; version N turns schema N-1 into N.
// How a store records which steps it applied is its own (the local vault:
// PRAGMA user_version; the server: a schema_migrations table under an
// advisory lock).
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the migrations in dir of fsys, in order. File names
// are NNNN_description.sql, numbered from 1 without gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: n, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.Name, i+1)
		}
	}
	return out, nil
}

// MigrationLog is how a store records which migrations it applied (the
// local vault: PRAGMA user_version; the server: a schema_migrations table).
type MigrationLog interface {
	// Applied returns the newest version applied, read within tx.
	Applied(ctx context.Context, tx *sql.Tx) (int, error)
	// Record notes within tx that m was applied.
	Record(ctx context.Context, tx *sql.Tx, m Migration) error
}

// Migrate applies the migrations of ms that log does not have, in order,
// each in its own transaction from begin. The applied version is re-read
// inside each transaction (which takes the write lock, or runs under the
// caller's lock), so stores migrating at once never apply a step twice;
// applied, when not nil, is told of each step applied. Returns EUNAVAILABLE
// when the database is newer than ms: this binary is too old for it.
func (d Dialect) Migrate(ctx context.Context, begin func(context.Context) (*sql.Tx, error), log MigrationLog, ms []Migration, applied func(Migration)) error {
	for _, m := range ms {
		tx, err := begin(ctx)
		if err != nil {
			return d.Err("migrate", err)
		}
		done, err := d.apply(ctx, tx, log, ms, m)
		if err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return d.Err("migrate", err)
		}
		if done && applied != nil {
			applied(m)
		}
	}
	return nil
}

func (d Dialect) apply(ctx context.Context, tx *sql.Tx, log MigrationLog, ms []Migration, m Migration) (bool, error) {
	v, err := log.Applied(ctx, tx)
	if err != nil {
		return false, d.Err("read schema version", err)
	}
	switch {
	case v > len(ms):
		return false, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"the database was written by a newer agentkeys (schema %d, this binary knows %d): upgrade agentkeys", v, len(ms))
	case v >= m.Version:
		return false, nil
	case v != m.Version-1:
		return false, fmt.Errorf("schema is at %d, cannot apply migration %s", v, m.Name)
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if err := log.Record(ctx, tx, m); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.Name, err)
	}
	return true, nil
}
