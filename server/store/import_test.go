package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/journal"
	"github.com/agentkeys/agentkeys/server/internal/pgtest"
)

// openInternal opens a store on an empty database of the named kind,
// closed when the test ends.
func openInternal(t *testing.T, kind string) *Store {
	t.Helper()
	cfg := Config{DataDir: t.TempDir()}
	if kind == "PostgreSQL" {
		cfg.DatabaseURL = pgtest.Schema(t)
	}
	cfg.ServerKey, _ = agentkeys.NewKey()
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestImport_Idempotent imports journal entries the ways the journal may
// deliver them — a batch twice (a line imported by two processes, or
// again after a crash), a Begin then its End in a later batch, an End
// whose row another process inserted — and checks that every event is
// stored once with its last outcome, the usage counter counts each begun
// event once, and an id of another workspace is never touched.
func TestImport_Idempotent(t *testing.T) {
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		t.Run(name, func(t *testing.T) {
			s := openInternal(t, name)
			a, err := s.CreateWorkspace(t.Context(), NewWorkspace{Email: "a@example.com", Name: "A"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.CreateWorkspace(t.Context(), NewWorkspace{Email: "b@example.com", Name: "B"})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			ev := func(ws, id string, status int) agentkeys.AuditEvent {
				d := agentkeys.DecisionPending
				if status != 0 {
					d = agentkeys.DecisionAllowed
				}
				return agentkeys.AuditEvent{ID: id, WorkspaceID: ws, Time: now, RequestID: "req" + id, Method: "GET", Host: "h", Path: "/", Status: status, Decision: d}
			}
			begin := func(e agentkeys.AuditEvent) journal.Entry {
				return journal.Entry{Event: e, Begun: true, BeginDecision: agentkeys.DecisionPending}
			}
			end := func(e agentkeys.AuditEvent) journal.Entry { return journal.Entry{Event: e, Ended: true} }
			both := func(e agentkeys.AuditEvent) journal.Entry {
				return journal.Entry{Event: e, Ended: true, Begun: true, BeginDecision: agentkeys.DecisionPending}
			}
			w := s.audit
			steps := [][]journal.Entry{
				{both(ev(a.ID, "evt_1", 200)), begin(ev(a.ID, "evt_2", 0)), begin(ev(b.ID, "evt_b", 0))},
				{both(ev(a.ID, "evt_1", 200)), begin(ev(a.ID, "evt_2", 0))}, // the same lines again
				{end(ev(a.ID, "evt_2", 201))},                               // completed later (pending hint)
				{begin(ev(a.ID, "evt_2", 0)), end(ev(a.ID, "evt_2", 202))},  // re-imported Begin, then a newer End
				{end(ev(a.ID, "evt_b", 500))},                               // workspace A's line naming B's id
			}
			for i, batch := range steps {
				if i == 3 {
					clear(w.pending) // as in another process: the COPY meets an existing row
				}
				if err := w.importEntries(batch); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			list := func(ws string) map[string]*agentkeys.AuditEvent {
				evs, err := s.Workspace(ws).ListAudit(t.Context(), agentkeys.AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]*agentkeys.AuditEvent{}
				for _, e := range evs {
					if m[e.ID] != nil {
						t.Fatalf("event %s stored twice", e.ID)
					}
					m[e.ID] = e
				}
				return m
			}
			got := list(a.ID)
			if len(got) != 2 || got["evt_1"].Status != 200 || got["evt_2"].Status != 202 {
				t.Fatalf("workspace A: %v", got)
			}
			if got["evt_2"].Seq <= got["evt_1"].Seq {
				t.Fatalf("evt_2 seq %d not after evt_1's %d although completed later", got["evt_2"].Seq, got["evt_1"].Seq)
			}
			gotB := list(b.ID)
			if len(gotB) != 1 || gotB["evt_b"].Status != 0 || gotB["evt_b"].Decision != agentkeys.DecisionPending {
				t.Fatalf("workspace B's event changed through A's line: %+v", gotB["evt_b"])
			}
			st, err := s.Workspace(a.ID).Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Usage.RequestsThisMonth != 2 {
				t.Fatalf("requestsThisMonth = %d, want 2 (each begun event once)", st.Usage.RequestsThisMonth)
			}
		})
	}
}

// TestImport_ManyRows: a batch of 70 events, then the same events again
// with 10 new ones among them: every event stored once, usage counting
// each begun event once (on PostgreSQL: COPY, then its fallback).
func TestImport_ManyRows(t *testing.T) {
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		t.Run(name, func(t *testing.T) {
			s := openInternal(t, name)
			ws, err := s.CreateWorkspace(t.Context(), NewWorkspace{Email: "a@example.com", Name: "A"})
			if err != nil {
				t.Fatal(err)
			}
			batch := func(from, to int) []journal.Entry {
				var es []journal.Entry
				for i := from; i < to; i++ {
					es = append(es, journal.Entry{Ended: true, Begun: true, BeginDecision: agentkeys.DecisionPending, Event: agentkeys.AuditEvent{
						ID: fmt.Sprintf("evt_%03d", i), WorkspaceID: ws.ID, Time: time.Now(), RequestID: fmt.Sprintf("req_%03d", i),
						Method: "GET", Host: "h", Path: "/", Status: 200, Decision: agentkeys.DecisionAllowed}})
				}
				return es
			}
			if err := s.audit.importEntries(batch(0, 70)); err != nil {
				t.Fatal(err)
			}
			if err := s.audit.importEntries(batch(0, 80)); err != nil {
				t.Fatal(err)
			}
			evs, err := s.Workspace(ws.ID).ListAudit(t.Context(), agentkeys.AuditFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range evs {
				if seen[e.ID] || e.Status != 200 {
					t.Fatalf("event %+v twice or without its outcome", e)
				}
				seen[e.ID] = true
			}
			if len(evs) != 80 {
				t.Fatalf("%d events, want 80", len(evs))
			}
			st, err := s.Workspace(ws.ID).Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Usage.RequestsThisMonth != 80 {
				t.Fatalf("requestsThisMonth = %d, want 80", st.Usage.RequestsThisMonth)
			}
		})
	}
}
