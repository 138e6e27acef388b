package localvault

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Audit durability: a journal per process, imported into SQLite in batches.
//
// BeginAudit and EndAudit each add one line (journal_codec.go) to this
// process's own append-only journal, Home/audit/<pid>-<random>.journal
// (directory 0700, file 0600). BeginAudit writes its line at once, under a
// mutex, in one write(2) together with the End lines waiting, and returns
// once write(2) has returned: the line is then in the kernel's page cache
// and survives the process being killed; an OS crash or power loss may
// lose the last lines. A failed write fails BeginAudit, and the proxy
// refuses the request (fail closed). EndAudit's line waits in memory for
// the next write — the next BeginAudit, or the importer within
// importInterval — so a kill may lose the outcome of the last requests:
// their rows stay "pending", as the contract allows ("it may queue").
//
// The process holds an exclusive lock (flock) on its journal for its
// lifetime, so other processes can tell a live journal from one left by a
// dead process. The journal is created as *.tmp, locked, then renamed, so
// no scanner ever sees an unlocked live journal.
//
// An importer goroutine moves journal lines into audit_events every
// importInterval (sooner when many lines are waiting), in one transaction
// per batch with prepared statements, and then truncates the journal if no
// line arrived meanwhile. Import is idempotent, so a line imported twice (by
// this process and by another one reading a live journal, or after a crash
// between commit and truncation) changes nothing:
//   - a Begin line inserts the row unless its id exists (INSERT … DO NOTHING);
//   - an End line inserts the whole row, or updates the outcome columns of
//     the existing row only when they differ;
//   - last_used_at only ever moves forward (max).
//
// Seq is assigned at import, inside the write transaction: each insert or
// outcome change takes MAX(seq)+1, so Seq still increases whenever a row is
// written or completed. Lines of one batch are merged per event first (a
// Begin and its End become one insert).
//
// ListAudit and Status flush first: they import this process's journal up
// to its end, and read (and import) the journals of other live processes, so
// a row is visible at once to its own process and to `agentkeys audit` run
// beside a running `agentkeys up`. Open, and the importer every
// deadScanInterval, import the journals of dead processes and remove them.
// Close imports everything and removes this process's journal.

const (
	// maxAuditList caps ListAudit's Limit.
	maxAuditList = 1000
	// auditDirName is the journals' directory in Home.
	auditDirName = "audit"
	// journalExt and journalTmpExt name live/dead journals and journals
	// being created.
	journalExt    = ".journal"
	journalTmpExt = ".tmp"
	// maxPendingEnd bytes of waiting End lines are written at once.
	maxPendingEnd = 64 << 10
	// kickBytes of unimported lines wake the importer before its tick.
	kickBytes = 512 << 10
	// maxImportChunk bounds one read of a journal (one or more transactions).
	maxImportChunk = 4 << 20
	// staleTmpAge: an unlocked *.tmp journal older than this was left by a
	// process that died while creating it.
	staleTmpAge = time.Minute
)

// Tunables (tests change them through export_test.go).
var (
	// maxQueued caps the in-memory copy of unimported journal records.
	maxQueued      = 1 << 16
	importInterval = 50 * time.Millisecond
	// closeGrace is how long Close waits for begun events to end.
	closeGrace       = 500 * time.Millisecond
	deadScanInterval = 5 * time.Second
)

type flushReq struct {
	others bool // also read other processes' journals
	done   chan error
}

type auditWriter struct {
	db  *sql.DB
	log *slog.Logger
	dir string

	// mu guards the journal file and is held across each write(2), so
	// lines never interleave and written is exact.
	mu      sync.Mutex
	f       *os.File
	name    string
	written atomic.Int64 // bytes in the journal (since the last truncation)
	// pendEnd holds encoded End lines not yet written, pendRecs their
	// records (see append).
	pendEnd  []byte
	pendRecs []journalEntry
	// queue holds the records of the journal's unimported lines, in order,
	// unless spilled: then the importer reads them back from the file.
	queue   []journalEntry
	spare   []journalEntry // the importer's previous queue, reused
	spilled bool
	broken  error // set when a failed write could not be undone
	closed  bool
	// open holds the ids of events begun and not yet ended, so Close can
	// wait for a response still being finished; drained is closed (and
	// replaced) when it empties.
	open    map[string]struct{}
	drained chan struct{}

	// imported is how much of the journal is in the database. Only the
	// importer goroutine (or close, after it stopped) changes it.
	imported atomic.Int64

	kick    chan struct{}
	flushCh chan *flushReq
	quit    chan struct{}
	done    chan struct{}

	every, scanEvery time.Duration // importInterval, deadScanInterval at creation
	stmts            importStmts
	args             []any // reused by writeEntries
	readBuf          []byte
	lastScan         time.Time
}

