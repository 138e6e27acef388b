package journal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// memDB is an importer over a map that merges the way a database importer
// must: a Begin entry inserts the event unless it exists; an Ended entry
// inserts it or replaces its outcome. It counts begun events inserted, as
// a usage counter would.
type memDB struct {
	mu     sync.Mutex
	rows   map[string]agentkeys.AuditEvent
	begun  int
	calls  int
	fail   error                 // returned (once) by the next Import
	refuse func(id string) bool  // entries whose id the "database" refuses
	hook   func(entries []Entry) // called before each import
}

var errRefused = errors.New("refused by the database")

func newMemDB() *memDB {
	return &memDB{rows: map[string]agentkeys.AuditEvent{}}
}

func (m *memDB) importEntries(entries []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.hook != nil {
		m.hook(entries)
	}
	if err := m.fail; err != nil {
		m.fail = nil
		return err
	}
	for _, e := range entries {
		if m.refuse != nil && m.refuse(e.Event.ID) {
			return errRefused
		}
	}
	for _, e := range entries {
		old, exists := m.rows[e.Event.ID]
		switch {
		case !exists:
			m.rows[e.Event.ID] = e.Event
			if e.Begun {
				m.begun++
			}
		case e.Ended:
			old.Status, old.Decision, old.Duration = e.Event.Status, e.Event.Decision, e.Event.Duration
			m.rows[e.Event.ID] = old
		}
	}
	return nil
}

func (m *memDB) row(id string) (agentkeys.AuditEvent, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.rows[id]
	return e, ok
}

