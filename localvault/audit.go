package localvault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/journal"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// Audit durability: the journal (internal/journal), imported into SQLite.
//
// BeginAudit writes the event's line to this process's own journal,
// Home/audit/<pid>-<random>.journal (directory 0700, file 0600), and
// returns once a write(2) holding it returned (concurrent calls share
// writes: group commit): the line survives the process being killed; an
// OS crash or power loss may lose the last lines. A failed write
// fails BeginAudit, and the proxy refuses the request (fail closed).
// EndAudit's line waits in memory for the next write, so a kill may lose
// the outcome of the last requests: their rows stay "pending", as the
// contract allows ("it may queue"). See internal/journal for the journal
// itself: locking, dead processes' journals, replacement under steady load.
//
// The importer moves journal lines into audit_events every importInterval
// (sooner when many lines are waiting), merged per event (a Begin and its
// End become one insert), in one transaction per batch with prepared
// statements. Import is idempotent, as the journal requires, so a line
// imported twice (by this process and by another one reading a live
// journal, or after a crash between commit and truncation) changes nothing:
//   - a Begin line inserts the row unless its id exists (INSERT … DO NOTHING);
//   - an End line inserts the whole row, or updates the outcome columns of
//     the existing row only when they differ;
//   - last_used_at only ever moves forward (max).
//
// Seq is assigned at import, inside the write transaction: each insert or
// outcome change takes MAX(seq)+1, so Seq still increases whenever a row is
// written or completed.
//
// ListAudit and Status flush first: they import this process's journal up
// to its end, and read (and import) the journals of other live processes, so
// a row is visible at once to its own process and to `agentkeys audit` run
// beside a running `agentkeys up`. Open, and the importer every
// deadScanInterval, import the journals of dead processes and remove them.
// Close imports everything and removes this process's journal.

const (
	// auditDirName is the journals' directory in Home.
	auditDirName = "audit"
)

// Tunables (tests change them through export_test.go).
var (
	importInterval = 50 * time.Millisecond
	// closeGrace is how long Close waits for begun events to end.
	closeGrace       = 500 * time.Millisecond
	deadScanInterval = 5 * time.Second
)

