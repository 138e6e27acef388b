package localvault_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

func BenchmarkExpIndexes(b *testing.B) {
	for _, drop := range []string{"", "audit_time", "audit_time,audit_agent,audit_credential"} {
		b.Run("drop="+drop, func(b *testing.B) {
			ctx := context.Background()
			cfg := testConfig(b)
			mustInit(b, cfg)
			if drop != "" {
				db, _ := sql.Open("sqlite", filepath.Join(cfg.Home, localvault.DBFileName))
				for _, ix := range splitComma(drop) {
					if _, err := db.Exec("DROP INDEX " + ix); err != nil {
						b.Fatal(err)
					}
				}
				db.Close()
			}
			v, err := localvault.Open(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			_ = os.Getenv
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				e := &agentkeys.AuditEvent{AgentID: "agt_01kbf3ybx0k3d5x2r6k4wqv1mz", AgentName: "bot", CredentialID: "cred_01kbf3ybx0k3d5x2r6k4wqv1mz", CredentialName: "cred",
					WorkspaceID: "ws_01kbf3ybx0k3d5x2r6k4wqv1mz", Method: "GET", Host: "api.example.com", Path: "/v1/x"}
				if err := v.BeginAudit(ctx, e); err != nil {
					b.Fatal(err)
				}
				e.Decision, e.Status, e.BytesOut = agentkeys.DecisionAllowed, 200, 86
				v.EndAudit(ctx, e)
				if i%1000 == 999 {
					v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1})
				}
			}
			v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1})
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func splitComma(s string) (out []string) {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return
}
