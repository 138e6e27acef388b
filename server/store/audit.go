package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/journal"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// Audit durability: the journal (internal/journal). BeginAudit returns once
// the event's line is written to this process's journal in DataDir/audit —
// it survives the process being killed, not an OS crash — and the importer
// moves the lines into the database every importInterval, merged per event
// (a request's Begin and End lines usually become one row). A batch is one
// transaction: per workspace, in one order on every replica,
// it reserves sequence numbers from workspaces.audit_seq (whose row lock
// orders the writers of every replica, so a follower using AfterSeq sees a
// workspace's rows in commit order), inserts the rows whose id is new,
// replaces the outcome of existing rows when it differs (with a new
// sequence number), counts the begun events it inserted in the monthly
// usage, and stamps last_used_at. Import is idempotent, as the journal
// requires: a line imported twice changes nothing. Journals left by dead
// processes are imported at the next Open (and every 5 s by any process
// sharing the directory); ListAudit and Status import first, so what this
// process (or another live one on the same directory) wrote is visible at
// once.

// auditDirName is the journals' directory in DataDir.
const auditDirName = "audit"

// The importer runs every importInterval, or when importKickBytes of lines
// wait: a batch of a few thousand rows costs PostgreSQL about 6.5 µs a row,
// one of 500 about 8, one of 50 about 16 (a transaction, a savepoint, a
// COPY, the sequence and usage updates per batch). The price is that
// another replica sees a row up to about 200 ms later; the process that
// wrote it imports before it reads.
const (
	importInterval  = 200 * time.Millisecond
	importKickBytes = 2 << 20
)

type auditWriter struct {
	s        *Store
	j        *journal.Journal
	insert   *sql.Stmt        // new rows (PostgreSQL: arrays, the fallback of COPY; SQLite: one row)
	complete *sql.Stmt        // PostgreSQL: outcomes of existing rows (arrays); SQLite: one row
	lastUsed map[string]int64 // last-used times written, by workspace/agent/credential; importer only
	// pending holds ids of rows this process inserted pending (begun, not
	// ended) and committed: their End lines only need completeRows. A hint
	// only (importer goroutine): a stale or missing id costs a slower path.
	pending map[string]struct{}
}

const auditInsertCols = `id, workspace_id, seq, time, request_id, agent_id, agent_name, credential_id,
	credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out`

