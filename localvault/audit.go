package localvault

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Audit writes go through one writer goroutine that commits them in groups:
// it takes every row queued at that moment (up to maxAuditBatch) and
// commits them in one transaction, so while one commit is in flight the
// next group gathers. Requests are never serialised behind each other's
// commits and an idle vault adds no waiting. BeginAudit returns once its
// row is committed (WAL with synchronous=NORMAL: it survives the process
// being killed; a power loss may take the last few commits); EndAudit
// queues the outcome and returns at once.

const (
	maxAuditBatch = 500
	auditQueue    = 4096
	// maxAuditList caps ListAudit's Limit.
	maxAuditList = 1000
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
	db   *sql.DB
	log  *slog.Logger
	in   chan *auditOp
	done chan struct{}

	mu     sync.RWMutex // held for reading while sending, for writing to close
	closed bool
}

func newAuditWriter(db *sql.DB, log *slog.Logger) *auditWriter {
	w := &auditWriter{db: db, log: log, in: make(chan *auditOp, auditQueue), done: make(chan struct{})}
	go w.run()
	return w
}

// send queues op; false after close.
func (w *auditWriter) send(op *auditOp) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	w.in <- op
	return true
}

// close stops accepting rows, commits everything queued and waits.
func (w *auditWriter) close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
	w.mu.Unlock()
	<-w.done
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

// commit writes a group in one transaction. If the group fails as a whole
// for a reason other than a busy database, each row is retried on its own
// so one bad row cannot take the others down.
func (w *auditWriter) commit(batch []*auditOp) {
	seqs, err := w.write(batch)
	if err != nil && len(batch) > 1 && !isBusy(err) {
		for _, op := range batch {
			w.commit([]*auditOp{op})
		}
		return
	}
	for i, op := range batch {
		if err != nil && !op.begin {
			w.log.Error("audit: outcome not written", "event", op.e.ID, "err", err)
		}
		if op.res != nil {
			r := auditResult{err: err}
			if err == nil {
				r.seq = seqs[i]
			}
			op.res <- r
		}
	}
}

func (w *auditWriter) write(batch []*auditOp) ([]int64, error) {
	ctx := context.Background()
	seqs := make([]int64, len(batch))
	err := withTx(ctx, w.db, func(tx *sql.Tx) error {
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&seq); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (id, seq, time, request_id, workspace_id, agent_id, agent_name,
			credential_id, credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, status = excluded.status, decision = excluded.decision,
				code = excluded.code, duration_us = excluded.duration_us, bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out`)
		if err != nil {
			return err
		}
		defer ins.Close()
		credUsed := map[string]int64{}
		grantUsed := map[[2]string]int64{}
		for i, op := range batch {
			seq++
			seqs[i] = seq
			e := &op.e
			_, err := ins.ExecContext(ctx, e.ID, seq, e.Time.UnixMicro(), e.RequestID, e.WorkspaceID, e.AgentID, e.AgentName,
				e.CredentialID, e.CredentialName, e.Method, e.Host, e.Path, e.Status, e.Decision, e.Code,
				e.Duration.Microseconds(), e.BytesIn, e.BytesOut)
			if err != nil {
				return fmt.Errorf("audit event %s: %w", e.ID, err)
			}
			if !op.begin && e.CredentialID != "" && (e.Decision == agentkeys.DecisionAllowed || e.Decision == agentkeys.DecisionError) {
				used := e.Time.Add(e.Duration).UnixMicro()
				credUsed[e.CredentialID] = max(credUsed[e.CredentialID], used)
				if e.AgentID != "" {
					k := [2]string{e.AgentID, e.CredentialID}
					grantUsed[k] = max(grantUsed[k], used)
				}
			}
		}
		for id, t := range credUsed {
			if _, err := tx.ExecContext(ctx, `UPDATE credentials SET last_used_at = max(COALESCE(last_used_at, 0), ?) WHERE id = ?`, t, id); err != nil {
				return err
			}
		}
		for k, t := range grantUsed {
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET last_used_at = max(COALESCE(last_used_at, 0), ?) WHERE agent_id = ? AND credential_id = ?`, t, k[0], k[1]); err != nil {
				return err
			}
		}
		return nil
	})
	return seqs, err
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
// Time and Decision "pending" when empty) and returns once the row is
// committed, with e.Seq set. Concurrent calls share one commit. Returns
// EUNAVAILABLE after Close, the context's error if ctx ends first (the row
// may still be written), or the store's error: the proxy must then refuse
// the request.
func (v *Vault) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	if err := v.usable(); err != nil {
		return err
	}
	v.prepareEvent(e)
	op := &auditOp{begin: true, e: *e, res: make(chan auditResult, 1)}
	if !v.audit.send(op) {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is closed")
	}
	select {
	case r := <-op.res:
		if r.err != nil {
			return storeErr("write audit event", r.err)
		}
		e.Seq = r.seq
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EndAudit implements agentkeys.ProxyBackend: it queues the outcome
// (status, bytes, duration, decision, code; a new Seq) of an event begun
// earlier — or the whole row, if it was never begun — and returns at once.
// For a forwarded request it also sets last_used_at of the credential and
// the grant. Failures are logged; Close waits for queued outcomes.
func (v *Vault) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	v.prepareEvent(e)
	if !v.audit.send(&auditOp{e: *e}) {
		v.log.Warn("audit: outcome dropped, vault closed", "event", e.ID)
	}
}

// ListAudit implements agentkeys.AuditLog: events matching f, newest first
// by Seq (oldest first when f.AfterSeq is set). Limit 0 means 100; at most
// 1000 are returned.
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