// importChunks are the row counts of the multi-row INSERT statements the
// importer prepares, largest first; a run of entries is written with as
// many of the largest as fit, then smaller ones.
var importChunks = [...]int{64, 8, 1}

// sharedChunks are the row counts of the statements for rows that share
// their route columns (sharedCols), largest first. Groups of fewer rows than
// the smallest go to the importChunks statements.
var sharedChunks = [...]int{64, 8}

type importStmts struct {
	maxSeq, credUsed, grantUsed *sql.Stmt
	// begin[i] and end[i] insert importChunks[i] rows: begin ignores rows
	// whose id exists; end replaces their outcome when it differs.
	begin, end [len(importChunks)]*sql.Stmt
	// sharedBegin[i] and sharedEnd[i] do the same for sharedChunks[i] rows
	// with the same route columns, bound once: the driver copies every
	// bound text into C memory, and binding a row's 18 values took about
	// 40% of its insert's CPU.
	sharedBegin, sharedEnd [len(sharedChunks)]*sql.Stmt
}

const auditCols = `id, seq, time, request_id, workspace_id, agent_id, agent_name,
	credential_id, credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out`

const auditColCount = 18

// sharedCols are the columns that the rows of one route share, in the
// order appendSharedArgs binds them; rowCols the others, in the order
// appendRowArgs binds them.
const (
	sharedCols = `workspace_id, agent_id, agent_name, credential_id, credential_name, method, host, decision, code`
	rowCols    = `id, seq, time, request_id, path, status, duration_us, bytes_in, bytes_out`
	sharedN    = 9
	rowN       = 9
)

// routeKey is the values of sharedCols.
type routeKey struct {
	workspaceID, agentID, agentName, credentialID, credentialName, method, host, decision, code string
}

func routeKeyOf(e *agentkeys.AuditEvent) routeKey {
	return routeKey{e.WorkspaceID, e.AgentID, e.AgentName, e.CredentialID, e.CredentialName, e.Method, e.Host, e.Decision, e.Code}
}

func appendSharedArgs(args []any, e *agentkeys.AuditEvent) []any {
	return append(args, e.WorkspaceID, e.AgentID, e.AgentName, e.CredentialID, e.CredentialName, e.Method, e.Host, e.Decision, e.Code)
}

