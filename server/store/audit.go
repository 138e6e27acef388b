package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Audit writes go through one writer goroutine per process that commits
// them in groups: it takes every row queued at that moment (up to
// maxAuditBatch), so while one commit is in flight the next group gathers.
// On SQLite a group is one transaction (prepared single-row upserts); on
// PostgreSQL each workspace's part of a group is one statement — sequence
// numbers, usage count and rows together, one round trip. BeginAudit
// returns once its row is committed; EndAudit queues the outcome and returns
// at once. Sequence numbers are handed out per workspace from
// workspaces.audit_seq in the same transaction as the rows, whose row lock
// orders the writers of every replica: no number is handed out twice, and a
// follower (AfterSeq) sees a workspace's rows in commit order.

const (
	maxAuditBatch = 500
	auditQueue    = 8192
	maxAuditList  = 1000
	auditCols     = 18
)

type auditResult struct {
	seq int64
	err error
}

type auditOp struct {
	begin bool
	e     agentkeys.AuditEvent
	res   chan auditResult // begin only
}

type auditWriter struct {
	s        *Store
	stmts    map[int]*sql.Stmt // prepared inserts by row count; writer goroutine only
	cteStmts map[int]*sql.Stmt // prepared one-statement writes by row count (PostgreSQL)
	lastUsed map[string]int64  // last-used times written, by workspace/agent/credential; writer goroutine only
	in       chan *auditOp
	done     chan struct{}

	mu     sync.RWMutex // held for reading while sending, for writing to close
	closed bool
}

func newAuditWriter(s *Store) *auditWriter {
	w := &auditWriter{s: s, stmts: map[int]*sql.Stmt{}, cteStmts: map[int]*sql.Stmt{}, lastUsed: map[string]int64{}, in: make(chan *auditOp, auditQueue), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *auditWriter) send(op *auditOp) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	w.in <- op
	return true
}

func (w *auditWriter) close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
	w.mu.Unlock()
	<-w.done
	for _, m := range []map[int]*sql.Stmt{w.stmts, w.cteStmts} {
		for _, st := range m {
			st.Close()
		}
	}
	return nil
}

func (w *auditWriter) run() {
	defer close(w.done)
	batch := make([]*auditOp, 0, maxAuditBatch)
	for op := range w.in {
		batch = append(batch[:0], op)
	gather:
		for len(batch) < maxAuditBatch {
			select {
			case op, ok := <-w.in:
				if !ok {
					break gather
				}
				batch = append(batch, op)
			default:
				break gather
			}
		}
		w.commit(batch)
	}
}

// commit writes a group — in one transaction, or on PostgreSQL with one
// statement per workspace — and answers every BeginAudit waiting on it.
// When a write fails as a whole for a reason other than a busy database,
// each row is retried on its own so one bad row cannot take the others down.
func (w *auditWriter) commit(batch []*auditOp) {
	if w.s.dialect.auditOneStatement {
		for _, g := range groupByWorkspace(batch, w.s.dialect.auditChunk) {
			w.retrying(g, w.writeStatement)
		}
		if err := w.touchLastUsed(context.Background(), nil, batch); err != nil {
			w.s.log.Error("audit: last-used times not written", "error", agentkeys.ErrorMessage(w.s.storeErr("audit", err)))
			clear(w.lastUsed)
		}
		return
	}
	w.retrying(batch, w.write)
}

// retrying writes ops with write, retrying them one by one when the write
// fails as a whole (not for a busy database), and delivers the results.
func (w *auditWriter) retrying(ops []*auditOp, write func([]*auditOp) error) {
	err := write(ops)
	if err != nil && len(ops) > 1 && !w.s.dialect.isBusy(err) {
		for _, op := range ops {
			w.retrying([]*auditOp{op}, write)
		}
		return
	}
	w.deliver(ops, err)
}

// deliver answers the BeginAudit calls waiting on ops and logs lost outcomes.
func (w *auditWriter) deliver(batch []*auditOp, err error) {
	for _, op := range batch {
		if err != nil && !op.begin {
			w.s.log.Error("audit: outcome not written", "event", op.e.ID, "request_id", op.e.RequestID, "error", agentkeys.ErrorMessage(w.s.storeErr("audit", err)))
		}
		if op.res != nil {
			r := auditResult{err: err}
			if err == nil {
				r.seq = op.e.Seq
			}
			op.res <- r
		}
	}
}

