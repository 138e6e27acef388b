package store_test

import (
	"context"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/internal/pgtest"
	"github.com/agentkeys/agentkeys/server/store"
)

// BenchmarkProxyPath is the store's share of one hosted proxy request:
// Authorize (cached route, revision check), BeginAudit (journaled),
// OpenSecret, EndAudit (queued), with 64 requests in flight; the import
// into the database runs in the background.
func BenchmarkProxyPath(b *testing.B) {
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		b.Run(name, func(b *testing.B) {
			s, token := benchStore(b, name)
			b.SetParallelism(32) // × GOMAXPROCS(2) = 64 in flight
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					r, err := s.Authorize(ctx, token, "")
					if err != nil {
						b.Error(err)
						return
					}
					e := &agentkeys.AuditEvent{WorkspaceID: r.WorkspaceID, AgentID: r.AgentID, CredentialID: r.Credential.ID, Method: "GET", Host: "api.example.com", Path: "/"}
					if err := s.BeginAudit(ctx, e); err != nil {
						b.Error(err)
						return
					}
					if _, err := s.OpenSecret(ctx, r); err != nil {
						b.Error(err)
						return
					}
					e.Status, e.Decision = 200, agentkeys.DecisionAllowed
					s.EndAudit(ctx, e)
				}
			})
		})
	}
}

// benchStore opens a store with one workspace, credential, agent and
// grant, and returns it with the grant's token.
func benchStore(b *testing.B, kind string) (*store.Store, string) {
	b.Helper()
	cfg := store.Config{ServerKey: testKey(b), DataDir: b.TempDir()}
	if kind != "SQLite" {
		cfg.DatabaseURL = pgtest.Schema(b)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ws, err := s.CreateWorkspace(ctx, store.NewWorkspace{Email: "b@example.com", Name: "B"})
	if err != nil {
		b.Fatal(err)
	}
	v := s.Workspace(ws.ID)
	c, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "c", Type: agentkeys.APIKey, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}})
	if err != nil {
		b.Fatal(err)
	}
	a, err := v.CreateAgent(ctx, "bot")
	if err != nil {
		b.Fatal(err)
	}
	g, err := v.AssignCredential(ctx, a.ID, c.ID)
	if err != nil {
		b.Fatal(err)
	}
	return s, g.ProxyToken
}
