package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Plans and limits. A workspace's limits are its plan's (agentkeys.Plans)
// unless the operator set one (SetPlan: the limit_* columns, NULL = the
// plan's, 0 = unlimited). Creating a credential or an agent checks the
// limit inside the creating transaction, after Workspace.write has locked
// the workspace row (PostgreSQL) or taken the write lock (SQLite), so
// concurrent creates cannot pass the check together. The request limit is
// quota.go's.

// planRow is what workspaces holds about a workspace's plan and period.
type planRow struct {
	plan                   string
	credentials, agents    sql.NullInt64
	requests               sql.NullInt64
	periodStart, periodEnd sql.NullInt64
	billingStatus          string
	notified               string
}

const planCols = `plan, limit_credentials, limit_agents, limit_requests, period_start, period_end, billing_status, limit_notified`

func (p *planRow) scan(r interface{ Scan(...any) error }, extra ...any) error {
	return r.Scan(append([]any{&p.plan, &p.credentials, &p.agents, &p.requests, &p.periodStart, &p.periodEnd, &p.billingStatus, &p.notified}, extra...)...)
}

// readPlan reads ws's plan row. Returns ENOTFOUND for an unknown workspace.
func readPlan(ctx context.Context, q querier, ws string) (*planRow, error) {
	p := &planRow{}
	err := p.scan(q.QueryRowContext(ctx, `SELECT `+planCols+` FROM workspaces WHERE id = $1`, ws))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no workspace %s", ws)
	}
	return p, err
}

// limits are the plan's limits with the operator's overrides.
func (p *planRow) limits() agentkeys.Limits {
	pl, _ := agentkeys.LookupPlan(p.plan)
	l := pl.Limits
	if p.credentials.Valid {
		l.Credentials = int(p.credentials.Int64)
	}
	if p.agents.Valid {
		l.Agents = int(p.agents.Int64)
	}
	if p.requests.Valid {
		l.RequestsPerMonth = p.requests.Int64
	}
	return l
}

// Period is a billing period: Stripe's current period when the workspace
// has one covering the time, else the calendar month in UTC. Key names the
// usage counter's row.
type Period struct {
	Start, End time.Time
	Key        string
}

// periodAt is the period of ws (with the stored Stripe period start and
// end, NULL when none) that contains t.
func periodAt(t time.Time, start, end sql.NullInt64) Period {
	t = t.UTC()
	if start.Valid && end.Valid && t.UnixMicro() >= start.Int64 && t.UnixMicro() < end.Int64 {
		s := time.UnixMicro(start.Int64).UTC()
		return Period{Start: s, End: time.UnixMicro(end.Int64).UTC(), Key: "p" + strconv.FormatInt(start.Int64, 10)}
	}
	s := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Period{Start: s, End: s.AddDate(0, 1, 0), Key: usageMonth(t)}
}

// checkCreate refuses, inside the creating transaction tx (which holds the
// workspace's lock), one more row of table than ws's limit allows. Returns
// EPLANLIMIT naming the limit and the plan that would allow it.
func checkCreate(ctx context.Context, tx *sql.Tx, ws, limit string) error {
	p, err := readPlan(ctx, tx, ws)
	if err != nil {
		return err
	}
	max := p.limits().Of(limit)
	if max == 0 {
		return nil
	}
	table := map[string]string{agentkeys.LimitCredentials: "credentials", agentkeys.LimitAgents: "agents"}[limit]
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, ws).Scan(&n); err != nil {
		return err
	}
	if n >= max {
		return agentkeys.PlanLimitError(limit, p.plan, max)
	}
	return nil
}

// PlanChange is what the operator changes with SetPlan: a plan (empty:
// keep it; a new plan drops the overrides not given here) and limits that
// override the plan's (nil: the plan's; 0: unlimited).
type PlanChange struct {
	Plan        string
	Credentials *int64
	Agents      *int64
	Requests    *int64
}

// SetPlan sets workspace ws's plan and limits. It takes effect at once on
// every replica: creates read the limits in their transaction, and the
// proxy's request limit is reloaded when the workspace's revision changes
// (bumped here). Returns EINVALID for an unknown plan or a negative limit,
// ENOTFOUND for an unknown workspace; nothing changes then.
func (s *Store) SetPlan(ctx context.Context, ws string, ch PlanChange) error {
	if ch.Plan != "" {
		if _, ok := agentkeys.LookupPlan(ch.Plan); !ok {
			return agentkeys.Errorf(agentkeys.EINVALID, "unknown plan %q: choose one of %v", ch.Plan, agentkeys.PlanNames())
		}
	}
	if ch.Plan == "" && ch.Credentials == nil && ch.Agents == nil && ch.Requests == nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "nothing to change: give a plan or a limit")
	}
	for _, v := range []*int64{ch.Credentials, ch.Agents, ch.Requests} {
		if v != nil && *v < 0 {
			return agentkeys.Errorf(agentkeys.EINVALID, "limits are 0 (unlimited) or more")
		}
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		p, err := readPlan(ctx, tx, ws)
		if err != nil {
			return err
		}
		if ch.Plan != "" && ch.Plan != p.plan {
			p.plan = ch.Plan
			p.credentials, p.agents, p.requests = sql.NullInt64{}, sql.NullInt64{}, sql.NullInt64{}
		}
		set := func(dst *sql.NullInt64, v *int64) {
			if v != nil {
				*dst = sql.NullInt64{Int64: *v, Valid: true}
			}
		}
		set(&p.credentials, ch.Credentials)
		set(&p.agents, ch.Agents)
		set(&p.requests, ch.Requests)
		_, err = tx.ExecContext(ctx, `UPDATE workspaces SET plan = $1, limit_credentials = $2, limit_agents = $3, limit_requests = $4,
			revision = revision + 1 WHERE id = $5`, p.plan, p.credentials, p.agents, p.requests, ws)
		return err
	})
	if err != nil {
		return s.storeErr("set plan", err)
	}
	settle() // every replica's next request sees the new limits (freshness.go)
	s.log.InfoContext(ctx, "workspace plan set", "workspace", ws, "plan", ch.Plan)
	return nil
}
