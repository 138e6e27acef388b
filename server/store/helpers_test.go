package store_test

import (
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/internal/pgtest"
	"github.com/agentkeys/agentkeys/server/store"
)

// backend says which database a test runs on.
type backend struct {
	name string
	// config returns a Config for a fresh, empty database (a temporary
	// directory, or a PostgreSQL schema of its own dropped at cleanup).
	config func(t *testing.T) store.Config
}

func backends() []backend {
	return []backend{
		{name: "SQLite", config: sqliteConfig},
		{name: "PostgreSQL", config: postgresConfig},
	}
}

func testKey(t testing.TB) agentkeys.Key {
	t.Helper()
	k, err := agentkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sqliteConfig(t *testing.T) store.Config {
	return store.Config{DataDir: t.TempDir(), ServerKey: testKey(t)}
}

// postgresConfig uses a schema of its own (see pgtest.Schema).
func postgresConfig(t *testing.T) store.Config {
	t.Helper()
	return store.Config{DatabaseURL: pgtest.Schema(t), DataDir: t.TempDir(), ServerKey: testKey(t)}
}

func mustOpen(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustWorkspace(t *testing.T, s *store.Store, name string) *store.CreatedWorkspace {
	t.Helper()
	ws, err := s.CreateWorkspace(t.Context(), store.NewWorkspace{Email: strings.ToLower(name) + "@example.com", Name: name})
	if err != nil {
		t.Fatalf("CreateWorkspace: %v", err)
	}
	return ws
}

// wiredView returns the workspace view joined to an in-process proxy that
// may reach loopback upstreams (the conformance suite's upstreams are on
// 127.0.0.1).
func wiredView(s *store.Store, id string) agentkeys.Vault {
	w := s.Workspace(id)
	return agentkeys.WithProxy(w, proxy.New(w, proxy.Config{Transport: proxy.NewTransport(proxy.TransportConfig{BlockPrivate: true, AllowLoopback: true})}))
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := agentkeys.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %s), want %s", err, got, code)
	}
}
