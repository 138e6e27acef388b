// Package journal makes audit events durable before a request is forwarded,
// cheaply: each process appends them to an append-only file of its own,
// and an importer goroutine moves them into a database in batches.
//
// Begin adds one line (codec.go) to this process's journal,
// Dir/<pid>-<random>.journal (directory 0700, file 0600), and returns once
// a write(2) holding it has returned. The line is then in the kernel's page
// cache and survives the process being killed; an OS crash or power loss
// may lose the last lines. Writes are group commits: one Begin at a time
// writes (the leader), with the End lines waiting; the Begin lines that
// arrive meanwhile wait, and the first of them then writes them all in one
// write(2) — a system call costs several times what a line does. A failed
// write fails Begin for every line it held, and the proxy refuses those
// requests (fail closed). End's line waits in memory for the next write —
// the next Begin, or the importer within Config.Interval — so a kill may
// lose the outcome of the last requests: their rows stay "pending".
//
// The process holds an exclusive lock (flock) on its journal for its
// lifetime, so other processes can tell a live journal from one left by a
// dead process. The journal is created as *.tmp, locked, then renamed, so
// no scanner ever sees an unlocked live journal.
//
// The importer calls Config.Import with the lines of a batch merged per
// event (an event's Begin and End lines become one Entry), every
// Config.Interval (sooner when many lines are waiting), then truncates the
// journal if no line arrived meanwhile. Import must be idempotent: a line
// may be imported twice (by this process and by another one reading a live
// journal, or after a crash between the database's commit and the
// truncation). Open, and the importer every Config.ScanInterval, import the
// journals of dead processes in Dir and remove them; Flush imports this
// process's lines (and, if asked, the other live journals' lines) before it
// returns; Close imports everything and removes this process's journal.
package journal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Entry is one event of an import batch, its lines merged.
type Entry struct {
	// Event is the last End line of the event in the batch, or its Begin
	// line when the batch holds no End line of it.
	Event agentkeys.AuditEvent
	// Ended: the batch holds an End line of the event (Event has its
	// outcome). Begun: the batch holds its Begin line, whose decision was
	// BeginDecision.
	Ended, Begun  bool
	BeginDecision string
}

// Config configures a Journal. Zero durations take the defaults.
type Config struct {
	// Dir holds the journals of every process sharing the database (created
	// 0700).
	Dir string
	// Import writes entries to the database in one transaction, and must be
	// idempotent (see the package doc). An error means none of them may be
	// taken as imported; they are retried later.
	Import func(entries []Entry) error
	// Refused reports whether an Import error is the database refusing the
	// data itself (not a busy or unreachable database): the batch is then
	// imported one entry at a time, and only the refused entries are
	// dropped (logged). nil: never.
	Refused func(error) bool
	// Log gets warnings about failed imports (never a secret: audit events
	// hold none). nil: discard.
	Log *slog.Logger
	// Interval is how often the importer runs (default 50 ms);
	// ScanInterval how often it looks for dead processes' journals
	// (default 5 s); CloseGrace how long Close waits for begun events to
	// end (default 500 ms).
	Interval, ScanInterval, CloseGrace time.Duration
	// KickBytes of unimported lines wake the importer before its next
	// run (default 512 KiB).
	KickBytes int64
}

const (
	// journalExt and journalTmpExt name live/dead journals and journals
	// being created.
	journalExt    = ".journal"
	journalTmpExt = ".tmp"
	// maxPendingEnd bytes of waiting End lines are written at once.
	maxPendingEnd = 64 << 10
	// maxImportChunk bounds one read of a journal (one or more transactions).
	maxImportChunk = 4 << 20
	// staleTmpAge: an unlocked *.tmp journal older than this was left by a
	// process that died while creating it.
	staleTmpAge = time.Minute
)

// Variables so that tests can lower them.
var (
	// maxQueued caps the in-memory copy of unimported journal records.
	maxQueued = 1 << 16
	// rotateBytes: a journal that never empties (lines keep arriving while
	// each import runs) is replaced by a new file once this much of it is
	// imported.
	rotateBytes int64 = 8 << 20
)