// write assigns sequence numbers (per workspace) and inserts or completes
// every row of the batch, and stamps last_used_at of the credentials and
// grants that forwarded requests used.
func (w *auditWriter) write(batch []*auditOp) error {
	ctx := context.Background()
	err := w.s.withTx(ctx, func(tx *sql.Tx) error {
		perWS := map[string]int64{}
		var order []string
		for _, op := range batch {
			if perWS[op.e.WorkspaceID] == 0 {
				order = append(order, op.e.WorkspaceID)
			}
			perWS[op.e.WorkspaceID]++
		}
		next := map[string]int64{}
		sort.Strings(order) // workspace rows are locked in one order by every replica
		for _, ws := range order {
			var last int64
			if err := tx.StmtContext(ctx, w.s.stmts.auditSeq).QueryRowContext(ctx, perWS[ws], ws).Scan(&last); err != nil {
				return fmt.Errorf("audit sequence of %s: %w", ws, err)
			}
			next[ws] = last - perWS[ws]
		}
		for _, op := range batch {
			next[op.e.WorkspaceID]++
			op.e.Seq = next[op.e.WorkspaceID]
		}
		// One statement per run of distinct ids: an upsert may not touch a
		// row twice.
		for start := 0; start < len(batch); {
			seen := map[string]bool{}
			end := start
			for end < len(batch) && !seen[batch[end].e.ID] {
				seen[batch[end].e.ID] = true
				end++
			}
			if err := w.insert(ctx, tx, batch[start:end]); err != nil {
				return err
			}
			start = end
		}
		if err := w.countUsage(ctx, tx, batch); err != nil {
			return err
		}
		return w.touchLastUsed(ctx, tx, batch)
	})
	if err != nil {
		clear(w.lastUsed) // what was noted was not written
	}
	return err
}

// insert writes ops (distinct ids) in statements of up to
// dialect.auditChunk rows, each prepared once per process.
func (w *auditWriter) insert(ctx context.Context, tx *sql.Tx, ops []*auditOp) error {
	for len(ops) > 0 {
		n := min(len(ops), w.s.dialect.auditChunk)
		stmt, err := w.statement(ctx, n)
		if err != nil {
			return err
		}
		args := make([]any, 0, n*auditCols)
		for _, op := range ops[:n] {
			e := &op.e
			args = append(args, e.ID, e.WorkspaceID, e.Seq, e.Time.UnixMicro(), e.RequestID, e.AgentID, e.AgentName, e.CredentialID,
				e.CredentialName, e.Method, e.Host, e.Path, e.Status, e.Decision, e.Code, e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit events: %w", err)
		}
		ops = ops[n:]
	}
	return nil
}

// statement returns the prepared upsert of n audit rows. Only the writer
// goroutine calls it.
func (w *auditWriter) statement(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := w.stmts[n]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_events (id, workspace_id, seq, time, request_id, agent_id, agent_name, credential_id,
		credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out) VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := 1; j <= auditCols; j++ {
			if j > 1 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*auditCols+j))
		}
		b.WriteByte(')')
	}
	b.WriteString(` ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, status = excluded.status, decision = excluded.decision,
		code = excluded.code, duration_us = excluded.duration_us, bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out
		WHERE audit_events.workspace_id = excluded.workspace_id`)
	st, err := w.s.db.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("prepare audit insert: %w", err)
	}
	w.stmts[n] = st
	return st, nil
}

// inTx returns st bound to tx, or st itself (autocommit) when tx is nil.
func inTx(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	if tx == nil {
		return st
	}
	return tx.StmtContext(ctx, st)
}