// The statements. Rows of another workspace are never touched: an id that
// exists elsewhere conflicts (nothing inserted) and the outcome update
// matches on the workspace too.
const (
	pgAuditInsert = `INSERT INTO audit_events (` + auditInsertCols + `)
		SELECT v.id, $1, v.seq, v.time, v.request_id, v.agent_id, v.agent_name, v.credential_id,
			v.credential_name, v.method, v.host, v.path, v.status, v.decision, v.code, v.duration_us, v.bytes_in, v.bytes_out
		FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::text[], $11::text[], $12::text[], $13::integer[], $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::bigint[])
			AS v (id, seq, time, request_id, agent_id, agent_name, credential_id, credential_name, method, host, path,
				status, decision, code, duration_us, bytes_in, bytes_out)
		ON CONFLICT (id) DO NOTHING
		RETURNING id`
	pgAuditComplete = `UPDATE audit_events a SET seq = v.seq, status = v.status, decision = v.decision, code = v.code,
			duration_us = v.duration_us, bytes_in = v.bytes_in, bytes_out = v.bytes_out
		FROM unnest($2::text[], $3::bigint[], $4::integer[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
			AS v (id, seq, status, decision, code, duration_us, bytes_in, bytes_out)
		WHERE a.id = ANY($2::text[]) AND a.id = v.id AND a.workspace_id = $1
			AND (a.status, a.decision, a.code, a.duration_us, a.bytes_in, a.bytes_out)
				IS DISTINCT FROM (v.status, v.decision, v.code, v.duration_us, v.bytes_in, v.bytes_out)`
	sqliteAuditInsert = `INSERT INTO audit_events (` + auditInsertCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (id) DO NOTHING`
	sqliteAuditComplete = `UPDATE audit_events SET seq = $3, status = $4, decision = $5, code = $6,
			duration_us = $7, bytes_in = $8, bytes_out = $9
		WHERE workspace_id = $1 AND id = $2
			AND NOT (status = $4 AND decision = $5 AND code = $6 AND duration_us = $7 AND bytes_in = $8 AND bytes_out = $9)`
)

// newAuditWriter prepares the import statements and opens the journal in
// dir (importing what dead processes left there).
func newAuditWriter(ctx context.Context, s *Store, dir string) (*auditWriter, error) {
	w := &auditWriter{s: s, lastUsed: map[string]int64{}, pending: map[string]struct{}{}}
	ins, comp := sqliteAuditInsert, sqliteAuditComplete
	if s.dialect.Name == "postgres" {
		ins, comp = pgAuditInsert, pgAuditComplete
	}
	var err error
	if w.insert, err = s.db.PrepareContext(ctx, ins); err != nil {
		return nil, s.storeErr("prepare audit import", err)
	}
	if w.complete, err = s.db.PrepareContext(ctx, comp); err != nil {
		w.insert.Close()
		return nil, s.storeErr("prepare audit import", err)
	}
	w.j, err = journal.Open(journal.Config{
		Dir:       dir,
		Import:    w.importEntries,
		Refused:   s.dialect.IsDataErr,
		Log:       s.log,
		Interval:  importInterval,
		KickBytes: importKickBytes,
	})
	if err != nil {
		w.insert.Close()
		w.complete.Close()
		return nil, err
	}
	return w, nil
}

// auditDir is where the journals of the processes serving DataDir live.
func auditDir(dataDir string) string { return filepath.Join(dataDir, auditDirName) }

// close imports what the journal holds, then closes it.
func (w *auditWriter) close() error {
	err := w.j.Close()
	w.insert.Close()
	w.complete.Close()
	return err
}

// importEntries writes one import batch in one transaction (see the
// comment at the top of this file).
func (w *auditWriter) importEntries(entries []journal.Entry) error {
	ctx := context.Background()
	byWS := map[string][]*journal.Entry{}
	for i := range entries {
		e := &entries[i]
		byWS[e.Event.WorkspaceID] = append(byWS[e.Event.WorkspaceID], e)
	}
	order := make([]string, 0, len(byWS))
	for ws := range byWS {
		order = append(order, ws)
	}
	slices.Sort(order) // workspace rows are locked in one order by every replica
	conn, err := w.s.db.Conn(ctx)
	if err != nil {
		return w.s.storeErr("audit import", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return w.s.storeErr("begin transaction", err)
	}
	var pending []string
	for _, ws := range order {
		p, err := w.importWorkspace(ctx, conn, tx, ws, byWS[ws])
		if err != nil {
			tx.Rollback()
			clear(w.lastUsed) // what was noted was not written
			return err
		}
		pending = append(pending, p...)
	}
	if err := w.touchLastUsed(ctx, tx, entries); err != nil {
		tx.Rollback()
		clear(w.lastUsed)
		return err
	}
	if err := tx.Commit(); err != nil {
		clear(w.lastUsed)
		return w.s.storeErr("commit", err)
	}
	if len(w.pending) > maxPendingHints {
		clear(w.pending)
	}
	for _, id := range pending {
		w.pending[id] = struct{}{}
	}
	return nil
}

// maxPendingHints bounds auditWriter.pending; past it, it starts over.
const maxPendingHints = 100_000

// importWorkspace writes the entries of workspace ws, and returns the ids of
// the rows it inserted still pending (begun, not ended).
func (w *auditWriter) importWorkspace(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ws string, es []*journal.Entry) ([]string, error) {
	var last int64
	var ps, pe sql.NullInt64 // the workspace's billing period (plan.go)
	err := tx.StmtContext(ctx, w.s.stmts.auditSeq).QueryRowContext(ctx, len(es), ws).Scan(&last, &ps, &pe)
	if errors.Is(err, sql.ErrNoRows) {
		w.s.log.Warn("audit: events of a workspace that no longer exists were dropped", "workspace", ws, "count", len(es))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit sequence of %s: %w", ws, err)
	}
	for i, e := range es {
		e.Event.Seq = last - int64(len(es)) + int64(i) + 1
	}
	// Outcomes of rows this process inserted pending in an earlier batch go
	// straight to completeRows; the others are new rows, unless a line is
	// imported a second time (see insertRows).
	var fresh, done []*journal.Entry
	for _, e := range es {
		if _, ok := w.pending[e.Event.ID]; ok && e.Ended {
			delete(w.pending, e.Event.ID)
			done = append(done, e)
		} else {
			fresh = append(fresh, e)
		}
	}
	inserted, err := w.insertRows(ctx, conn, tx, ws, fresh)
	if err != nil {
		return nil, err
	}
	var pending []string
	counted := map[string]int64{} // usage period key → begun events inserted
	for _, e := range fresh {
		switch {
		case inserted[e.Event.ID]:
			if e.Begun && e.BeginDecision != agentkeys.DecisionDenied {
				key := periodAt(e.Event.Time, ps, pe).Key
				counted[key]++
			}
			if !e.Ended {
				pending = append(pending, e.Event.ID)
			}
		case e.Ended:
			done = append(done, e)
		}
	}
	if err := w.completeRows(ctx, tx, ws, done); err != nil {
		return nil, err
	}
	for key, n := range counted {
		if _, err := tx.StmtContext(ctx, w.s.stmts.usage).ExecContext(ctx, ws, key, n); err != nil {
			return nil, fmt.Errorf("usage of %s: %w", ws, err)
		}
	}
	return pending, nil
}

// insertRows inserts the rows whose id is new and returns those ids. On
// PostgreSQL it first tries COPY, in a savepoint: all rows new, as when
// every line is imported once, is the common case; when one exists (a line
// imported before — by another process reading a live journal, or before a
// crash — or an id of another workspace) the savepoint is rolled back and
// the rows go through INSERT … ON CONFLICT DO NOTHING.
func (w *auditWriter) insertRows(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ws string, es []*journal.Entry) (map[string]bool, error) {
	inserted := make(map[string]bool, len(es))
	if len(es) == 0 {
		return inserted, nil
	}
	if w.s.dialect.Name == "postgres" {
		ok, err := w.copyRows(ctx, conn, tx, ws, es)
		if err != nil {
			return nil, err
		}
		if ok {
			for _, e := range es {
				inserted[e.Event.ID] = true
			}
			return inserted, nil
		}
	}
	st := tx.StmtContext(ctx, w.insert)
	if w.s.dialect.Name != "postgres" {
		for _, je := range es {
			e := &je.Event
			res, err := st.ExecContext(ctx, e.ID, ws, e.Seq, e.Time.UnixMicro(), e.RequestID, e.AgentID, e.AgentName, e.CredentialID,
				e.CredentialName, e.Method, e.Host, e.Path, e.Status, e.Decision, e.Code, e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
			if err != nil {
				return nil, fmt.Errorf("audit event %s: %w", e.ID, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				inserted[e.ID] = true
			}
		}
		return inserted, nil
	}
	n := len(es)
	ids, reqs, agents, agentNames, creds, credNames := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	methods, hosts, paths, decisions, codes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs, times, durs, bin, bout := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	statuses := make([]int32, n)
	for i, je := range es {
		e := &je.Event
		ids[i], seqs[i], times[i], reqs[i] = e.ID, e.Seq, e.Time.UnixMicro(), e.RequestID
		agents[i], agentNames[i], creds[i], credNames[i] = e.AgentID, e.AgentName, e.CredentialID, e.CredentialName
		methods[i], hosts[i], paths[i] = e.Method, e.Host, e.Path
		statuses[i], decisions[i], codes[i] = int32(e.Status), e.Decision, e.Code
		durs[i], bin[i], bout[i] = e.Duration.Microseconds(), e.BytesIn, e.BytesOut
	}
	rows, err := st.QueryContext(ctx, ws, ids, seqs, times, reqs, agents, agentNames, creds, credNames, methods, hosts, paths,
		statuses, decisions, codes, durs, bin, bout)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("audit events: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return inserted, nil
}

// auditCopyCols are the columns copyRows writes, in auditInsertCols' order.
var auditCopyCols = strings.Fields(strings.ReplaceAll(auditInsertCols, ",", " "))

// copyRows inserts es with COPY in a savepoint of tx (on tx's connection,
// conn). It returns false, with the savepoint rolled back, when a row's id
// already exists.
func (w *auditWriter) copyRows(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ws string, es []*journal.Entry) (bool, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT audit_copy`); err != nil {
		return false, fmt.Errorf("audit events: %w", err)
	}
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("audit import: unexpected driver connection %T", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditCopyCols, pgx.CopyFromSlice(len(es), func(i int) ([]any, error) {
			e := &es[i].Event
			return []any{e.ID, ws, e.Seq, e.Time.UnixMicro(), e.RequestID, e.AgentID, e.AgentName, e.CredentialID,
				e.CredentialName, e.Method, e.Host, e.Path, int32(e.Status), e.Decision, e.Code, e.Duration.Microseconds(), e.BytesIn, e.BytesOut}, nil
		}))
		return err
	})
	if err == nil {
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT audit_copy`); err != nil {
			return false, fmt.Errorf("audit events: %w", err)
		}
		return true, nil
	}
	if !w.s.dialect.IsUnique(err) {
		return false, fmt.Errorf("audit events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT audit_copy`); err != nil {
		return false, fmt.Errorf("audit events: %w", err)
	}
	return false, nil
}

