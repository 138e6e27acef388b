package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestAdmitRequest_NoDatabasePerRequest: once a workspace with a request
// limit holds a lease, admitting a request touches no database. The store
// gets one connection and the test holds it: a request that needed a read
// (or a lock) would wait for it until its deadline.
func TestAdmitRequest_NoDatabasePerRequest(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			cfg.MaxOpenConns = 1
			s := mustOpen(t, cfg)
			ctx := t.Context()
			for _, limit := range []int64{0, 1_000_000_000} {
				ws := mustWorkspace(t, s, "Limited")
				if limit > 0 {
					if err := s.SetPlan(ctx, ws.ID, store.PlanChange{Plan: agentkeys.PlanScale, Requests: &limit}); err != nil {
						t.Fatal(err)
					}
				}
				r := &agentkeys.Route{WorkspaceID: ws.ID}
				if err := s.AdmitRequest(ctx, r); err != nil { // reads the plan, takes a lease
					t.Fatal(err)
				}
				conn, err := s.DB().Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				for i := range 10_000 {
					if err := s.AdmitRequest(dctx, r); err != nil {
						t.Fatalf("limit %d, request %d: %v (it waited for the database)", limit, i, err)
					}
				}
				cancel()
				conn.Close()
			}
		})
	}
}
