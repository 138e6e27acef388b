package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// Admin actions recorded in the audit log.
const (
	ActionMemberRoleChanged   = "member.role_changed"
	ActionMemberRemoved       = "member.removed"
	ActionMemberLeft          = "member.left"
	ActionInvitationCreated   = "invitation.created"
	ActionInvitationResent    = "invitation.resent"
	ActionInvitationCancelled = "invitation.cancelled"
	ActionInvitationAccepted  = "invitation.accepted"
	ActionAPIKeyCreated       = "api_key.created"
	ActionAPIKeyRotated       = "api_key.rotated"
	ActionAPIKeyRevoked       = "api_key.revoked"
	ActionWorkspaceRenamed    = "workspace.renamed"
	ActionWorkspaceDeleted    = "workspace.deleted"
)

// recordAdmin writes one admin event in tx, numbered from the workspace's
// audit sequence (whose row the caller's transaction has already locked by
// bumping the revision).
func (s *Store) recordAdmin(ctx context.Context, tx *sql.Tx, wsID string, a *agentkeys.Actor, action, target string) error {
	var seq int64
	var ps, pe sql.NullInt64 // the billing period, which the statement also returns (audit.go)
	if err := tx.StmtContext(ctx, s.stmts.auditSeq).QueryRowContext(ctx, 1, wsID).Scan(&seq, &ps, &pe); err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	var uid, email string
	if a != nil {
		uid, email = a.UserID, a.Email
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO admin_events (id, workspace_id, seq, time, request_id, actor_user_id, actor_email, action, target)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		agentkeys.NewID("evt"), wsID, seq, s.stamp().UnixMicro(), agentkeys.RequestID(ctx), uid, email, action, target)
	return err
}

// AdminEventFilter selects admin events: BeforeSeq/AfterSeq/Limit and
// Since/Until as in agentkeys.AuditFilter.
type AdminEventFilter struct {
	BeforeSeq, AfterSeq int64
	Limit               int
	Since, Until        time.Time
}

// ListAdminEvents returns a workspace's admin events as audit events
// (Decision agentkeys.DecisionAdmin; Action, actor and Target set), newest
// first (oldest first with AfterSeq). The acting user is named; a token,
// key or password never is.
func (s *Store) ListAdminEvents(ctx context.Context, wsID string, f AdminEventFilter) ([]*agentkeys.AuditEvent, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := []string{"workspace_id = $1"}, []any{wsID}
	if f.BeforeSeq > 0 {
		args = append(args, f.BeforeSeq)
		where = append(where, fmt.Sprintf("seq < $%d", len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since.UnixMicro())
		where = append(where, fmt.Sprintf("time >= $%d", len(args)))
	}
	if !f.Until.IsZero() {
		args = append(args, f.Until.UnixMicro())
		where = append(where, fmt.Sprintf("time < $%d", len(args)))
	}
	order := "DESC"
	if f.AfterSeq > 0 {
		args = append(args, f.AfterSeq)
		where = append(where, fmt.Sprintf("seq > $%d", len(args)))
		order = "ASC"
	}
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT id, seq, time, request_id, actor_user_id, actor_email, action, target FROM admin_events
		WHERE `+strings.Join(where, " AND ")+` ORDER BY seq `+order+fmt.Sprintf(" LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, s.storeErr("list admin events", err)
	}
	defer rows.Close()
	out := []*agentkeys.AuditEvent{}
	for rows.Next() {
		e := agentkeys.AuditEvent{WorkspaceID: wsID, Decision: agentkeys.DecisionAdmin}
		var t int64
		if err := rows.Scan(&e.ID, &e.Seq, &t, &e.RequestID, &e.ActorUserID, &e.ActorEmail, &e.Action, &e.Target); err != nil {
			return nil, s.storeErr("list admin events", err)
		}
		e.Time = storesql.FromMicros(t)
		out = append(out, &e)
	}
	return out, s.storeErr("list admin events", rows.Err())
}
