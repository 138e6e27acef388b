package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Billing state per workspace: the Stripe customer and subscription ids,
// the subscription's status and current period. No card data is ever
// stored (Stripe Checkout and the Customer Portal collect it).

// Billing statuses the server records (Stripe's subscription statuses
// pass through as they are).
const (
	BillingActive   = "active"
	BillingPastDue  = "past_due"
	BillingCanceled = "canceled"
)

// BillingInfo is a workspace's billing state.
type BillingInfo struct {
	Plan         string     `json:"plan"`
	Status       string     `json:"status"` // "" before any subscription
	PeriodEnd    *time.Time `json:"periodEnd,omitempty"`
	Customer     string     `json:"-"`
	Subscription string     `json:"-"`
}

// Billing returns the workspace's billing state. Returns ENOTFOUND for an
// unknown workspace.
func (w *Workspace) Billing(ctx context.Context) (*BillingInfo, error) {
	var b BillingInfo
	var end sql.NullInt64
	err := w.s.db.QueryRowContext(ctx, `SELECT plan, billing_status, period_end, stripe_customer, stripe_subscription
		FROM workspaces WHERE id = $1`, w.id).Scan(&b.Plan, &b.Status, &end, &b.Customer, &b.Subscription)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no workspace %s", w.id)
	}
	if err != nil {
		return nil, w.s.storeErr("billing", err)
	}
	if end.Valid {
		t := time.UnixMicro(end.Int64).UTC()
		b.PeriodEnd = &t
	}
	return &b, nil
}

// SetCustomer records the workspace's Stripe customer id (created before
// its first Checkout Session).
func (w *Workspace) SetCustomer(ctx context.Context, customer string) error {
	_, err := w.s.db.ExecContext(ctx, `UPDATE workspaces SET stripe_customer = $1 WHERE id = $2`, customer, w.id)
	return w.s.storeErr("set customer", err)
}

// BillingUpdate is what one Stripe event changes. The workspace is
// WorkspaceID, else the one whose customer is Customer. Empty fields (nil
// pointers) are kept; ClearPeriod drops the Stripe period (the calendar
// month applies again).
type BillingUpdate struct {
	WorkspaceID  string
	Customer     string
	Subscription *string
	Plan         string
	Status       string
	PeriodStart  time.Time
	PeriodEnd    time.Time
	ClearPeriod  bool
}

// ApplyBilling applies the Stripe event eventID once: a second delivery of
// the same id changes nothing and returns false. The event id is recorded
// and the workspace changed in one transaction, and the change reaches
// every replica's request limit at once (the revision is bumped and
// settled). An event for no known workspace is recorded and ignored
// (false). Returns EINVALID for an unknown plan.
func (s *Store) ApplyBilling(ctx context.Context, eventID string, u BillingUpdate) (bool, error) {
	if u.Plan != "" {
		if _, ok := agentkeys.LookupPlan(u.Plan); !ok {
			return false, agentkeys.Errorf(agentkeys.EINVALID, "unknown plan %q", u.Plan)
		}
	}
	applied := false
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO billing_events (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
			eventID, s.stamp().UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // applied before
		}
		ws := u.WorkspaceID
		if ws == "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM workspaces WHERE stripe_customer = $1 AND stripe_customer <> ''`, u.Customer).Scan(&ws)
			if errors.Is(err, sql.ErrNoRows) {
				s.log.WarnContext(ctx, "billing: an event for an unknown customer was ignored", "event", eventID)
				return nil
			}
			if err != nil {
				return err
			}
		}
		p, err := readPlan(ctx, tx, ws)
		if agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND {
			s.log.WarnContext(ctx, "billing: an event for an unknown workspace was ignored", "event", eventID)
			return nil
		}
		if err != nil {
			return err
		}
		plan, status := p.plan, p.billingStatus
		if u.Plan != "" {
			plan = u.Plan
		}
		if u.Status != "" {
			status = u.Status
		}
		start, end := p.periodStart, p.periodEnd
		switch {
		case u.ClearPeriod:
			start, end = sql.NullInt64{}, sql.NullInt64{}
		case !u.PeriodStart.IsZero() && u.PeriodEnd.After(u.PeriodStart):
			start = sql.NullInt64{Int64: u.PeriodStart.UnixMicro(), Valid: true}
			end = sql.NullInt64{Int64: u.PeriodEnd.UnixMicro(), Valid: true}
		}
		q := `UPDATE workspaces SET plan = $1, billing_status = $2, period_start = $3, period_end = $4, revision = revision + 1`
		args := []any{plan, status, start, end}
		if u.Customer != "" {
			args = append(args, u.Customer)
			q += `, stripe_customer = $5`
		}
		if u.Subscription != nil {
			args = append(args, *u.Subscription)
			q += `, stripe_subscription = $` + strconv.Itoa(len(args))
		}
		args = append(args, ws)
		q += ` WHERE id = $` + strconv.Itoa(len(args))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, s.storeErr("apply billing event", err)
	}
	if applied {
		settle()
	}
	return applied, nil
}
