package store_test

import (
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// BenchmarkAdmitRequest: the request limit's cost on the proxy's path, for
// a workspace with a limit (leases) and one without.
func BenchmarkAdmitRequest(b *testing.B) {
	for _, lim := range []int64{0, 1_000_000_000} {
		name := "unlimited"
		if lim > 0 {
			name = "limited"
		}
		b.Run(name, func(b *testing.B) {
			s, err := store.Open(b.Context(), store.Config{DataDir: b.TempDir(), ServerKey: testKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ws, _ := s.CreateWorkspace(b.Context(), store.NewWorkspace{Email: "a@example.com", Name: "A"})
			if lim > 0 {
				if err := s.SetPlan(b.Context(), ws.ID, store.PlanChange{Plan: agentkeys.PlanScale, Requests: &lim}); err != nil {
					b.Fatal(err)
				}
			}
			r := &agentkeys.Route{WorkspaceID: ws.ID}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.AdmitRequest(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