// groupByWorkspace splits a batch into groups of one workspace and one
// usage month, of distinct event ids (an upsert may not touch a row twice)
// and at most chunk rows, keeping the order of each event's operations.
func groupByWorkspace(batch []*auditOp, chunk int) [][]*auditOp {
	type key struct{ ws, month string }
	var order []key
	byKey := map[key][]*auditOp{}
	for _, op := range batch {
		k := key{op.e.WorkspaceID, usageMonth(op.e.Time)}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	var out [][]*auditOp
	for _, k := range order {
		ops := byKey[k]
		for len(ops) > 0 {
			seen := map[string]bool{}
			n := 0
			for n < len(ops) && n < chunk && !seen[ops[n].e.ID] {
				seen[ops[n].e.ID] = true
				n++
			}
			out = append(out, ops[:n])
			ops = ops[n:]
		}
	}
	return out
}

// writeStatement writes ops — one workspace, one usage month, distinct ids
// — with one statement (its own transaction): the workspace's sequence
// numbers, the usage count and the rows together.
func (w *auditWriter) writeStatement(ops []*auditOp) error {
	ctx := context.Background()
	stmt, err := w.cteStatement(ctx, len(ops))
	if err != nil {
		return err
	}
	var counted int64
	for _, op := range ops {
		if op.begin && op.e.Decision != agentkeys.DecisionDenied {
			counted++
		}
	}
	first := &ops[0].e
	args := make([]any, 0, 4+len(ops)*(auditCols-2))
	args = append(args, int64(len(ops)), first.WorkspaceID, usageMonth(first.Time), counted)
	for _, op := range ops {
		e := &op.e
		args = append(args, e.ID, e.Time.UnixMicro(), e.RequestID, e.AgentID, e.AgentName, e.CredentialID,
			e.CredentialName, e.Method, e.Host, e.Path, e.Status, e.Decision, e.Code, e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("audit events: %w", err)
	}
	defer rows.Close()
	seqs := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return fmt.Errorf("audit events: %w", err)
		}
		seqs[id] = seq
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit events: %w", err)
	}
	for _, op := range ops {
		seq, ok := seqs[op.e.ID]
		if !ok {
			return fmt.Errorf("audit event %s was not written (unknown workspace %s, or an id of another workspace)", op.e.ID, op.e.WorkspaceID)
		}
		op.e.Seq = seq
	}
	return nil
}

// cteStatement returns the prepared one-statement write of n rows:
// $1 row count, $2 workspace, $3 usage month, $4 requests to count, then
// 16 values per row.
func (w *auditWriter) cteStatement(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := w.cteStmts[n]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(`WITH s AS (UPDATE workspaces SET audit_seq = audit_seq + $1 WHERE id = $2 RETURNING audit_seq),
		u AS (INSERT INTO usage (workspace_id, month, requests) SELECT $2, $3::text, $4::bigint FROM s WHERE $4::bigint > 0
			ON CONFLICT (workspace_id, month) DO UPDATE SET requests = usage.requests + excluded.requests)
		INSERT INTO audit_events (id, workspace_id, seq, time, request_id, agent_id, agent_name, credential_id,
			credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out)
		SELECT v.id, $2, s.audit_seq - $1 + v.ord, v.time, v.request_id, v.agent_id, v.agent_name, v.credential_id,
			v.credential_name, v.method, v.host, v.path, v.status, v.decision, v.code, v.duration_us, v.bytes_in, v.bytes_out
		FROM s, (VALUES `)
	types := []string{"text", "bigint", "text", "text", "text", "text", "text", "text", "text", "text", "integer", "text", "text", "bigint", "bigint", "bigint"}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d", i+1)
		for j, t := range types {
			fmt.Fprintf(&b, ", $%d::%s", 5+i*len(types)+j, t)
		}
		b.WriteByte(')')
	}
	b.WriteString(`) AS v (ord, id, time, request_id, agent_id, agent_name, credential_id, credential_name, method, host, path,
			status, decision, code, duration_us, bytes_in, bytes_out)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, status = excluded.status, decision = excluded.decision,
			code = excluded.code, duration_us = excluded.duration_us, bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out
			WHERE audit_events.workspace_id = excluded.workspace_id
		RETURNING id, seq`)
	st, err := w.s.db.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("prepare audit statement: %w", err)
	}
	w.cteStmts[n] = st
	return st, nil
}

// usageMonth is the usage counter's month of t: "2026-11" (UTC).
func usageMonth(t time.Time) string { return t.UTC().Format("2006-01") }

// countUsage adds the batch's forwarded requests — events begun with a
// decision other than denied — to the monthly usage counters, in the
// transaction that makes their rows durable.
func (w *auditWriter) countUsage(ctx context.Context, tx *sql.Tx, batch []*auditOp) error {
	type key struct{ ws, month string }
	counts := map[key]int64{}
	for _, op := range batch {
		if op.begin && op.e.Decision != agentkeys.DecisionDenied {
			counts[key{op.e.WorkspaceID, usageMonth(op.e.Time)}]++
		}
	}
	for k, n := range counts {
		if _, err := tx.StmtContext(ctx, w.s.stmts.usage).ExecContext(ctx, k.ws, k.month, n); err != nil {
			return fmt.Errorf("usage of %s: %w", k.ws, err)
		}
	}
	return nil
}