// batch is one group commit: the lines gathered in pendEnd between two
// writes. done is closed once it is written (or its write failed: err).
// While another batch's write is in flight, the first Begin caller whose
// line joins the batch becomes its leader: it waits for that write to end,
// then writes the batch; the callers joining after it wait for done only,
// so each write wakes only its own callers and the next leader.
type batch struct {
	done      chan struct{}
	err       error
	hasLeader bool
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// isDone reports whether b's write has ended. w.mu held.
func (b *batch) isDone() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// retiredFile is a journal replaced by a new one whose last lines may not
// be imported yet: it stays on disk, locked, until they are.
type retiredFile struct {
	f    *os.File
	name string
}

type flushReq struct {
	others bool // also read other processes' journals
	done   chan error
}

// Journal is one process's audit journal. It is safe for concurrent use.
type Journal struct {
	cfg Config
	log *slog.Logger
	dir string

	// mu guards the journal's state. A write(2) runs without it, by one
	// goroutine at a time (writing set: see writeBatchLocked); the file is
	// only truncated, replaced or swapped when no write is in flight.
	mu      sync.Mutex
	f       *os.File
	name    string
	written atomic.Int64 // bytes in the journal (since the last truncation)
	// pendEnd holds the encoded lines of the batch being filled (End lines
	// waiting, and Begin lines waiting for the next write), pendRecs their
	// records, cur the batch they form. spareEnd and spareRecs are the
	// buffers of the batch last written, reused.
	pendEnd   []byte
	pendRecs  []record
	cur       *batch
	spareEnd  []byte
	spareRecs []record
	// writing: the write(2) of batch inflight is in progress.
	writing  bool
	inflight *batch
	// beforeWrite, when set (tests), is called by the writer of each batch
	// before its write(2), without the mutex.
	beforeWrite func()
	// queue holds the records of the journal's unimported lines, in order,
	// unless spilled: then the importer reads them back from the file.
	queue   []record
	spare   []record // the importer's previous queue, reused
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

	// retired are this process's replaced journals (see rotateBytes);
	// importer goroutine (or Close, after it stopped) only.
	retired []retiredFile

	readBuf  []byte
	lastScan time.Time
}

// Open imports the journals that dead processes left in cfg.Dir (a
// failure is logged: they stay for a later import) and starts the
// importer. This process's journal is created on its first line.
func Open(cfg Config) (*Journal, error) {
	if cfg.Dir == "" || cfg.Import == nil {
		return nil, errors.New("journal: Config.Dir and Config.Import are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 5 * time.Second
	}
	if cfg.CloseGrace <= 0 {
		cfg.CloseGrace = 500 * time.Millisecond
	}
	if cfg.KickBytes <= 0 {
		cfg.KickBytes = 512 << 10
	}
	if cfg.Refused == nil {
		cfg.Refused = func(error) bool { return false }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &Journal{
		cfg: cfg, log: cfg.Log, dir: cfg.Dir, cur: newBatch(),
		open: map[string]struct{}{}, drained: make(chan struct{}),
		kick: make(chan struct{}, 1), flushCh: make(chan *flushReq), quit: make(chan struct{}), done: make(chan struct{}),
	}
	if err := w.scan(false); err != nil {
		w.log.Warn("audit: journals of earlier processes not imported yet", "err", err)
	}
	go w.run()
	return w, nil
}

// Begin writes e's Begin line and returns once a write(2) holding it
// returned (with the End lines waiting, and the Begin lines of other calls
// made while the previous write was in flight: one system call for them
// all). Returns EUNAVAILABLE after Close, or the write's error — every
// Begin of a failed write gets it: the caller must then not forward the
// request.
func (w *Journal) Begin(e *agentkeys.AuditEvent) error { return w.append(kindBegin, e) }

// End queues e's End line (its outcome, or the whole event if it was never
// begun) without a system call: it is written with the next Begin, by the
// importer within Config.Interval, by Flush or Close, or when 64 KiB of End
// lines wait. Returns EUNAVAILABLE after Close.
func (w *Journal) End(e *agentkeys.AuditEvent) error { return w.append(kindEnd, e) }

// append records e as a line of the given kind (see Begin and End).
func (w *Journal) append(kind byte, e *agentkeys.AuditEvent) error {
	w.mu.Lock()
	var err error
	switch {
	case w.closed:
		err = agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the audit journal is closed")
	case w.broken != nil:
		err = w.broken
	default:
		w.pendEnd = appendJournalLine(w.pendEnd, kind, e)
		w.pendRecs = append(w.pendRecs, record{kind: kind, e: *e})
		if kind == kindBegin {
			// Wait for the batch holding the line to be written (see batch).
			b := w.cur
			switch {
			case !w.writing:
				w.writeBatchLocked()
			case !b.hasLeader:
				b.hasLeader = true
				w.waitIdleLocked()
				if !b.isDone() { // the importer may have written it meanwhile
					w.writeBatchLocked()
				}
			default:
				w.mu.Unlock()
				<-b.done
				w.mu.Lock()
			}
			err = b.err
		} else if len(w.pendEnd) >= maxPendingEnd && !w.writing {
			w.writeBatchLocked() // End lines only: a failure leaves them waiting
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
	if err == nil && pending >= w.cfg.KickBytes {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// writeBatchLocked writes the batch being filled (pendEnd) in one write(2),
// made without the mutex, and a new batch starts filling meanwhile. On
// success its records move to the import queue; on failure nothing of it
// is left in the journal, its End lines wait again (ahead of the new
// batch's) and its Begin lines are dropped: their callers get the error.
// Either way the batch's done is closed, waking its callers. w.mu held
// (released during the write), no write in flight (!w.writing).
func (w *Journal) writeBatchLocked() {
	b := w.cur
	w.cur = newBatch()
	if len(w.pendEnd) == 0 {
		close(b.done)
		return
	}
	buf, recs := w.pendEnd, w.pendRecs
	w.pendEnd, w.pendRecs = w.spareEnd[:0], w.spareRecs[:0]
	w.spareEnd, w.spareRecs = nil, nil
	err := w.broken
	if err == nil && w.f == nil {
		err = w.createJournal()
	}
	if err == nil {
		f, hook := w.f, w.beforeWrite
		w.writing, w.inflight = true, b
		w.mu.Unlock()
		if hook != nil {
			hook()
		}
		n, werr := f.Write(buf)
		if werr == nil && n < len(buf) {
			werr = io.ErrShortWrite
		}
		w.mu.Lock()
		w.writing, w.inflight = false, nil
		if werr != nil {
			err = fmt.Errorf("write audit journal: %w", werr)
			if n > 0 {
				// Cut the partial write off, or later lines would be glued to it.
				if terr := f.Truncate(w.written.Load()); terr != nil {
					w.broken = fmt.Errorf("audit journal %s is damaged (a write failed and could not be undone: %v): restart the process", w.name, terr)
				}
			}
		} else {
			w.written.Add(int64(n))
		}
	}
	if err == nil {
		for _, r := range recs {
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
	} else {
		// Nothing of the batch is in the journal. Its End lines wait
		// again, ahead of those queued since; its Begin lines are dropped
		// (their callers get err and refuse their requests).
		var ends []byte
		var endRecs []record
		for _, r := range recs {
			if r.kind == kindEnd {
				ends = appendJournalLine(ends, kindEnd, &r.e)
				endRecs = append(endRecs, r)
			}
		}
		if len(ends) > 0 {
			w.pendEnd = append(ends, w.pendEnd...)
			w.pendRecs = append(endRecs, w.pendRecs...)
		}
	}
	clear(recs)
	if cap(buf) <= 4*maxPendingEnd {
		w.spareEnd, w.spareRecs = buf[:0], recs[:0]
	}
	b.err = err
	close(b.done)
}

// writePendingLocked writes the lines waiting (after any write in flight)
// and reports the error of that write. w.mu held.
func (w *Journal) writePendingLocked() error {
	w.waitIdleLocked()
	if len(w.pendEnd) == 0 {
		return nil
	}
	b := w.cur
	w.writeBatchLocked()
	return b.err
}

// waitIdleLocked waits until no write is in flight. w.mu held (released
// while waiting).
func (w *Journal) waitIdleLocked() {
	for w.writing {
		done := w.inflight.done
		w.mu.Unlock()
		<-done
		w.mu.Lock()
	}
}

// createJournal creates, locks and publishes this process's journal.
func (w *Journal) createJournal() error {
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

func (w *Journal) run() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.Interval)
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
		if time.Since(w.lastScan) >= w.cfg.ScanInterval {
			if err := w.scan(false); err != nil {
				w.log.Warn("audit: journals of other processes not imported", "err", err)
			}
		}
	}
}

// Flush imports this process's journal up to its current end (and, with
// others, every other journal in the directory) before returning: what
// this process wrote before the call is then in the database.
func (w *Journal) Flush(ctx context.Context, others bool) error {
	if !others {
		w.mu.Lock()
		idle := len(w.pendEnd) == 0 && !w.writing && w.written.Load() == w.imported.Load()
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
func (w *Journal) importOwn() error {
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
	// Replaced journals: their unimported lines are in recs (taken now), or,
	// when spilled, read back below.
	retiring := w.retired
	w.retired = nil
	if !spilled {
		if err := w.importRecords(recs); err != nil {
			w.retired = append(retiring, w.retired...)
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
	for i, r := range retiring {
		if spilled {
			if err := w.importFile(r.f); err != nil {
				w.retired = append(retiring[i:], w.retired...)
				return err
			}
		}
		r.f.Close()
		if err := os.Remove(r.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.log.Warn("audit: replaced journal not removed", "journal", r.name, "err", err)
		}
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
	w.waitIdleLocked() // no truncation or replacement under a write
	switch {
	case w.f == f && w.written.Load() == w.imported.Load() && w.written.Load() > 0:
		if err := f.Truncate(0); err != nil {
			w.log.Warn("audit: journal not truncated", "journal", w.name, "err", err)
			return nil
		}
		w.written.Store(0)
		w.imported.Store(0)
		if w.spilled && len(w.queue) == 0 {
			w.spilled = false // the file and the (empty) queue agree again
		}
	case w.f == f && !w.spilled && w.imported.Load() >= rotateBytes:
		// Lines arrive while every import runs, so the journal never
		// empties: write a new one. The old one's unimported lines are in
		// the queue; it stays on disk, locked, until they are imported.
		old := retiredFile{f: f, name: w.name}
		if err := w.createJournal(); err != nil {
			w.log.Warn("audit: journal not replaced, it keeps growing", "journal", w.name, "err", err)
			return nil
		}
		w.retired = append(w.retired, old)
	}
	return nil
}

// importFile imports every complete line of f (idempotently).
func (w *Journal) importFile(f *os.File) error {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return fmt.Errorf("read audit journal: %w", err)
	}
	for rest := data; len(rest) > 0; {
		used, err := w.importLines(rest[:min(len(rest), maxImportChunk)])
		if err != nil {
			return err
		}
		if used == 0 {
			break // a trailing partial line: its write never returned
		}
		rest = rest[used:]
	}
	return nil
}

// scan imports the journals of other processes: those of dead processes
// (their lock can be taken) are imported whole and removed; with live,
// those of running processes are imported too (and left in place).
func (w *Journal) scan(live bool) error {
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

func (w *Journal) importForeign(path string, live bool) error {
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
	if err := w.importFile(f); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
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

func (w *Journal) removeStaleTmp(path string) {
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

// record is one journal line.
type record struct {
	kind byte // kindBegin or kindEnd
	e    agentkeys.AuditEvent
}

// importLines imports the complete lines at the start of data and returns
// how many bytes they span. Lines that do not decode are skipped (logged).
func (w *Journal) importLines(data []byte) (int, error) {
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		return 0, nil
	}
	used := last + 1
	var recs []record
	bad := 0
	for rest := data[:used]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		kind, e, err := parseJournalLine(rest[:i])
		rest = rest[i+1:]
		if err != nil {
			bad++
			continue
		}
		recs = append(recs, record{kind: kind, e: e})
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
func (w *Journal) importRecords(recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	entries := make([]Entry, 0, len(recs))
	byID := make(map[string]int, len(recs))
	for i := range recs {
		r := &recs[i]
		k, ok := byID[r.e.ID]
		if !ok {
			k = len(entries)
			byID[r.e.ID] = k
			entries = append(entries, Entry{Event: r.e})
		}
		je := &entries[k]
		if r.kind == kindEnd {
			je.Event, je.Ended = r.e, true
		} else {
			je.Begun, je.BeginDecision = true, r.e.Decision
		}
	}
	err := w.cfg.Import(entries)
	if err == nil {
		return nil
	}
	if !w.cfg.Refused(err) {
		return err // busy, I/O, full disk: retried later, idempotently
	}
	// An event the database refuses must not hold up the others: import
	// one by one, and drop (log) only the refused ones.
	for i := range entries {
		if err := w.cfg.Import(entries[i : i+1]); err != nil {
			if !w.cfg.Refused(err) {
				return err
			}
			w.log.Error("audit: event refused by the database, not imported", "event", entries[i].Event.ID, "err", err)
		}
	}
	return nil
}

// Close waits up to Config.CloseGrace for events begun and not yet ended
// (a response still being finished by a handler), stops taking lines, stops
// the importer, imports what is left and removes this process's journal
// once it is all in the database (if not, it stays, and the next Open
// imports it). The database must stay open until Close returns.
func (w *Journal) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	if len(w.open) > 0 {
		drained := w.drained
		w.mu.Unlock()
		t := time.NewTimer(w.cfg.CloseGrace)
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
	for _, r := range w.retired { // not imported: unlocked, the next Open imports them
		r.f.Close()
	}
	w.retired = nil
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waitIdleLocked()
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
	if err != nil {
		return fmt.Errorf("audit: %w (the journal stays and is imported by the next open)", err)
	}
	return nil
}

// Line is the journal line (newline included) that Begin (end false) or
// End (end true) writes for e: for tools and tests that write journals.
func Line(end bool, e *agentkeys.AuditEvent) []byte {
	kind := byte(kindBegin)
	if end {
		kind = kindEnd
	}
	return appendJournalLine(nil, kind, e)
}

// SwapFile makes the journal write to f from now on and returns the file it
// wrote to (tests of code built on the journal: f may be /dev/full).
func (w *Journal) SwapFile(f *os.File) *os.File {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waitIdleLocked()
	old := w.f
	w.f = f
	return old
}
