package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestAudit_TwoStoresConcurrently: two stores (replicas) on one database
// write begun and completed events for one workspace at once. Every event
// is stored once, completed, with a sequence number no other row has; the
// usage counter counts the forwarded ones; refusals are not counted.
func TestAudit_TwoStoresConcurrently(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s1 := mustOpen(t, cfg)
			s2 := mustOpen(t, cfg)
			ws := mustWorkspace(t, s1, "Acme")
			const perStore = 150
			var wg sync.WaitGroup
			for _, s := range []*store.Store{s1, s2} {
				for i := 0; i < perStore; i++ {
					wg.Add(1)
					go func(s *store.Store, i int) {
						defer wg.Done()
						e := &agentkeys.AuditEvent{WorkspaceID: ws.ID, Method: "GET", Host: "api.example.com", Path: "/", CredentialID: "cred_x"}
						if i%10 == 0 { // a refusal: begun as denied
							e.Decision, e.Status, e.Code = agentkeys.DecisionDenied, 403, agentkeys.EDESTINATION
						}
						if err := s.BeginAudit(t.Context(), e); err != nil {
							t.Error(err)
							return
						}
						if e.Decision != agentkeys.DecisionDenied {
							e.Status, e.Decision, e.Duration = 200, agentkeys.DecisionAllowed, time.Millisecond
						}
						s.EndAudit(t.Context(), e)
					}(s, i)
				}
			}
			wg.Wait()
			s1.Close() // flush queued outcomes
			s2.Close()
			s3 := mustOpen(t, cfg)
			v := s3.Workspace(ws.ID)
			var all []*agentkeys.AuditEvent
			for before := int64(0); ; {
				page, err := v.ListAudit(t.Context(), agentkeys.AuditFilter{BeforeSeq: before, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, page...)
				if len(page) < 100 {
					break
				}
				before = page[len(page)-1].Seq
			}
			if len(all) != 2*perStore {
				t.Fatalf("%d events stored, want %d", len(all), 2*perStore)
			}
			seqs := map[int64]bool{}
			for _, e := range all {
				if seqs[e.Seq] {
					t.Fatalf("seq %d twice", e.Seq)
				}
				seqs[e.Seq] = true
				if e.Decision == agentkeys.DecisionPending {
					t.Fatalf("event %s never completed", e.ID)
				}
			}
			st, err := v.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(2 * perStore * 9 / 10); st.Usage.RequestsThisMonth != want {
				t.Fatalf("requestsThisMonth = %d, want %d", st.Usage.RequestsThisMonth, want)
			}
		})
	}
}

// TestAudit_LogLinesNameTheRequest: the audit writer's lines about a lost
// outcome carry the request_id of the proxied request it belongs to (the
// writer runs in the background, without the request's context).
func TestAudit_LogLinesNameTheRequest(t *testing.T) {
	var logs bytes.Buffer
	cfg := sqliteConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	s := mustOpen(t, cfg)
	ws := mustWorkspace(t, s, "Acme")
	s.Close()
	s.EndAudit(context.Background(), &agentkeys.AuditEvent{WorkspaceID: ws.ID, RequestID: "req_lost1", Method: "GET", Host: "api.example.com", Path: "/"})
	var rec map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "outcome dropped") {
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rec == nil {
		t.Fatalf("no line about the dropped outcome: %s", logs.String())
	}
	if rec["request_id"] != "req_lost1" {
		t.Fatalf("line without the request's id: %v", rec)
	}
}
