package localvault_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// BenchmarkAuthorizeOpenSecret measures the vault's part of one proxied
// request, with the route cache and with the cache dropped before every
// call. Compare the two lines of one run: go test -bench Authorize -run ^$ ./localvault/
func BenchmarkAuthorizeOpenSecret(b *testing.B) {
	ctx := context.Background()
	v, _ := mustOpenVault(b)
	c, _ := v.CreateCredential(ctx, apiKeyInput("cred", "value"))
	a, _ := v.CreateAgent(ctx, "bot")
	g, _ := v.AssignCredential(ctx, a.ID, c.ID)
	run := func(b *testing.B, drop bool, par int) {
		b.ReportAllocs()
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if drop {
					localvault.DropCache(v)
				}
				r, err := v.Authorize(ctx, g.ProxyToken, "")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.OpenSecret(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cached", func(b *testing.B) { run(b, false, 1) })
	b.Run("uncached", func(b *testing.B) { run(b, true, 1) })
	// 32 × GOMAXPROCS: concurrent freshness checks are coalesced.
	b.Run("cached-par32", func(b *testing.B) { run(b, false, 32) })
	b.Run("uncached-par32", func(b *testing.B) { run(b, true, 32) })
}

// BenchmarkBeginAudit measures durable audit rows from concurrent
// requests (group commit) against one request at a time.
func BenchmarkBeginAudit(b *testing.B) {
	ctx := context.Background()
	v, _ := mustOpenVault(b)
	one := func() {
		e := &agentkeys.AuditEvent{Method: "GET", Host: "api.example.com", Path: "/x"}
		if err := v.BeginAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
		e.Decision, e.Status = agentkeys.DecisionAllowed, 200
		v.EndAudit(ctx, e)
	}
	b.Run("serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			one()
		}
	})
	b.Run("parallel64", func(b *testing.B) {
		b.SetParallelism(32) // 32 × GOMAXPROCS(2) = 64 concurrent requests here
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	})
}

// BenchmarkAuditImport measures the whole cost of one proxied request's
// audit trail: the Begin and End journal lines and their import into
// SQLite, forced every batch requests (as the importer's batches would be:
// at 20,000 requests a second, 50 ms is 1,000 rows). cpu-µs/op is the
// process's CPU time (user and system) per request, steadier than ns/op on
// a shared machine.
func BenchmarkAuditImport(b *testing.B) {
	for _, batch := range []int{100, 1000, 4000} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			ctx := context.Background()
			v, _ := mustOpenVault(b)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				e := &agentkeys.AuditEvent{AgentID: "agent_x", AgentName: "bot", CredentialID: "cred_x", CredentialName: "cred",
					Method: "GET", Host: "api.example.com", Path: "/x"}
				if err := v.BeginAudit(ctx, e); err != nil {
					b.Fatal(err)
				}
				e.Decision, e.Status, e.BytesOut = agentkeys.DecisionAllowed, 200, 86
				v.EndAudit(ctx, e)
				if i%batch == batch-1 {
					if _, err := v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