func (m *memDB) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func open(t *testing.T, dir string, db *memDB) *Journal {
	t.Helper()
	j, err := Open(Config{Dir: dir, Import: db.importEntries, Refused: func(err error) bool { return errors.Is(err, errRefused) },
		Interval: time.Hour, ScanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func event(i int) *agentkeys.AuditEvent {
	return &agentkeys.AuditEvent{ID: "evt_" + strconv.Itoa(i), Time: time.UnixMicro(1_700_000_000_000_000 + int64(i)).UTC(),
		RequestID: "req_" + strconv.Itoa(i), WorkspaceID: "ws_1", AgentID: "agt_1", AgentName: "bot", CredentialID: "cred_1",
		CredentialName: "Resend\tProd\\x\n", Method: "POST", Host: "api.resend.com", Path: "/emails", Decision: agentkeys.DecisionPending}
}

func ended(e *agentkeys.AuditEvent) *agentkeys.AuditEvent {
	x := *e
	x.Status, x.Decision, x.Duration, x.BytesOut = 200, agentkeys.DecisionAllowed, 1500*time.Microsecond, 86
	return &x
}

func journals(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+journalExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJournal_BeginEndMergedAndFlushed(t *testing.T) {
	dir := t.TempDir()
	db := newMemDB()
	var batches [][]Entry
	db.hook = func(entries []Entry) { batches = append(batches, append([]Entry(nil), entries...)) }
	j := open(t, dir, db)
	e := event(1)
	if err := j.Begin(e); err != nil {
		t.Fatal(err)
	}
	if err := j.End(ended(e)); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("batches = %+v, want one entry in one batch", batches)
	}
	got := batches[0][0]
	if !got.Begun || !got.Ended || got.Event.Status != 200 || got.Event.CredentialName != e.CredentialName || !got.Event.Time.Equal(e.Time) {
		t.Fatalf("entry = %+v, want the Begin and End lines merged, text fields and time intact", got)
	}
	fi, err := os.Stat(journals(t, dir)[0])
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal after import: %v, %v; want empty (truncated), mode 0600", fi, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("journal directory mode %v, want 0700", di.Mode().Perm())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(journals(t, dir)); n != 0 {
		t.Fatalf("%d journals left after Close, want 0 (all imported)", n)
	}
	if err := j.Begin(event(2)); agentkeys.ErrorCode(err) != agentkeys.EUNAVAILABLE {
		t.Fatalf("Begin after Close = %v, want EUNAVAILABLE", err)
	}
}

func TestJournal_FailedImportIsRetried(t *testing.T) {
	db := newMemDB()
	db.fail = errors.New("database is locked")
	j := open(t, t.TempDir(), db)
	j.Begin(event(1))
	if err := j.Flush(context.Background(), false); err == nil {
		t.Fatal("Flush = nil, want the import's error")
	}
	if db.count() != 0 {
		t.Fatal("rows imported by a failed import")
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.row("evt_1"); !ok {
		t.Fatal("the event was lost after a failed import, want it retried")
	}
}

func TestJournal_RefusedEntryDoesNotHoldUpOthers(t *testing.T) {
	db := newMemDB()
	db.refuse = func(id string) bool { return id == "evt_2" }
	j := open(t, t.TempDir(), db)
	for i := 1; i <= 3; i++ {
		j.Begin(event(i))
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"evt_1": true, "evt_2": false, "evt_3": true} {
		if _, ok := db.row(id); ok != want {
			t.Errorf("%s imported = %v, want %v", id, ok, want)
		}
	}
}

func TestJournal_DamagedLinesSkipped(t *testing.T) {
	dir := t.TempDir()
	good := appendJournalLine(nil, kindBegin, event(1))
	bad := appendJournalLine(nil, kindBegin, event(2))
	bad[12] ^= 1 // checksum no longer matches
	torn := appendJournalLine(nil, kindBegin, event(3))
	torn = torn[:len(torn)/2] // no newline: a write that never returned
	if err := os.WriteFile(filepath.Join(dir, "1-dead"+journalExt), append(append(good, bad...), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	db := newMemDB()
	open(t, dir, db) // imports the dead journal
	if _, ok := db.row("evt_1"); !ok || db.count() != 1 {
		t.Fatalf("rows = %d (evt_1 %v), want only the intact line imported", db.count(), ok)
	}
	if n := len(journals(t, dir)); n != 0 {
		t.Fatalf("%d journals left, want the dead one removed after import", n)
	}
}

func TestJournal_QueueOverflowReadsTheFileBack(t *testing.T) {
	defer func(n int) { maxQueued = n }(maxQueued)
	maxQueued = 4
	db := newMemDB()
	j := open(t, t.TempDir(), db)
	for i := 0; i < 50; i++ {
		j.Begin(event(i))
		j.End(ended(event(i)))
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if db.count() != 50 || db.begun != 50 {
		t.Fatalf("rows %d, begun %d; want 50 and 50", db.count(), db.begun)
	}
	if e, _ := db.row("evt_49"); e.Status != 200 {
		t.Fatalf("evt_49 = %+v, want its outcome", e)
	}
}

func TestJournal_CloseWaitsForInFlight(t *testing.T) {
	db := newMemDB()
	dir := t.TempDir()
	j, err := Open(Config{Dir: dir, Import: db.importEntries, Interval: time.Hour, CloseGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := event(1)
	j.Begin(e)
	go func() {
		time.Sleep(50 * time.Millisecond)
		j.End(ended(e))
	}()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.row("evt_1"); got.Status != 200 {
		t.Fatalf("row after Close = %+v, want the outcome that ended during the grace period", got)
	}
}

// The helper process: with JOURNAL_HELPER=dir, it begins events and then
// either kills itself (mode kill) or waits to be killed (mode live).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("JOURNAL_HELPER")
	if dir == "" {
		t.Skip("helper process only")
	}
	j, err := Open(Config{Dir: dir, Import: func([]Entry) error { return errors.New("no database in the helper") }, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("JOURNAL_N"))
	for i := 0; i < n; i++ {
		e := event(i)
		if err := j.Begin(e); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			j.End(ended(e)) // written with the next Begin
		}
	}
	os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
	if os.Getenv("JOURNAL_MODE") == "kill" {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	time.Sleep(time.Minute)
}

func helper(t *testing.T, dir, mode string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "JOURNAL_HELPER="+dir, "JOURNAL_MODE="+mode, "JOURNAL_N="+strconv.Itoa(n))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("helper process did not get ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJournal_SurvivesKill(t *testing.T) {
	dir := t.TempDir()
	cmd := helper(t, dir, "kill", 100)
	cmd.Wait()
	db := newMemDB()
	open(t, dir, db) // imports the dead process's journal
	if db.count() != 100 {
		t.Fatalf("%d events after the writer was killed, want all 100 begun ones", db.count())
	}
	// Ends queued behind the next Begin reached the file; the last event's
	// End (if any) may be lost: the row then stays pending.
	if e, _ := db.row("evt_0"); e.Status != 200 {
		t.Fatalf("evt_0 = %+v, want its outcome (written with the next Begin)", e)
	}
	if n := len(journals(t, dir)); n != 0 {
		t.Fatalf("%d journals left, want the dead process's removed", n)
	}
}

func TestJournal_LiveJournalOfAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	helper(t, dir, "live", 10)
	db := newMemDB()
	j := open(t, dir, db)
	if db.count() != 0 {
		t.Fatal("Open imported a live process's journal; want only dead ones")
	}
	if err := j.Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if db.count() != 10 {
		t.Fatalf("%d events after Flush(others), want the live process's 10", db.count())
	}
	if n := len(journals(t, dir)); n != 1 {
		t.Fatalf("%d journals, want the live one left in place", n)
	}
}

func TestJournal_Encoding(t *testing.T) {
	e := ended(event(7))
	e.Path = "/a\\b\tc\rd\ne"
	line := appendJournalLine(nil, kindEnd, e)
	if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("line %q: want exactly one newline, at the end", line)
	}
	kind, got, err := parseJournalLine(line[:len(line)-1])
	if err != nil || kind != kindEnd {
		t.Fatalf("parse: %v, kind %c", err, kind)
	}
	if got.Path != e.Path || got.CredentialName != e.CredentialName || got.Status != 200 || got.Duration != e.Duration || got.BytesOut != 86 {
		t.Fatalf("round trip: got %+v, want %+v", got, e)
	}
	for _, bad := range []string{"", "zzzzzzzz 1\tB", string(line[:20])} {
		if _, _, err := parseJournalLine([]byte(bad)); err == nil {
			t.Errorf("parse(%q) = nil error, want errBadLine", bad)
		}
	}
}

// TestJournal_ReplacedWhenItNeverEmpties: under steady load lines arrive
// while every import runs, so the journal is never found empty and never
// truncated; once rotateBytes of it are imported it is replaced by a new
// file, and the old one is removed when its last lines are in. The files
// stay small, and every event is imported exactly as written.
func TestJournal_ReplacedWhenItNeverEmpties(t *testing.T) {
	defer func(n int64) { rotateBytes = n }(rotateBytes)
	rotateBytes = 16 << 10
	dir := t.TempDir()
	db := newMemDB()
	db.hook = func([]Entry) { time.Sleep(time.Millisecond) } // lines arrive meanwhile
	j, err := Open(Config{Dir: dir, Import: db.importEntries, Interval: time.Millisecond, ScanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var biggest int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			var total int64
			for _, p := range journals(t, dir) {
				if fi, err := os.Stat(p); err == nil {
					total += fi.Size()
				}
			}
			biggest = max(biggest, total)
		}
	}()
	const n = 4000
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				e := event(i)
				if err := j.Begin(e); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(50 * time.Microsecond)
				j.End(ended(e))
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	<-watched
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if db.count() != n || db.begun != n {
		t.Fatalf("rows %d, begun %d; want %d each", db.count(), db.begun, n)
	}
	for i := 0; i < n; i += 397 {
		if e, _ := db.row("evt_" + strconv.Itoa(i)); e.Status != 200 {
			t.Fatalf("evt_%d = %+v, want its outcome", i, e)
		}
	}
	if left := journals(t, dir); len(left) != 0 {
		t.Fatalf("journals left after Close: %v", left)
	}
	// All lines together are about 2 MiB; without replacement the one file
	// grows to about 1 MiB (measured), with it to about 120 KiB.
	if biggest > 640<<10 {
		t.Fatalf("journals on disk reached %d bytes, want them replaced past %d", biggest, rotateBytes)
	}
	t.Logf("largest total on disk: %d bytes", biggest)
}

// holdFirstWrite makes j's next write(2) wait, once, until the returned
// release is called; started is closed when that write is about to run.
// It also counts every write.
func holdFirstWrite(j *Journal) (started <-chan struct{}, release func(), writes *atomic.Int64) {
	st, rel := make(chan struct{}), make(chan struct{})
	n := new(atomic.Int64)
	var once sync.Once
	j.mu.Lock()
	j.beforeWrite = func() {
		n.Add(1)
		once.Do(func() { close(st); <-rel })
	}
	j.mu.Unlock()
	return st, func() { close(rel) }, n
}

// waitPending waits until n lines are waiting for the next write.
func waitPending(t *testing.T, j *Journal, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		j.mu.Lock()
		got := len(j.pendRecs)
		j.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines waiting, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Begin lines that arrive while a write is in flight are written together,
// in one write(2), and each Begin returns only once its own line is written.
func TestJournal_GroupCommit(t *testing.T) {
	db := newMemDB()
	j := open(t, t.TempDir(), db)
	started, release, writes := holdFirstWrite(j)
	const n = 16
	errs := make(chan error, n+1)
	go func() { errs <- j.Begin(event(0)) }()
	<-started
	for i := 1; i <= n; i++ {
		go func() { errs <- j.Begin(event(i)) }()
	}
	waitPending(t, j, n)
	select {
	case err := <-errs:
		t.Fatalf("a Begin returned (%v) before its line was written", err)
	default:
	}
	release()
	for range n + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if w := writes.Load(); w != 2 {
		t.Fatalf("%d writes for %d Begin lines, want 2 (the first, then the %d that waited for it together)", w, n+1, n)
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := db.count(); got != n+1 {
		t.Fatalf("%d rows imported, want %d", got, n+1)
	}
}

// A failed group write fails every Begin whose line it held (their
// requests are refused), leaves none of their lines in the journal, keeps
// the End lines it held for the next write, and the journal goes on
// working once writes succeed again.
func TestJournal_FailedGroupCommitFailsEveryBegin(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Skip("no /dev/full here:", err)
	}
	defer full.Close()
	db := newMemDB()
	j := open(t, t.TempDir(), db)
	first := event(0)
	if err := j.Begin(first); err != nil {
		t.Fatal(err)
	}
	started, release, writes := holdFirstWrite(j)
	errs := make(chan error, 1)
	go func() { errs <- j.Begin(event(1)) }() // its write is held
	<-started
	if err := j.End(ended(first)); err != nil { // queued into the batch that fails
		t.Fatal(err)
	}
	const n = 8
	failed := make(chan error, n)
	for i := 2; i < 2+n; i++ {
		go func() { failed <- j.Begin(event(i)) }()
	}
	waitPending(t, j, n+1)
	j.mu.Lock()
	good := j.f
	j.f = full // the next write fails with ENOSPC
	j.mu.Unlock()
	release()
	if err := <-errs; err != nil {
		t.Fatalf("the held write: %v", err)
	}
	for range n {
		if err := <-failed; err == nil || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Begin in a failed write = %v, want the write's error (ENOSPC)", err)
		}
	}
	if w := writes.Load(); w != 2 {
		t.Fatalf("%d writes, want 2 (the held one, then one for the %d waiting lines)", w, n+1)
	}
	j.SwapFile(good)
	if err := j.Begin(event(100)); err != nil {
		t.Fatalf("Begin once the disk has room again: %v", err)
	}
	if err := j.Flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := db.count(); got != 3 {
		t.Fatalf("%d rows, want 3 (events 0, 1 and 100; none of the failed ones)", got)
	}
	for i := 2; i < 2+n; i++ {
		if _, ok := db.row(event(i).ID); ok {
			t.Fatalf("event %d was imported although its Begin failed", i)
		}
	}
	if r, _ := db.row(first.ID); r.Decision != agentkeys.DecisionAllowed {
		t.Fatalf("event 0 = %+v: its End line, in the failed write, was lost", r)
	}
}