func appendRowArgs(args []any, e *agentkeys.AuditEvent, seq int64) []any {
	return append(args, e.ID, seq, e.Time.UnixMicro(), e.RequestID, e.Path, e.Status, e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
}

func appendAllArgs(args []any, e *agentkeys.AuditEvent, seq int64) []any {
	return append(args, e.ID, seq, e.Time.UnixMicro(), e.RequestID, e.WorkspaceID, e.AgentID, e.AgentName,
		e.CredentialID, e.CredentialName, e.Method, e.Host, e.Path, e.Status, e.Decision, e.Code,
		e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
}

// sharedValues is the VALUES list, for the columns sharedCols then rowCols,
// of n rows whose shared columns are ?1…?9 and whose own are anonymous
// parameters (numbered on from 10, as ?1…?9 come first). Only ?NNN
// parameters have names, and the driver looks each parameter's name up
// by a linear search: numbering every one made binding quadratic.
func sharedValues(n int) string {
	var shared []string
	for i := range sharedN {
		shared = append(shared, fmt.Sprintf("?%d", i+1))
	}
	row := "(" + strings.Join(shared, ", ") + strings.Repeat(", ?", rowN) + ")"
	return strings.Repeat(row+", ", n-1) + row
}

const (
	beginConflict = ` ON CONFLICT (id) DO NOTHING`
	endConflict   = `
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, status = excluded.status, decision = excluded.decision,
				code = excluded.code, duration_us = excluded.duration_us, bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out
			WHERE NOT (audit_events.status = excluded.status AND audit_events.decision = excluded.decision
				AND audit_events.code = excluded.code AND audit_events.duration_us = excluded.duration_us
				AND audit_events.bytes_in = excluded.bytes_in AND audit_events.bytes_out = excluded.bytes_out)`
)

func (s *importStmts) prepare(ctx context.Context, db *sql.DB) error {
	type todo struct {
		st **sql.Stmt
		q  string
	}
	list := []todo{
		{&s.maxSeq, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`},
		{&s.credUsed, `UPDATE credentials SET last_used_at = ?1 WHERE id = ?2 AND COALESCE(last_used_at, 0) < ?1`},
		{&s.grantUsed, `UPDATE grants SET last_used_at = ?1 WHERE agent_id = ?2 AND credential_id = ?3 AND COALESCE(last_used_at, 0) < ?1`},
	}
	row := "(" + strings.Repeat("?, ", auditColCount-1) + "?)"
	insert := `INSERT INTO audit_events (` + auditCols + `) VALUES `
	for i, n := range importChunks {
		values := strings.Repeat(row+", ", n-1) + row
		list = append(list, todo{&s.begin[i], insert + values + beginConflict}, todo{&s.end[i], insert + values + endConflict})
	}
	for i, n := range sharedChunks {
		q := `INSERT INTO audit_events (` + sharedCols + `, ` + rowCols + `) VALUES ` + sharedValues(n)
		list = append(list, todo{&s.sharedBegin[i], q + beginConflict}, todo{&s.sharedEnd[i], q + endConflict})
	}
	for _, p := range list {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			s.close()
			return storeErr("prepare audit import", err)
		}
		*p.st = st
	}
	return nil
}

func (s *importStmts) close() {
	all := append([]*sql.Stmt{s.maxSeq, s.credUsed, s.grantUsed}, s.begin[:]...)
	all = append(append(append(all, s.end[:]...), s.sharedBegin[:]...), s.sharedEnd[:]...)
	for _, st := range all {
		if st != nil {
			st.Close()
		}
	}
}

// newAuditWriter prepares the import statements, imports the journals left
// by dead processes (failures are logged: the journals stay for a later
// import) and starts the importer. This process's journal is created on
// its first audit line.
func newAuditWriter(ctx context.Context, db *sql.DB, home string, log *slog.Logger) (*auditWriter, error) {
	w := &auditWriter{
		db: db, log: log, dir: filepath.Join(home, auditDirName),
		every: importInterval, scanEvery: deadScanInterval,
		open: map[string]struct{}{}, drained: make(chan struct{}),
		kick: make(chan struct{}, 1), flushCh: make(chan *flushReq), quit: make(chan struct{}), done: make(chan struct{}),
	}
	if err := w.stmts.prepare(ctx, db); err != nil {
		return nil, err
	}
	if err := w.scan(false); err != nil {
		w.log.Warn("audit: journals of earlier processes not imported yet", "err", err)
	}
	go w.run()
	return w, nil
}

// append records e. A Begin line is written at once — with the End lines
// waiting, in one write(2) — and append returns once write(2) returned. An
// End line waits in memory for the next write: the next Begin, the
// importer's next run (within importInterval), a flush, Close, or
// maxPendingEnd bytes of End lines.
func (w *auditWriter) append(kind byte, e *agentkeys.AuditEvent) error {
	w.mu.Lock()
	var err error
	switch {
	case w.closed:
		err = agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is closed")
	case w.broken != nil:
		err = w.broken
	default:
		start, recs := len(w.pendEnd), len(w.pendRecs)
		w.pendEnd = appendJournalLine(w.pendEnd, kind, e)
		w.pendRecs = append(w.pendRecs, journalEntry{kind: kind, e: *e})
		if kind == kindBegin || len(w.pendEnd) >= maxPendingEnd {
			if err = w.writePendingLocked(); err != nil && kind == kindBegin {
				// Not in the journal: the caller refuses the request.
				w.pendEnd, w.pendRecs = w.pendEnd[:start], w.pendRecs[:recs]
			}
		}
		switch {
		case kind == kindBegin && err == nil:
			w.open[e.ID] = struct{}{}
		case kind == kindEnd:
			if _, ok := w.open[e.ID]; ok {
				delete(w.open, e.ID)
				if len(w.open) == 0 {
					close(w.drained)
					w.drained = make(chan struct{})
				}
			}
		}
	}
	pending := w.written.Load() - w.imported.Load()
	w.mu.Unlock()
	if err == nil && pending >= kickBytes {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// writePendingLocked writes the waiting lines in one write(2) and moves
// their records to the import queue. On failure nothing of them is left in
// the journal and they stay waiting. w.mu held.
func (w *auditWriter) writePendingLocked() error {
	if len(w.pendEnd) == 0 {
		return nil
	}
	if w.broken != nil {
		return w.broken
	}
	if w.f == nil {
		if err := w.createJournal(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.pendEnd)
	if err == nil && n == len(w.pendEnd) {
		w.written.Add(int64(n))
		for _, r := range w.pendRecs {
			switch {
			case w.spilled:
			case len(w.queue) < maxQueued:
				w.queue = append(w.queue, r)
			default:
				// The importer reads the file back from now on, until it
				// has caught up with it.
				w.spilled, w.queue = true, nil
			}
		}
		clear(w.pendRecs)
		w.pendEnd, w.pendRecs = w.pendEnd[:0], w.pendRecs[:0]
		if cap(w.pendEnd) > 4*maxPendingEnd {
			w.pendEnd = nil
		}
		return nil
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	if n > 0 {
		// Cut the partial write off, or later lines would be glued to it.
		if terr := w.f.Truncate(w.written.Load()); terr != nil {
			w.broken = fmt.Errorf("audit journal %s is damaged (a write failed and could not be undone: %v): reopen the vault", w.name, terr)
		}
	}
	return fmt.Errorf("write audit journal: %w", err)
}

// createJournal creates, locks and publishes this process's journal.
func (w *auditWriter) createJournal() error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return fmt.Errorf("create audit journal directory: %w", err)
	}
	if err := os.Chmod(w.dir, 0o700); err != nil {
		return fmt.Errorf("create audit journal directory: %w", err)
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	base := filepath.Join(w.dir, fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])))
	first := base + journalTmpExt
	if !renameOpenFiles {
		// Windows: no rename of an open file; a scanner that opened the new
		// file before it was locked cannot remove it while it is open.
		first = base + journalExt
	}
	f, err := os.OpenFile(first, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create audit journal: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(first)
		return fmt.Errorf("create audit journal: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	ok, err := tryLock(f)
	if errors.Is(err, errors.ErrUnsupported) {
		ok, err = true, nil
	}
	if err != nil {
		return fail(err)
	}
	if !ok {
		return fail(errors.New("the new journal is locked by another process"))
	}
	if first != base+journalExt {
		if err := os.Rename(first, base+journalExt); err != nil {
			return fail(err)
		}
	}
	w.f, w.name = f, base+journalExt
	w.written.Store(0)
	w.imported.Store(0)
	return nil
}

func (w *auditWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	w.lastScan = time.Now()
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		case <-w.kick:
		case r := <-w.flushCh:
			reqs := []*flushReq{r}
		more:
			for {
				select {
				case r := <-w.flushCh:
					reqs = append(reqs, r)
				default:
					break more
				}
			}
			err := w.importOwn()
			others := false
			for _, r := range reqs {
				others = others || r.others
			}
			if others {
				err = errors.Join(err, w.scan(true))
			}
			for _, r := range reqs {
				r.done <- err
			}
			continue
		}
		if err := w.importOwn(); err != nil {
			w.log.Warn("audit: journal import failed, will retry", "err", err)
		}
		if time.Since(w.lastScan) >= w.scanEvery {
			if err := w.scan(false); err != nil {
				w.log.Warn("audit: journals of other processes not imported", "err", err)
			}
		}
	}
}

// flush imports this process's journal up to its current end (and, with
// others, every other journal in the directory) before returning.
func (w *auditWriter) flush(ctx context.Context, others bool) error {
	if !others {
		w.mu.Lock()
		idle := len(w.pendEnd) == 0 && w.written.Load() == w.imported.Load()
		w.mu.Unlock()
		if idle {
			return nil
		}
	}
	r := &flushReq{others: others, done: make(chan error, 1)}
	select {
	case w.flushCh <- r:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// importOwn imports this process's journal up to its end, then truncates
// it when no line arrived meanwhile. The records come from the in-memory
// queue that mirrors the journal's unimported lines; only when the queue
// overflowed (the database was unavailable for long) is the file read back.
// Importer goroutine (or close) only.
func (w *auditWriter) importOwn() error {
	w.mu.Lock()
	if err := w.writePendingLocked(); err != nil {
		w.log.Warn("audit: outcome lines not written yet", "err", err)
	}
	f, end, spilled := w.f, w.written.Load(), w.spilled
	recs := w.queue
	w.queue = w.spare[:0]
	w.mu.Unlock()
	if f == nil {
		return nil
	}
	if !spilled {
		if err := w.importRecords(recs); err != nil {
			w.mu.Lock()
			if w.spilled {
				w.spare = recs[:0]
			} else {
				w.queue = append(recs, w.queue...)
			}
			w.mu.Unlock()
			return err
		}
		clear(recs)
		w.spare = recs[:0]
		w.imported.Store(end)
	}
	for start := w.imported.Load(); start < end; start = w.imported.Load() {
		n := min(end-start, maxImportChunk)
		if int64(cap(w.readBuf)) < n {
			w.readBuf = make([]byte, n)
		}
		buf := w.readBuf[:n]
		if _, err := f.ReadAt(buf, start); err != nil {
			return fmt.Errorf("read audit journal: %w", err)
		}
		used, err := w.importLines(buf)
		if err != nil {
			return err
		}
		if used == 0 { // a line longer than the chunk: cannot happen with our lines
			return fmt.Errorf("audit journal %s: line longer than %d bytes at offset %d", w.name, maxImportChunk, start)
		}
		w.imported.Add(int64(used))
	}
	if cap(w.readBuf) > 1<<20 {
		w.readBuf = nil // do not keep a burst's buffer
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == f && w.written.Load() == w.imported.Load() && w.written.Load() > 0 {
		if err := f.Truncate(0); err != nil {
			w.log.Warn("audit: journal not truncated", "journal", w.name, "err", err)
			return nil
		}
		w.written.Store(0)
		w.imported.Store(0)
		if w.spilled && len(w.queue) == 0 {
			w.spilled = false // the file and the (empty) queue agree again
		}
	}
	return nil
}

// scan imports the journals of other processes: those of dead processes
// (their lock can be taken) are imported whole and removed; with live,
// those of running processes are imported too (and left in place).
func (w *auditWriter) scan(live bool) error {
	w.lastScan = time.Now()
	entries, err := os.ReadDir(w.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read audit journal directory: %w", err)
	}
	w.mu.Lock()
	own := w.name
	w.mu.Unlock()
	var errs []error
	for _, ent := range entries {
		name := ent.Name()
		path := filepath.Join(w.dir, name)
		if path == own || !ent.Type().IsRegular() {
			continue
		}
		switch {
		case strings.HasSuffix(name, journalExt):
			errs = append(errs, w.importForeign(path, live))
		case strings.HasSuffix(name, journalTmpExt):
			w.removeStaleTmp(path)
		}
	}
	return errors.Join(errs...)
}

func (w *auditWriter) importForeign(path string, live bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // imported and removed by someone else meanwhile
	}
	if err != nil {
		return fmt.Errorf("open audit journal: %w", err)
	}
	defer f.Close()
	dead, err := tryLock(f)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("lock audit journal %s: %w", filepath.Base(path), err)
	}
	if !dead && !live {
		return nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read audit journal %s: %w", filepath.Base(path), err)
	}
	for rest := data; len(rest) > 0; {
		used, err := w.importLines(rest[:min(len(rest), maxImportChunk)])
		if err != nil {
			return err
		}
		if used == 0 {
			break // a trailing partial line: the write never returned
		}
		rest = rest[used:]
	}
	if dead {
		// Everything it holds is in the database: it can go. Closed first
		// (Windows cannot remove an open file); a process that imports it
		// meanwhile does so idempotently.
		f.Close()
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove imported audit journal: %w", err)
		}
		w.log.Debug("audit: imported the journal of an ended process", "journal", filepath.Base(path))
	}
	return nil
}

func (w *auditWriter) removeStaleTmp(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || time.Since(fi.ModTime()) < staleTmpAge {
		return
	}
	if ok, _ := tryLock(f); ok {
		os.Remove(path)
	}
}

// journalEntry is one journal record (a line), or, after merging, one
// event of a batch with its lines merged.
type journalEntry struct {
	kind byte // kindEnd if any End line of the event was in the batch
	e    agentkeys.AuditEvent
}

// importLines imports the complete lines at the start of data and returns
// how many bytes they span. Lines that do not decode are skipped (logged).
func (w *auditWriter) importLines(data []byte) (int, error) {
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		return 0, nil
	}
	used := last + 1
	var recs []journalEntry
	bad := 0
	for rest := data[:used]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		kind, e, err := parseJournalLine(rest[:i])
		rest = rest[i+1:]
		if err != nil {
			bad++
			continue
		}
		recs = append(recs, journalEntry{kind: kind, e: e})
	}
	if bad > 0 {
		w.log.Warn("audit: journal lines that do not decode were skipped", "count", bad)
	}
	if err := w.importRecords(recs); err != nil {
		return 0, err
	}
	return used, nil
}

// importRecords merges records per event (the last End line wins over the
// Begin line) and imports them. An error means nothing may be taken as
// imported (the records are retried later, idempotently).
func (w *auditWriter) importRecords(recs []journalEntry) error {
	if len(recs) == 0 {
		return nil
	}
	order := make([]*journalEntry, 0, len(recs))
	byID := make(map[string]*journalEntry, len(recs))
	for i := range recs {
		r := &recs[i]
		if je := byID[r.e.ID]; je != nil {
			if r.kind == kindEnd {
				*je = *r
			}
			continue
		}
		byID[r.e.ID] = r
		order = append(order, r)
	}
	err := w.writeEntries(order)
	if err == nil {
		return nil
	}
	if !isDataErr(err) {
		return err // busy, I/O, full disk: retried later, idempotently
	}
	// An event the database refuses must not hold up the others: import
	// one by one, and drop (log) only the refused ones.
	for _, je := range order {
		if err := w.writeEntries([]*journalEntry{je}); err != nil {
			if !isDataErr(err) {
				return err
			}
			w.log.Error("audit: event refused by the database, not imported", "event", je.e.ID, "err", err)
		}
	}
	return nil
}

// writeEntries imports entries in one transaction. Each entry takes the
// next Seq; an entry that changes nothing (already imported) leaves a gap,
// which is harmless: Seq only has to increase.
func (w *auditWriter) writeEntries(entries []*journalEntry) error {
	ctx := context.Background()
	return withTx(ctx, w.db, func(tx *sql.Tx) error {
		var seq int64
		if err := tx.StmtContext(ctx, w.stmts.maxSeq).QueryRowContext(ctx).Scan(&seq); err != nil {
			return err
		}
		args, err := w.writeRows(ctx, tx, entries, seq, w.args[:0])
		if err != nil {
			return err
		}
		w.args = args[:0]
		type grantKey struct{ agent, cred string }
		var credUsed map[string]int64
		var grantUsed map[grantKey]int64
		for _, je := range entries {
			e := &je.e
			if je.kind != kindEnd || e.CredentialID == "" || (e.Decision != agentkeys.DecisionAllowed && e.Decision != agentkeys.DecisionError) {
				continue
			}
			used := e.Time.Add(e.Duration).UnixMicro()
			if credUsed == nil {
				credUsed, grantUsed = map[string]int64{}, map[grantKey]int64{}
			}
			credUsed[e.CredentialID] = max(credUsed[e.CredentialID], used)
			if e.AgentID != "" {
				k := grantKey{e.AgentID, e.CredentialID}
				grantUsed[k] = max(grantUsed[k], used)
			}
		}
		if len(credUsed) > 0 {
			st := tx.StmtContext(ctx, w.stmts.credUsed)
			for id, t := range credUsed {
				if _, err := st.ExecContext(ctx, t, id); err != nil {
					return err
				}
			}
			st = tx.StmtContext(ctx, w.stmts.grantUsed)
			for k, t := range grantUsed {
				if _, err := st.ExecContext(ctx, t, k.agent, k.cred); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// writeRows writes entries as rows seq+1, seq+2, … in their order. Rows
// of one kind and route, at least sharedChunks' smallest size of them, are
// written by the shared statements, binding the route's columns once; the
// others by the plain ones. It returns args for reuse.
func (w *auditWriter) writeRows(ctx context.Context, tx *sql.Tx, entries []*journalEntry, seq int64, args []any) ([]any, error) {
	type groupKey struct {
		kind  byte
		route routeKey
	}
	var order []groupKey
	groups := map[groupKey][]int{}
	for i, je := range entries {
		k := groupKey{je.kind, routeKeyOf(&je.e)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	exec := func(st *sql.Stmt, first int) error {
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit events from %s: %w", entries[first].e.ID, err)
		}
		return nil
	}
	var rest [2][]int // entries in groups too small to share: [0] Begin, [1] End
	for _, k := range order {
		idx := groups[k]
		for c, n := range sharedChunks {
			for ; len(idx) >= n; idx = idx[n:] {
				args = appendSharedArgs(args[:0], &entries[idx[0]].e)
				for _, i := range idx[:n] {
					args = appendRowArgs(args, &entries[i].e, seq+1+int64(i))
				}
				st := w.stmts.sharedBegin[c]
				if k.kind == kindEnd {
					st = w.stmts.sharedEnd[c]
				}
				if err := exec(st, idx[0]); err != nil {
					return args, err
				}
			}
		}
		if k.kind == kindEnd {
			rest[1] = append(rest[1], idx...)
		} else {
			rest[0] = append(rest[0], idx...)
		}
	}
	for kind, idx := range rest {
		slices.Sort(idx)
		for c, n := range importChunks {
			for ; len(idx) >= n; idx = idx[n:] {
				args = args[:0]
				for _, i := range idx[:n] {
					args = appendAllArgs(args, &entries[i].e, seq+1+int64(i))
				}
				st := w.stmts.begin[c]
				if kind == 1 {
					st = w.stmts.end[c]
				}
				if err := exec(st, idx[0]); err != nil {
					return args, err
				}
			}
		}
	}
	return args, nil
}

// close waits up to closeGrace for events begun and not yet ended (a
// response still being finished by a handler), stops taking lines, stops
// the importer, imports what is left and removes this process's journal
// once it is all in the database (if not, it stays, and the next Open
// imports it).
func (w *auditWriter) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	if len(w.open) > 0 {
		drained := w.drained
		w.mu.Unlock()
		t := time.NewTimer(closeGrace)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
		w.mu.Lock()
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	err := w.importOwn()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		done := err == nil && len(w.pendEnd) == 0 && w.written.Load() == w.imported.Load()
		if cerr := w.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close audit journal: %w", cerr)
		}
		w.f = nil
		// Removed after closing (Windows cannot remove an open file); a
		// process that imports it meanwhile does so idempotently.
		if done {
			if rerr := os.Remove(w.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("remove audit journal: %w", rerr)
			}
		}
	}
	w.stmts.close()
	if err != nil {
		return fmt.Errorf("audit: %w (the journal stays and is imported by the next open)", err)
	}
	return nil
}

// prepareEvent fills what the store assigns and the caller may leave out.
func (v *Vault) prepareEvent(e *agentkeys.AuditEvent) {
	if e.ID == "" {
		e.ID = agentkeys.NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = v.stamp()
	}
	if e.WorkspaceID == "" {
		e.WorkspaceID = v.wsID
	}
	if e.Decision == "" {
		e.Decision = agentkeys.DecisionPending
	}
	if e.Duration == 0 && e.DurationMs > 0 {
		e.Duration = time.Duration(e.DurationMs * float64(time.Millisecond))
	}
}

// BeginAudit implements agentkeys.ProxyBackend: it records e (assigning ID,
// Time and Decision "pending" when empty) in this process's audit journal
// and returns once the line is written — write(2) returned, in one call
// with any queued outcome lines — so it survives the process being killed,
// not an OS crash. The row reaches the database within about
// importInterval, or at once for this process's ListAudit and Status; Seq
// is assigned then, so e.Seq is not set here. Returns EUNAVAILABLE after
// Close, or the journal's write error: the proxy must then refuse the
// request. Concurrent calls wait for each other only for one write(2).
func (v *Vault) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	if err := v.usable(); err != nil {
		return err
	}
	v.prepareEvent(e)
	if err := v.audit.append(kindBegin, e); err != nil {
		var ae *agentkeys.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("write audit event: %w", err)
	}
	return nil
}

// EndAudit implements agentkeys.ProxyBackend: it queues the outcome
// (status, bytes, duration, decision, code) of an event begun earlier — or
// the whole row, if it was never begun — and returns without a system
// call; the line reaches the journal with the next BeginAudit, or within
// about importInterval. On import the row's outcome is replaced (and it
// gets a new Seq) unless it already holds the same outcome; for a
// forwarded request last_used_at of the credential and the grant moves
// forward. A failed write is logged (the row then stays "pending").
func (v *Vault) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	v.prepareEvent(e)
	if err := v.audit.append(kindEnd, e); err != nil {
		v.log.Warn("audit: outcome not written", "event", e.ID, "err", err)
	}
}

// flushAudit makes audit lines written so far visible in the database:
// this process's own, and with others those of other processes' journals.
// A failure is logged, not returned: the read goes on with what the
// database holds (the lines stay in their journals for a later import).
func (v *Vault) flushAudit(ctx context.Context, others bool) {
	if err := v.audit.flush(ctx, others); err != nil {
		v.log.Warn("audit: journal import before a read failed", "err", err)
	}
}

// ListAudit implements agentkeys.AuditLog: events matching f, newest first
// by Seq (oldest first when f.AfterSeq is set). Limit 0 means 100; at most
// 1000 are returned. Journaled events are imported first: every event this
// process began or ended before the call, and the lines other running
// processes had written, are included.
func (v *Vault) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	if f.Limit < 0 || f.BeforeSeq < 0 || f.AfterSeq < 0 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "audit limit and sequence numbers may not be negative")
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, maxAuditList)
	v.flushAudit(ctx, true)
	where := []string{"1 = 1"}
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.AgentID != "" {
		add("agent_id = ?", f.AgentID)
	}
	if f.CredentialID != "" {
		add("credential_id = ?", f.CredentialID)
	}
	if f.Status != 0 {
		add("status = ?", f.Status)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	order := "DESC"
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
		order = "ASC"
	}
	args = append(args, limit)
	rows, err := v.db.QueryContext(ctx, `SELECT id, seq, time, request_id, workspace_id, agent_id, agent_name, credential_id,
		credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out
		FROM audit_events WHERE `+strings.Join(where, " AND ")+` ORDER BY seq `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, storeErr("list audit", err)
	}
	defer rows.Close()
	out := []*agentkeys.AuditEvent{}
	for rows.Next() {
		var e agentkeys.AuditEvent
		var t, dur int64
		if err := rows.Scan(&e.ID, &e.Seq, &t, &e.RequestID, &e.WorkspaceID, &e.AgentID, &e.AgentName, &e.CredentialID,
			&e.CredentialName, &e.Method, &e.Host, &e.Path, &e.Status, &e.Decision, &e.Code, &dur, &e.BytesIn, &e.BytesOut); err != nil {
			return nil, storeErr("list audit", err)
		}
		e.Time = fromMicros(t)
		e.Duration = time.Duration(dur) * time.Microsecond
		e.DurationMs = float64(dur) / 1000
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list audit", err)
	}
	return out, nil
}