// auditWriter is the journal and the import of its lines into SQLite.
type auditWriter struct {
	j    *journal.Journal
	db   *sql.DB
	args []any // reused by writeEntries (importer goroutine only)

	// stmts are prepared by the first import rather than at open: most
	// commands (credentials list, show…) never import a line, and parsing
	// the 13 statements (the largest insert 64 rows) took about 5% of
	// `credentials list` over 10,000 credentials (go run ./bench/cli).
	stmtsMu  sync.Mutex
	stmts    importStmts
	prepared bool
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

// newAuditWriter opens the journal in Home/audit: the journals left by dead
// processes are imported (failures are logged: they stay for a later
// import) and the importer starts. This process's journal is created on its
// first audit line; the import statements are prepared on the first import.
func newAuditWriter(db *sql.DB, home string, log *slog.Logger) (*auditWriter, error) {
	w := &auditWriter{db: db}
	j, err := journal.Open(journal.Config{
		Dir:          filepath.Join(home, auditDirName),
		Import:       w.writeEntries,
		Refused:      storesql.IsDataErr,
		Log:          log,
		Interval:     importInterval,
		ScanInterval: deadScanInterval,
		CloseGrace:   closeGrace,
	})
	if err != nil {
		return nil, err
	}
	w.j = j
	return w, nil
}

// statements returns the import statements, preparing them on first use
// (a failure is returned and retried on the next import).
func (w *auditWriter) statements(ctx context.Context) (*importStmts, error) {
	w.stmtsMu.Lock()
	defer w.stmtsMu.Unlock()
	if !w.prepared {
		if err := w.stmts.prepare(ctx, w.db); err != nil {
			return nil, err
		}
		w.prepared = true
	}
	return &w.stmts, nil
}

// close imports what is left (see journal.Journal.Close) and releases the
// statements.
func (w *auditWriter) close() error {
	err := w.j.Close()
	w.stmtsMu.Lock()
	w.stmts.close()
	w.stmtsMu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// writeEntries imports entries (an import batch of the journal) in one
// transaction. Each entry takes the next Seq; an entry that changes nothing
// (already imported) leaves a gap, which is harmless: Seq only has to
// increase.
func (w *auditWriter) writeEntries(entries []journal.Entry) error {
	ctx := context.Background()
	stmts, err := w.statements(ctx)
	if err != nil {
		return err
	}
	return withTx(ctx, w.db, func(tx *sql.Tx) error {
		var seq int64
		if err := tx.StmtContext(ctx, stmts.maxSeq).QueryRowContext(ctx).Scan(&seq); err != nil {
			return err
		}
		args, err := w.writeRows(ctx, tx, stmts, entries, seq, w.args[:0])
		if err != nil {
			return err
		}
		w.args = args[:0]
		type grantKey struct{ agent, cred string }
		var credUsed map[string]int64
		var grantUsed map[grantKey]int64
		for i := range entries {
			e := &entries[i].Event
			if !entries[i].Ended || e.CredentialID == "" || (e.Decision != agentkeys.DecisionAllowed && e.Decision != agentkeys.DecisionError) {
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
			st := tx.StmtContext(ctx, stmts.credUsed)
			for id, t := range credUsed {
				if _, err := st.ExecContext(ctx, t, id); err != nil {
					return err
				}
			}
			st = tx.StmtContext(ctx, stmts.grantUsed)
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
func (w *auditWriter) writeRows(ctx context.Context, tx *sql.Tx, stmts *importStmts, entries []journal.Entry, seq int64, args []any) ([]any, error) {
	type groupKey struct {
		ended bool
		route routeKey
	}
	var order []groupKey
	groups := map[groupKey][]int{}
	for i := range entries {
		k := groupKey{entries[i].Ended, routeKeyOf(&entries[i].Event)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	exec := func(st *sql.Stmt, first int) error {
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit events from %s: %w", entries[first].Event.ID, err)
		}
		return nil
	}
	var rest [2][]int // entries in groups too small to share: [0] Begin, [1] End
	for _, k := range order {
		idx := groups[k]
		for c, n := range sharedChunks {
			for ; len(idx) >= n; idx = idx[n:] {
				args = appendSharedArgs(args[:0], &entries[idx[0]].Event)
				for _, i := range idx[:n] {
					args = appendRowArgs(args, &entries[i].Event, seq+1+int64(i))
				}
				st := stmts.sharedBegin[c]
				if k.ended {
					st = stmts.sharedEnd[c]
				}
				if err := exec(st, idx[0]); err != nil {
					return args, err
				}
			}
		}
		if k.ended {
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
					args = appendAllArgs(args, &entries[i].Event, seq+1+int64(i))
				}
				st := stmts.begin[c]
				if kind == 1 {
					st = stmts.end[c]
				}
				if err := exec(st, idx[0]); err != nil {
					return args, err
				}
			}
		}
	}
	return args, nil
}

// prepareEvent fills what the store assigns and the caller may leave out.
func (v *Vault) prepareEvent(e *agentkeys.AuditEvent) {
	storesql.PrepareEvent(e, v.now)
	if e.WorkspaceID == "" {
		e.WorkspaceID = v.wsID
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
// request. Concurrent calls share writes (group commit: the lines of calls
// made during one write(2) go out together in the next), and each returns
// once its own line is written.
func (v *Vault) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	if err := v.usable(); err != nil {
		return err
	}
	v.prepareEvent(e)
	if err := v.audit.j.Begin(e); err != nil {
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
	if err := v.audit.j.End(e); err != nil {
		v.log.Warn("audit: outcome not written", "event", e.ID, "err", err)
	}
}

// flushAudit makes audit lines written so far visible in the database:
// this process's own, and with others those of other processes' journals.
// A failure is logged, not returned: the read goes on with what the
// database holds (the lines stay in their journals for a later import).
func (v *Vault) flushAudit(ctx context.Context, others bool) {
	if err := v.audit.j.Flush(ctx, others); err != nil {
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
	q, args, err := storesql.AuditQuery(f, "")
	if err != nil {
		return nil, err
	}
	v.flushAudit(ctx, true)
	rows, err := v.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, storeErr("list audit", err)
	}
	evs, err := storesql.ScanAudit(rows)
	if err != nil {
		return nil, storeErr("list audit", err)
	}
	return evs, nil
}