// completeRows replaces the outcome of existing rows of ws when it differs.
func (w *auditWriter) completeRows(ctx context.Context, tx *sql.Tx, ws string, es []*journal.Entry) error {
	if len(es) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, w.complete)
	if w.s.dialect.Name != "postgres" {
		for _, je := range es {
			e := &je.Event
			if _, err := st.ExecContext(ctx, ws, e.ID, e.Seq, e.Status, e.Decision, e.Code, e.Duration.Microseconds(), e.BytesIn, e.BytesOut); err != nil {
				return fmt.Errorf("audit outcome of %s: %w", e.ID, err)
			}
		}
		return nil
	}
	n := len(es)
	ids, decisions, codes := make([]string, n), make([]string, n), make([]string, n)
	seqs, durs, bin, bout := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	statuses := make([]int32, n)
	for i, je := range es {
		e := &je.Event
		ids[i], seqs[i], statuses[i], decisions[i], codes[i] = e.ID, e.Seq, int32(e.Status), e.Decision, e.Code
		durs[i], bin[i], bout[i] = e.Duration.Microseconds(), e.BytesIn, e.BytesOut
	}
	if _, err := st.ExecContext(ctx, ws, ids, seqs, statuses, decisions, codes, durs, bin, bout); err != nil {
		return fmt.Errorf("audit outcomes: %w", err)
	}
	return nil
}