// touchLastUsed records when forwarded requests last used a credential and
// a grant (at most once a second each, see due). It does not bump the
// workspace revision: routes do not depend on it.
func (w *auditWriter) touchLastUsed(ctx context.Context, tx *sql.Tx, batch []*auditOp) error {
	type credKey struct{ ws, cred string }
	type grantKey struct{ ws, agent, cred string }
	credUsed := map[credKey]int64{}
	grantUsed := map[grantKey]int64{}
	for _, op := range batch {
		e := &op.e
		if op.begin || e.CredentialID == "" || (e.Decision != agentkeys.DecisionAllowed && e.Decision != agentkeys.DecisionError) {
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
		if _, err := inTx(ctx, tx, w.s.stmts.credUsed).ExecContext(ctx, t, k.ws, k.cred); err != nil {
			return err
		}
	}
	for k, t := range grantUsed {
		if !w.due(k.ws+"\x00"+k.agent+"\x00"+k.cred, t) {
			continue
		}
		if _, err := inTx(ctx, tx, w.s.stmts.grantUsed).ExecContext(ctx, t, k.ws, k.agent, k.cred); err != nil {
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
func (s *Store) prepareEvent(e *agentkeys.AuditEvent) {
	if e.ID == "" {
		e.ID = agentkeys.NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = s.stamp()
	}
	if e.Decision == "" {
		e.Decision = agentkeys.DecisionPending
	}
	if e.Duration == 0 && e.DurationMs > 0 {
		e.Duration = time.Duration(e.DurationMs * float64(time.Millisecond))
	}
}

// BeginAudit implements agentkeys.ProxyBackend: it records e and returns
// once the row is committed (concurrent calls share one commit), with e.Seq
// set. An event without a workspace (a request refused before its token
// resolved) is not stored: no workspace could read it. Returns EUNAVAILABLE
// after Close, ctx's error when ctx ends first, or the store's error: the
// proxy then refuses the request.
func (s *Store) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	s.prepareEvent(e)
	if e.WorkspaceID == "" {
		return nil
	}
	op := &auditOp{begin: true, e: *e, res: make(chan auditResult, 1)}
	if !s.audit.send(op) {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the server is shutting down")
	}
	select {
	case r := <-op.res:
		if r.err != nil {
			return s.storeErr("write audit event", r.err)
		}
		e.Seq = r.seq
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EndAudit implements agentkeys.ProxyBackend: it queues the outcome of an
// event (or the whole row, if it was never begun) and returns at once. For a
// forwarded request it also sets last_used_at of the credential and grant.
// Failures are logged; Close waits for queued outcomes.
func (s *Store) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	s.prepareEvent(e)
	if e.WorkspaceID == "" {
		return
	}
	if !s.audit.send(&auditOp{e: *e}) {
		// The proxy's request id is on the event, not in ctx.
		s.log.WarnContext(ctx, "audit: outcome dropped, store closed", "event", e.ID, "request_id", e.RequestID)
	}
}

// ListAudit implements agentkeys.AuditLog: the workspace's events matching
// f, newest first by Seq (oldest first when f.AfterSeq is set). Limit 0
// means 100; at most 1000 are returned. Returns EINVALID for negative
// numbers.
func (w *Workspace) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	if f.Limit < 0 || f.BeforeSeq < 0 || f.AfterSeq < 0 || f.Status < 0 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "audit limit, status and sequence numbers may not be negative")
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, maxAuditList)
	where := []string{"workspace_id = $1"}
	args := []any{w.id}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
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
	rows, err := w.s.db.QueryContext(ctx, `SELECT id, seq, time, request_id, workspace_id, agent_id, agent_name, credential_id,
		credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out
		FROM audit_events WHERE `+strings.Join(where, " AND ")+` ORDER BY seq `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, w.s.storeErr("list audit", err)
	}
	defer rows.Close()
	out := []*agentkeys.AuditEvent{}
	for rows.Next() {
		var e agentkeys.AuditEvent
		var t, dur int64
		if err := rows.Scan(&e.ID, &e.Seq, &t, &e.RequestID, &e.WorkspaceID, &e.AgentID, &e.AgentName, &e.CredentialID,
			&e.CredentialName, &e.Method, &e.Host, &e.Path, &e.Status, &e.Decision, &e.Code, &dur, &e.BytesIn, &e.BytesOut); err != nil {
			return nil, w.s.storeErr("list audit", err)
		}
		e.Time = fromMicros(t)
		e.Duration = time.Duration(dur) * time.Microsecond
		e.DurationMs = float64(dur) / 1000
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, w.s.storeErr("list audit", err)
	}
	return out, nil
}
