package storesql

// The audit_events query behind ListAudit in both stores, so the filters
// mean the same everywhere.

import (
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

const auditCols = `id, seq, time, request_id, workspace_id, agent_id, agent_name, credential_id,
	credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out`

// AuditQuery returns the query for the events matching f within scope — a
// condition on audit_events whose placeholders $1… take scopeArgs, or ""
// for every event — and its arguments: newest first by seq, oldest first
// when f.AfterSeq is set; Limit 0 means agentkeys.DefaultAuditLimit, at most agentkeys.MaxAuditLimit. Returns
// EINVALID for negative numbers.
func AuditQuery(f agentkeys.AuditFilter, scope string, scopeArgs ...any) (string, []any, error) {
	if f.Limit < 0 || f.BeforeSeq < 0 || f.AfterSeq < 0 || f.Status < 0 {
		return "", nil, agentkeys.Errorf(agentkeys.EINVALID, "audit limit, status and sequence numbers may not be negative")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return "", nil, agentkeys.Errorf(agentkeys.EINVALID, "the audit time range ends before it starts: give an until later than since")
	}
	limit := f.Limit
	if limit == 0 {
		limit = agentkeys.DefaultAuditLimit
	}
	limit = min(limit, agentkeys.MaxAuditLimit)
	var where []string
	if scope != "" {
		where = append(where, scope)
	}
	args := append([]any(nil), scopeArgs...)
	add := func(col, op string, arg any) {
		args = append(args, arg)
		where = append(where, col+" "+op+" $"+strconv.Itoa(len(args)))
	}
	if f.AgentID != "" {
		add("agent_id", "=", f.AgentID)
	}
	if f.CredentialID != "" {
		add("credential_id", "=", f.CredentialID)
	}
	if f.Status != 0 {
		add("status", "=", f.Status)
	}
	if f.Decision != "" {
		add("decision", "=", f.Decision)
	}
	if !f.Since.IsZero() {
		add("time", ">=", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("time", "<", f.Until.UnixMicro())
	}
	if f.BeforeSeq > 0 {
		add("seq", "<", f.BeforeSeq)
	}
	order := "DESC"
	if f.AfterSeq > 0 {
		add("seq", ">", f.AfterSeq)
		order = "ASC"
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	return `SELECT ` + auditCols + ` FROM audit_events` + cond + ` ORDER BY seq ` + order + ` LIMIT $` + strconv.Itoa(len(args)), args, nil
}

// ScanAudit reads the rows of an AuditQuery and closes them. Times are Unix
// microseconds in the table.
func ScanAudit(rows *sql.Rows) ([]*agentkeys.AuditEvent, error) {
	defer rows.Close()
	out := []*agentkeys.AuditEvent{}
	for rows.Next() {
		var e agentkeys.AuditEvent
		var t, dur int64
		if err := rows.Scan(&e.ID, &e.Seq, &t, &e.RequestID, &e.WorkspaceID, &e.AgentID, &e.AgentName, &e.CredentialID,
			&e.CredentialName, &e.Method, &e.Host, &e.Path, &e.Status, &e.Decision, &e.Code, &dur, &e.BytesIn, &e.BytesOut); err != nil {
			return nil, err
		}
		e.Time = time.UnixMicro(t).UTC()
		e.Duration = time.Duration(dur) * time.Microsecond
		e.DurationMs = float64(dur) / 1000
		out = append(out, &e)
	}
	return out, rows.Err()
}

// PrepareEvent fills what a store assigns to an audit event and the caller
// may leave out: an id, the time (now), the decision "pending", Duration
// from DurationMs.
func PrepareEvent(e *agentkeys.AuditEvent, now func() time.Time) {
	if e.ID == "" {
		e.ID = agentkeys.NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = Stamp(now)
	}
	if e.Decision == "" {
		e.Decision = agentkeys.DecisionPending
	}
	if e.Duration == 0 && e.DurationMs > 0 {
		e.Duration = time.Duration(e.DurationMs * float64(time.Millisecond))
	}
}