// usageMonth is the usage counter's month of t: "2026-11" (UTC).
func usageMonth(t time.Time) string { return t.UTC().Format("2006-01") }

// touchLastUsed records when forwarded requests last used a credential and
// a grant (at most once a second each, see due). It does not bump the
// workspace revision: routes do not depend on it.
func (w *auditWriter) touchLastUsed(ctx context.Context, tx *sql.Tx, entries []journal.Entry) error {
	type credKey struct{ ws, cred string }
	type grantKey struct{ ws, agent, cred string }
	credUsed := map[credKey]int64{}
	grantUsed := map[grantKey]int64{}
	for i := range entries {
		e := &entries[i].Event
		if !entries[i].Ended || e.CredentialID == "" || (e.Decision != agentkeys.DecisionAllowed && e.Decision != agentkeys.DecisionError) {
			continue
		}
		used := e.Time.Add(e.Duration).UnixMicro()
		ck := credKey{e.WorkspaceID, e.CredentialID}
		credUsed[ck] = max(credUsed[ck], used)
		if e.AgentID != "" {
			gk := grantKey{e.WorkspaceID, e.AgentID, e.CredentialID}
			grantUsed[gk] = max(grantUsed[gk], used)
		}
	}
	for k, t := range credUsed {
		if !w.due(k.ws+"\x00\x00"+k.cred, t) {
			continue
		}
		if _, err := tx.StmtContext(ctx, w.s.stmts.credUsed).ExecContext(ctx, t, k.ws, k.cred); err != nil {
			return err
		}
	}
	for k, t := range grantUsed {
		if !w.due(k.ws+"\x00"+k.agent+"\x00"+k.cred, t) {
			continue
		}
		if _, err := tx.StmtContext(ctx, w.s.stmts.grantUsed).ExecContext(ctx, t, k.ws, k.agent, k.cred); err != nil {
			return err
		}
	}
	return nil
}

