package localvault_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

// slowImport makes vaults opened by this test import their journals only
// when asked (ListAudit, Status, Close), so a test can see lines that are in
// a journal and not yet in the database.
func slowImport(t *testing.T) {
	t.Helper()
	localvault.SetImportIntervals(time.Hour, time.Hour)
	t.Cleanup(func() { localvault.SetImportIntervals(50*time.Millisecond, 5*time.Second) })
}

// journalFiles lists the journal files under home.
func journalFiles(t *testing.T, home string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(home, localvault.AuditDirName, "*.journal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// auditRow is what the tests compare of a stored audit row.
type auditRow struct {
	seq              int64
	decision, method string
	status           int
}

func auditRows(t *testing.T, home string) map[string]auditRow {
	t.Helper()
	rows, err := rawDB(t, home).Query("SELECT id, seq, decision, method, status FROM audit_events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]auditRow{}
	for rows.Next() {
		var id string
		var r auditRow
		if err := rows.Scan(&id, &r.seq, &r.decision, &r.method, &r.status); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// startJournaling starts a helper process that begins n events (ending the
// even ones) and then one more, still in flight, prints "ready" once every
// BeginAudit has returned, and then waits to be killed, importing nothing
// by itself. (End lines are written with the next Begin line, so the last
// Begin also carries the outcomes before it.)
func startJournaling(t *testing.T, cfg localvault.Config, n int) *exec.Cmd {
	t.Helper()
	cmd := helper(t, cfg, "journal-and-wait", fmt.Sprint(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q (%v)\n%s", line, err, stderr.String())
	}
	return cmd
}

// journalAndWait is the helper process's side of startJournaling.
func journalAndWait(ctx context.Context, v *localvault.Vault, n int) error {
	for i := 0; i < n; i++ {
		e := &agentkeys.AuditEvent{Method: "GET", Host: "api.example.com", Path: fmt.Sprintf("/n/%d", i)}
		if err := v.BeginAudit(ctx, e); err != nil {
			return err
		}
		if i%2 == 0 {
			e.Decision, e.Status = agentkeys.DecisionAllowed, 200
			v.EndAudit(ctx, e)
		}
	}
	if err := v.BeginAudit(ctx, &agentkeys.AuditEvent{Method: "POST", Path: "/in-flight"}); err != nil {
		return err
	}
	fmt.Println("ready")
	select {}
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the helper exited cleanly: it was meant to be killed")
	}
}

// wantJournaledRows checks the rows of startJournaling helpers: n+1 per
// helper, even ones completed, odd ones and the one in flight pending.
func wantJournaledRows(t *testing.T, rows map[string]auditRow, helpers, n int) {
	t.Helper()
	if len(rows) != helpers*(n+1) {
		t.Fatalf("%d audit rows, want %d", len(rows), helpers*(n+1))
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.decision]++
	}
	if counts[agentkeys.DecisionAllowed] != helpers*((n+1)/2) || counts[agentkeys.DecisionPending] != helpers*(n/2+1) {
		t.Fatalf("decisions = %v", counts)
	}
}

func openVault(t *testing.T, cfg localvault.Config) *localvault.Vault {
	t.Helper()
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestJournal_SurvivesKill: a process killed (SIGKILL) right after
// BeginAudit returned leaves a journal whose rows the next Open imports;
// then the journal is gone.
func TestJournal_SurvivesKill(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	const n = 41
	cmd := startJournaling(t, cfg, n)
	if rows := auditRows(t, cfg.Home); len(rows) != 0 {
		t.Fatalf("%d rows in the database before the kill: the test would not show the journal's worth", len(rows))
	}
	kill(t, cmd)
	if j := journalFiles(t, cfg.Home); len(j) != 1 {
		t.Fatalf("journals after the kill = %v, want one", j)
	}
	v := openVault(t, cfg)
	wantJournaledRows(t, auditRows(t, cfg.Home), 1, n)
	if j := journalFiles(t, cfg.Home); len(j) != 0 {
		t.Fatalf("journals after Open = %v, want none", j)
	}
	evs, err := v.ListAudit(context.Background(), agentkeys.AuditFilter{Limit: 1000})
	if err != nil || len(evs) != n+1 {
		t.Fatalf("ListAudit = %d events (%v), want %d", len(evs), err, n+1)
	}
	// The request cut off by the kill stays pending.
	if evs[0].Path != "/in-flight" || evs[0].Decision != agentkeys.DecisionPending {
		t.Fatalf("newest event = %+v, want the in-flight request, pending", evs[0])
	}
}

// TestJournal_ImportIsIdempotent: importing the same journal twice leaves
// the same rows with the same sequence numbers.
func TestJournal_ImportIsIdempotent(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	const n = 30
	kill(t, startJournaling(t, cfg, n))
	j := journalFiles(t, cfg.Home)
	if len(j) != 1 {
		t.Fatalf("journals = %v", j)
	}
	saved, err := os.ReadFile(j[0])
	if err != nil || len(saved) == 0 {
		t.Fatalf("journal: %d bytes (%v)", len(saved), err)
	}
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	first := auditRows(t, cfg.Home)
	wantJournaledRows(t, first, 1, n)
	// The same lines again, as a dead process's journal.
	if err := os.WriteFile(filepath.Join(cfg.Home, localvault.AuditDirName, "1-again.journal"), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	v = openVault(t, cfg)
	second := auditRows(t, cfg.Home)
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("rows changed on the second import:\nfirst  %v\nsecond %v", first, second)
	}
	if j := journalFiles(t, cfg.Home); len(j) != 0 {
		t.Fatalf("journals after the second import = %v", j)
	}
}

// TestJournal_TwoKilledProcesses: journals of two processes killed at once
// are both imported.
func TestJournal_TwoKilledProcesses(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	const n = 25
	a, b := startJournaling(t, cfg, n), startJournaling(t, cfg, n)
	kill(t, a)
	kill(t, b)
	if j := journalFiles(t, cfg.Home); len(j) != 2 {
		t.Fatalf("journals = %v, want two", j)
	}
	openVault(t, cfg)
	wantJournaledRows(t, auditRows(t, cfg.Home), 2, n)
}

// TestJournal_LiveProcessSeenByAnother: ListAudit in one process shows the
// rows another, running process has journaled but not imported; when that
// process dies its journal is imported again without duplicates.
func TestJournal_LiveProcessSeenByAnother(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	const n = 20
	cmd := startJournaling(t, cfg, n)
	v := openVault(t, cfg)
	evs, err := v.ListAudit(context.Background(), agentkeys.AuditFilter{})
	if err != nil || len(evs) != n+1 {
		t.Fatalf("ListAudit beside a live process = %d events (%v), want %d", len(evs), err, n+1)
	}
	before := auditRows(t, cfg.Home)
	wantJournaledRows(t, before, 1, n)
	if j := journalFiles(t, cfg.Home); len(j) != 1 {
		t.Fatalf("the live process's journal was removed: %v", j)
	}
	kill(t, cmd)
	v.Close()
	openVault(t, cfg)
	if after := auditRows(t, cfg.Home); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("rows changed when the dead journal was imported again:\nbefore %v\nafter  %v", before, after)
	}
}

// TestJournal_WriteFailureRefuses: when the journal cannot be written (a
// full disk), BeginAudit fails and the proxy refuses the request without
// contacting the upstream; once writes work again, requests go through.
func TestJournal_WriteFailureRefuses(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	v, cfg := mustOpenVault(t)
	host := strings.TrimPrefix(up.URL, "http://")
	in := &agentkeys.CredentialInput{Name: "c", Type: agentkeys.APIKey, AllowedHosts: []string{host}, Secret: agentkeys.Secret{Value: "v"}}
	if _, err := v.CreateCredential(ctx, in); err != nil {
		t.Fatal(err)
	}
	h := proxy.New(v, proxy.Config{})
	call := func() (int, error) {
		resp, err := h.Do(ctx, &agentkeys.ProxyRequest{CredentialName: "c", URL: up.URL + "/x"})
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := call(); err != nil || st != 200 {
		t.Fatalf("first request: %d %v", st, err)
	}
	if _, err := v.ListAudit(ctx, agentkeys.AuditFilter{}); err != nil { // imported: the journal is empty again
		t.Fatal(err)
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Skip("no /dev/full here:", err)
	}
	defer full.Close()
	journal := localvault.SwapJournalFile(v, full)
	if journal == nil {
		t.Fatal("no journal after the first request")
	}
	if err := v.BeginAudit(ctx, &agentkeys.AuditEvent{Method: "GET"}); err == nil {
		t.Fatal("BeginAudit succeeded with a full disk")
	} else if !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("BeginAudit error = %v", err)
	}
	_, err = call()
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	if hits.Load() != 1 {
		t.Fatalf("upstream hits = %d, want 1: a request went out without its audit line", hits.Load())
	}
	localvault.SwapJournalFile(v, journal)
	if st, err := call(); err != nil || st != 200 {
		t.Fatalf("after the disk has room again: %d %v", st, err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	rows := auditRows(t, cfg.Home)
	if len(rows) != 2 {
		t.Fatalf("%d audit rows, want 2 (the refused request's row could not be written)", len(rows))
	}
}

// TestJournal_Encoding: field values with tabs, newlines and backslashes
// come back unchanged; a damaged line in a journal is skipped, the others
// imported.
func TestJournal_Encoding(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	mustInit(t, cfg)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	odd := &agentkeys.AuditEvent{ID: "evt_odd", Time: at, RequestID: "req_odd", WorkspaceID: "ws", AgentName: "a\tb\\c\nd\re",
		Method: "GET", Host: "h.example.com", Path: "/p%20q\\t", Status: 200, Decision: agentkeys.DecisionAllowed,
		Duration: 1234 * time.Microsecond, BytesIn: 5, BytesOut: 6}
	good := &agentkeys.AuditEvent{ID: "evt_good", Time: at, Method: "POST", Decision: agentkeys.DecisionDenied, Status: 403, Code: agentkeys.EDESTINATION}
	damaged := localvault.JournalLine('B', &agentkeys.AuditEvent{ID: "evt_damaged", Time: at, Method: "GET"})
	damaged[len(damaged)/2] ^= 1
	var j []byte
	j = append(j, localvault.JournalLine('E', odd)...)
	j = append(j, damaged...)
	j = append(j, localvault.JournalLine('E', good)...)
	j = append(j, "0000"...) // a line cut off by the kill
	if err := os.MkdirAll(filepath.Join(cfg.Home, localvault.AuditDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Home, localvault.AuditDirName, "2-x.journal"), j, 0o600); err != nil {
		t.Fatal(err)
	}
	v := openVault(t, cfg)
	evs, err := v.ListAudit(ctx, agentkeys.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events = %+v, want evt_odd and evt_good", evs)
	}
	got := evs[1]
	odd.Seq, odd.DurationMs = got.Seq, 1.234
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *odd) {
		t.Fatalf("round trip:\ngot  %+v\nwant %+v", *got, *odd)
	}
	if evs[0].ID != "evt_good" || evs[0].Code != agentkeys.EDESTINATION {
		t.Fatalf("second event = %+v", evs[0])
	}
}

// TestJournal_BackgroundImport: without any read, the importer moves a
// request's row and its outcome into the database by itself, and the
// journal is truncated once everything in it is imported.
func TestJournal_BackgroundImport(t *testing.T) {
	ctx := context.Background()
	v, cfg := mustOpenVault(t)
	e := &agentkeys.AuditEvent{Method: "GET", Path: "/bg"}
	if err := v.BeginAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Decision, e.Status = agentkeys.DecisionAllowed, 204
	v.EndAudit(ctx, e)
	// Polling, not a timing assertion: the deadline is generous.
	var r auditRow
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if r = auditRows(t, cfg.Home)[e.ID]; r.status == 204 {
			break
		}
	}
	if r.status != 204 || r.decision != agentkeys.DecisionAllowed {
		t.Fatalf("row = %+v, want the completed row", r)
	}
	j := journalFiles(t, cfg.Home)
	if len(j) != 1 {
		t.Fatalf("journals = %v", j)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(j[0]); err == nil && fi.Size() == 0 {
			return
		}
	}
	t.Fatal("the journal was not truncated after its lines were imported")
}

// TestJournal_CloseWaitsForInFlight: Close waits briefly for an event begun
// and not yet ended (a handler still finishing its response), so its
// outcome is recorded.
func TestJournal_CloseWaitsForInFlight(t *testing.T) {
	ctx := context.Background()
	v, cfg := mustOpenVault(t)
	e := &agentkeys.AuditEvent{Method: "GET", Path: "/late"}
	if err := v.BeginAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- v.Close() }()
	time.Sleep(20 * time.Millisecond) // Close is waiting (or the outcome is simply early)
	e.Decision, e.Status = agentkeys.DecisionAllowed, 200
	v.EndAudit(ctx, e)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := auditRows(t, cfg.Home)[e.ID]; r.decision != agentkeys.DecisionAllowed {
		t.Fatalf("row = %+v, want the outcome recorded", r)
	}
}

// TestJournal_ImportBatchOfManyRoutes: one import of events from several
// routes, interleaved (rows of one route are written together, binding the
// route's columns once), some still pending: every row holds exactly its
// own event, and Seq follows the order the events began in.
func TestJournal_ImportBatchOfManyRoutes(t *testing.T) {
	slowImport(t)
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	routes := []agentkeys.AuditEvent{
		{AgentID: "agent_a", AgentName: "a", CredentialID: "cred_x", CredentialName: "x", Method: "GET", Host: "api.x.com"},
		{AgentID: "agent_b", AgentName: "b", CredentialID: "cred_x", CredentialName: "x", Method: "POST", Host: "api.x.com"},
		{AgentID: "agent_a", AgentName: "a", CredentialID: "cred_y", CredentialName: "y", Method: "GET", Host: "api.y.com"},
	}
	const n = 300 // per route about 75 allowed: shared statements of 64 and 8 rows, and a few left over
	var sent []*agentkeys.AuditEvent
	for i := range n {
		e := routes[i%len(routes)]
		e.Path = fmt.Sprintf("/p%d", i)
		if err := v.BeginAudit(ctx, &e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, &e)
	}
	for i, e := range sent {
		switch {
		case i%10 == 9: // still running: stays pending
		case i%7 == 0:
			e.Decision, e.Code, e.Status = agentkeys.DecisionDenied, agentkeys.EDESTINATION, 403
			v.EndAudit(ctx, e)
		default:
			e.Decision, e.Status, e.BytesOut, e.Duration = agentkeys.DecisionAllowed, 200+i, int64(i), time.Duration(i)*time.Millisecond
			v.EndAudit(ctx, e)
		}
	}
	got, err := v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1000, AfterSeq: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	// Newest first: reverse to the order they began in.
	slices.Reverse(got)
	for i, g := range got {
		w := sent[i]
		if i > 0 && g.Seq <= got[i-1].Seq {
			t.Errorf("row %d: seq %d after %d", i, g.Seq, got[i-1].Seq)
		}
		if g.ID != w.ID || g.AgentID != w.AgentID || g.AgentName != w.AgentName || g.CredentialID != w.CredentialID ||
			g.CredentialName != w.CredentialName || g.Method != w.Method || g.Host != w.Host || g.Path != w.Path ||
			g.WorkspaceID != v.WorkspaceID() || g.RequestID != w.RequestID || !g.Time.Equal(w.Time) ||
			g.Decision != w.Decision || g.Code != w.Code || g.Status != w.Status || g.BytesOut != w.BytesOut || g.Duration != w.Duration {
			t.Errorf("row %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}
