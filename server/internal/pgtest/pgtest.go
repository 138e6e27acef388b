// Package pgtest gives tests a PostgreSQL schema of their own on the server
// named by AGENTKEYS_TEST_DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// EnvVar names the PostgreSQL server tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvVar = "AGENTKEYS_TEST_DATABASE_URL"

// Schema creates a new schema, dropped when the test ends, and returns the
// database URL with search_path set to it. Without EnvVar the test is
// skipped with a message (and fails when CI=true).
func Schema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (CI=true): PostgreSQL tests cannot run", EnvVar)
		}
		t.Skipf("%s is not set: PostgreSQL tests skipped (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvVar)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvVar, err)
	}
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