// lastUsedResolution is how stale a stored last_used_at may be: this
// process writes it at most once per interval per credential and grant, so
// a busy credential does not cost two UPDATEs in every audit commit.
const lastUsedResolution = int64(time.Second / time.Microsecond)

// due reports whether last-used time t (µs) of key should be written, and
// notes that it will be. The writer goroutine forgets what it noted when a
// commit fails (see write).
func (w *auditWriter) due(key string, t int64) bool {
	if prev, ok := w.lastUsed[key]; ok && t < prev+lastUsedResolution {
		return false
	}
	if len(w.lastUsed) > 100_000 {
		clear(w.lastUsed)
	}
	w.lastUsed[key] = t
	return true
}

// prepareEvent fills what the store assigns and the caller may leave out.
func (s *Store) prepareEvent(e *agentkeys.AuditEvent) { storesql.PrepareEvent(e, s.now) }

// BeginAudit implements agentkeys.ProxyBackend: it writes e to this
// process's audit journal and returns once write(2) returned, so the event
// survives the process being killed (not an OS crash); the importer puts it
// in the database within about 200 ms, and assigns e's Seq there (so e.Seq
// is not set here). An event without a workspace (a request refused before
// its token resolved) is not stored: no workspace could read it. Returns
// EUNAVAILABLE after Close, or the journal's write error: the proxy then
// refuses the request.
func (s *Store) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	s.prepareEvent(e)
	if e.WorkspaceID == "" {
		return nil
	}
	if err := s.audit.j.Begin(e); err != nil {
		if agentkeys.ErrorCode(err) == agentkeys.EUNAVAILABLE {
			return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the server is shutting down")
		}
		return fmt.Errorf("write audit journal: %w", err)
	}
	return nil
}

// EndAudit implements agentkeys.ProxyBackend: it queues the outcome of an
// event (or the whole row, if it was never begun) and returns at once. For a
// forwarded request it also sets last_used_at of the credential and grant.
// Failures are logged.
func (s *Store) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	s.prepareEvent(e)
	if e.WorkspaceID == "" {
		return
	}
	if err := s.audit.j.End(e); err != nil {
		// The proxy's request id is on the event, not in ctx.
		s.log.WarnContext(ctx, "audit: outcome dropped, store closed", "event", e.ID, "request_id", e.RequestID, "error", err.Error())
		return
	}
	s.credentialErrorHook(e)
}

// flushAudit puts in the database what this process's journal holds and
// what other live processes sharing the journal directory wrote. A failure
// is logged: the read goes on with what the database holds.
func (s *Store) flushAudit(ctx context.Context) {
	if err := s.audit.j.Flush(ctx, true); err != nil {
		s.log.WarnContext(ctx, "audit: journal import before a read failed", "error", agentkeys.ErrorMessage(s.storeErr("audit", err)))
	}
}

// ListAudit implements agentkeys.AuditLog: the workspace's events matching
// f, newest first by Seq (oldest first when f.AfterSeq is set). Limit 0
// means 100; at most 1000 are returned. Returns EINVALID for negative
// numbers.
func (w *Workspace) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	q, args, err := storesql.AuditQuery(f, "workspace_id = $1", w.id)
	if err != nil {
		return nil, err
	}
	w.s.flushAudit(ctx)
	rows, err := w.s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, w.s.storeErr("list audit", err)
	}
	evs, err := storesql.ScanAudit(rows)
	if err != nil {
		return nil, w.s.storeErr("list audit", err)
	}
	return evs, nil
}
