package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestAudit_SurvivesKill: an event BeginAudit returned for is in the
// database after the process that wrote it is killed (SIGKILL, so nothing
// is flushed on the way out): the next store opened on the same data
// directory imports the dead process's journal, counts the request once,
// and removes the journal.
func TestAudit_SurvivesKill(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s := mustOpen(t, cfg)
			ws := mustWorkspace(t, s, "Acme")
			s.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestAuditKillHelper$")
			cmd.Env = append(os.Environ(), "AUDIT_KILL_HELPER=1", "AUDIT_KILL_DB="+cfg.DatabaseURL, "AUDIT_KILL_DIR="+cfg.DataDir,
				"AUDIT_KILL_KEY="+base64.StdEncoding.EncodeToString(cfg.ServerKey[:]), "AUDIT_KILL_WS="+ws.ID)
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper did not die by SIGKILL: %v\n%s", cmd.ProcessState, out)
			}
			if n := len(journalFiles(t, cfg.DataDir)); n != 1 {
				t.Fatalf("%d journals after the kill, want the dead process's one", n)
			}

			s2 := mustOpen(t, cfg) // imports the dead process's journal
			v := s2.Workspace(ws.ID)
			evs, err := v.ListAudit(t.Context(), agentkeys.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 20 {
				t.Fatalf("%d events after the kill, want the 20 begun", len(evs))
			}
			st, err := v.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Usage.RequestsThisMonth != 20 {
				t.Fatalf("requestsThisMonth = %d, want 20", st.Usage.RequestsThisMonth)
			}
			if n := len(journalFiles(t, cfg.DataDir)); n != 0 {
				t.Fatalf("%d journals left after the import, want 0", n)
			}
		})
	}
}

// TestAuditKillHelper begins 20 events (ending every other one) and kills
// its own process.
func TestAuditKillHelper(t *testing.T) {
	if os.Getenv("AUDIT_KILL_HELPER") == "" {
		t.Skip("helper process only")
	}
	raw, _ := base64.StdEncoding.DecodeString(os.Getenv("AUDIT_KILL_KEY"))
	var key agentkeys.Key
	copy(key[:], raw)
	s, err := store.Open(context.Background(), store.Config{DatabaseURL: os.Getenv("AUDIT_KILL_DB"), DataDir: os.Getenv("AUDIT_KILL_DIR"), ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		e := &agentkeys.AuditEvent{WorkspaceID: os.Getenv("AUDIT_KILL_WS"), Method: "GET", Host: "api.example.com", Path: "/", CredentialID: "cred_x"}
		if err := s.BeginAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			e.Status, e.Decision = 200, agentkeys.DecisionAllowed
			s.EndAudit(context.Background(), e)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

func journalFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "audit", "*.journal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
