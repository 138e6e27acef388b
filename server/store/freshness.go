package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Freshness of cached routes. Every change a route depends on bumps
// workspaces.revision in its own transaction, on whichever replica makes it.
// A cached route read at revision r is used only when a read of its
// workspace's revision returned r, and that read either
//
//   - started at most trustWindow before the check — a poller re-reads the
//     revisions of the workspaces in use every pollInterval — or
//   - started after the request arrived (when no read is that recent: the
//     poller is idle or the database slow). Such reads are shared: at most
//     one per workspace is in flight, and it serves every request that
//     arrived during the one before (rounds).
//
// Writes that can make a cached route wrong (revoke, delete, a new value or
// allowlist) wait settleDelay, longer than trustWindow, after their commit
// before they return (Workspace.change). So a request that reaches any
// replica after such a write returned is checked against a read that
// started after the commit, and is refused (or served the new value): a
// revocation through one replica is refused by every replica on the very
// next request, with no read of the database on the request's path while
// the poller keeps up.
const (
	trustWindow  = 15 * time.Millisecond
	pollInterval = 5 * time.Millisecond
	settleDelay  = trustWindow + 5*time.Millisecond
	// pollIdle: the poller stops when no cached route was used for this long.
	pollIdle = time.Second
	// readTimeout bounds one revision read (it is not tied to any request).
	readTimeout = 10 * time.Second
	// pollChunk is how many workspaces one poll query reads.
	pollChunk = 500
)

// revRead is the result of one revision read: rev (-1: no such workspace)
// as of a read that started at start.
type revRead struct {
	rev   int64
	start time.Time
}

// wsCheck is what the store knows of one workspace's revision.
type wsCheck struct {
	// last is the completed read that started last.
	last atomic.Pointer[revRead]
	// used is when a cached route of the workspace was last checked (Unix
	// nanoseconds): the poller reads the workspaces used within pollIdle.
	used atomic.Int64

	// Rounds of reads that start after their callers arrived.
	mu       sync.Mutex
	inflight bool
	next     *revRound // the round callers arriving during a read wait for
}

// revRound is one revision read and those waiting for it.
type revRound struct {
	done chan struct{} // closed once rev and err are set
	rev  int64
	err  error
}

// record keeps r unless a read that started later has completed already.
func (wc *wsCheck) record(r revRead) {
	for {
		old := wc.last.Load()
		if old != nil && !r.start.After(old.start) {
			return
		}
		if wc.last.CompareAndSwap(old, &r) {
			return
		}
	}
}

// lastRev is the revision of the last read (-2: never read).
func (wc *wsCheck) lastRev() int64 {
	if l := wc.last.Load(); l != nil {
		return l.rev
	}
	return -2
}

// fresh reports whether a cached entry of workspace ws read at rev may be
// used for a request that has arrived.
func (s *Store) fresh(ctx context.Context, ws string, rev int64) (bool, error) {
	wc := s.cache.check(ws)
	now := time.Now()
	wc.used.Store(now.UnixNano())
	if l := wc.last.Load(); l != nil && now.Sub(l.start) < trustWindow {
		return l.rev == rev, nil
	}
	s.startPoller()
	cur, err := s.revision(ctx, ws)
	return err == nil && cur == rev, err
}

// revision returns the workspace's revision as of a read that began after
// the call did.
func (s *Store) revision(ctx context.Context, ws string) (int64, error) {
	wc := s.cache.check(ws)
	wc.mu.Lock()
	if !wc.inflight {
		wc.inflight = true
		wc.mu.Unlock()
		r := &revRound{done: make(chan struct{})}
		s.readRevision(wc, ws, r)
		return r.rev, r.err
	}
	if wc.next == nil {
		wc.next = &revRound{done: make(chan struct{})}
	}
	r := wc.next
	wc.mu.Unlock()
	select {
	case <-r.done:
		return r.rev, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// readRevision reads ws's revision into r and releases r's waiters; if
// callers queued for a next round meanwhile, it starts that round in a
// goroutine of its own (the caller's request does not wait for it).
func (s *Store) readRevision(wc *wsCheck, ws string, r *revRound) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	err := s.stmts.revision.QueryRowContext(ctx, ws).Scan(&r.rev)
	cancel()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.rev = -1
	case err != nil:
		r.err = s.storeErr("check for changes", err)
	}
	if r.err == nil {
		wc.record(revRead{rev: r.rev, start: start})
	}
	close(r.done)
	wc.mu.Lock()
	next := wc.next
	wc.next = nil
	wc.inflight = next != nil
	wc.mu.Unlock()
	if next != nil {
		go s.readRevision(wc, ws, next)
	}
}

// startPoller starts the poller unless it runs (or the store is closed).
func (s *Store) startPoller() {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.polling || s.quit == nil {
		return
	}
	select {
	case <-s.quit:
		return
	default:
	}
	s.polling = true
	go s.poll()
}

// poll re-reads, every pollInterval, the revisions of the workspaces whose
// cached routes were used within pollIdle, and stops when there are none.
// A failed read is skipped: trust in the cache lapses after trustWindow,
// and requests then read for themselves.
func (s *Store) poll() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			s.pollMu.Lock()
			s.polling = false
			s.pollMu.Unlock()
			return
		case <-t.C:
		}
		active := s.cache.active(time.Now().Add(-pollIdle))
		if len(active) == 0 {
			s.pollMu.Lock()
			s.polling = false
			s.pollMu.Unlock()
			return
		}
		for len(active) > 0 {
			n := min(len(active), pollChunk)
			s.pollOnce(active[:n])
			active = active[n:]
		}
	}
}

// pollOnce reads the revisions of the given workspaces in one query.
func (s *Store) pollOnce(ids []string) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	var rows *sql.Rows
	var err error
	if len(ids) == 1 {
		rows, err = s.stmts.revisionRow.QueryContext(ctx, ids[0])
	} else {
		ph := make([]string, len(ids))
		args := make([]any, len(ids))
		for i, id := range ids {
			ph[i], args[i] = "$"+strconv.Itoa(i+1), id
		}
		rows, err = s.db.QueryContext(ctx, `SELECT id, revision FROM workspaces WHERE id IN (`+strings.Join(ph, ", ")+`)`, args...)
	}
	if err != nil {
		return
	}
	defer rows.Close()
	revs := make(map[string]int64, len(ids))
	for rows.Next() {
		var id string
		var rev int64
		if err := rows.Scan(&id, &rev); err != nil {
			return
		}
		revs[id] = rev
	}
	if rows.Err() != nil {
		return
	}
	for _, id := range ids {
		rev, ok := revs[id]
		if !ok {
			rev = -1
		}
		s.cache.check(id).record(revRead{rev: rev, start: start})
	}
}

// active returns the workspaces whose cached routes were checked since.
func (c *routeCache) active(since time.Time) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []string
	for id, wc := range c.checks {
		if wc.used.Load() >= since.UnixNano() {
			ids = append(ids, id)
		}
	}
	return ids
}

// change is write for changes that can make a cached route wrong (a
// revocation, a deletion, a new value or allowlist): after the commit it
// settles, so that by the time it returns every replica's next check of
// the workspace sees the change (see the top of this file).
func (w *Workspace) change(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := w.write(ctx, fn); err != nil {
		return err
	}
	settle()
	return nil
}

// settle waits settleDelay after a committed change (not cut short when the
// caller's context ends: the change is made either way).
func settle() { time.Sleep(settleDelay) }
