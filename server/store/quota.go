package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
)

// The request limit, enforced by the hosted proxy without a database read
// per request: leases. Each process admits a workspace's requests from a
// lease it took in the database (usage.admitted of the period, raised in one
// transaction that never lets it pass the limit), and takes the next lease
// when its lease is used up. A lease is
//
//	min(margin(limit), max(1, (limit − admitted) / 16))
//
// requests, so a workspace far from its limit costs one short transaction
// every margin requests (every 1,000 on Pro), and the last ones of the
// period one each.
//
// Overshoot: none. admitted never passes the limit, and a request is
// forwarded only from a lease (a lowered limit lets a replica finish the
// lease it holds: at most margin(limit) more). Undershoot: a workspace is
// refused once admitted reaches the limit, while other replicas may still
// hold unused leases (each at most (limit − admitted) / 16 when taken, so a
// few requests near the limit); they forward those, and Close gives what
// is unused back (a killed process's lease, at most margin(limit), is lost
// for the period). One process alone refuses exactly from the request past
// the limit. margin(limit) = max(1% of the limit, 10).
//
// Usage as Status shows it is counted from the audit rows (requests
// forwarded), not from leases.

// margin is the largest lease.
func margin(limit int64) int64 { return max(limit/100, 10) }

// exhaustedRetry is how often a process whose workspace used its limit
// asks the database again (another replica may have given a lease back).
const exhaustedRetry = time.Second

// LimitReachedEvent is the usage.limit_reached event of a workspace:
// raised once per billing period (the first replica to record it in the
// database raises it).
type LimitReachedEvent struct {
	WorkspaceID string
	Plan        string
	Limit       int64
	Period      Period
}

// quota is one workspace's request limit as this process sees it.
type quota struct {
	lease sync.Mutex // held while taking a lease

	mu        sync.Mutex
	rev       int64 // the workspace revision the plan was read at
	plan      string
	limit     int64 // 0: unlimited
	ps, pe    sql.NullInt64
	period    Period
	left      int64     // requests left in this process's lease for period
	exhausted time.Time // when the database said the period's limit is used (zero: not)
	notified  string    // period key whose event this process knows is raised
}

type quotaTable struct {
	mu sync.RWMutex
	m  map[string]*quota
}

// quotaOf returns ws's quota, (re)reading the plan when missing or when the
// workspace's revision moved since (SetPlan bumps it).
func (s *Store) quotaOf(ctx context.Context, ws string) (*quota, error) {
	s.quotas.mu.RLock()
	q := s.quotas.m[ws]
	s.quotas.mu.RUnlock()
	if q != nil {
		q.mu.Lock()
		rev := q.rev
		q.mu.Unlock()
		if s.cache.check(ws).lastRev() == rev {
			return q, nil
		}
	}
	start := time.Now()
	var p planRow
	var rev int64
	err := p.scan(s.db.QueryRowContext(ctx, `SELECT `+planCols+`, revision FROM workspaces WHERE id = $1`, ws), &rev)
	if err != nil {
		return nil, s.storeErr("read plan", err)
	}
	s.cache.check(ws).record(revRead{rev: rev, start: start})
	s.quotas.mu.Lock()
	if q = s.quotas.m[ws]; q == nil {
		q = &quota{}
		s.quotas.m[ws] = q
	}
	s.quotas.mu.Unlock()
	q.mu.Lock()
	q.rev, q.plan, q.limit, q.ps, q.pe = rev, p.plan, p.limits().RequestsPerMonth, p.periodStart, p.periodEnd
	q.exhausted = time.Time{} // the limit may have changed: ask again
	if q.period.Key != "" {
		if np := periodAt(s.now(), q.ps, q.pe); np.Key != q.period.Key {
			q.period, q.left = np, 0 // a new Stripe period (or none any more)
		}
	}
	if p.notified != "" {
		q.notified = p.notified
	}
	q.mu.Unlock()
	return q, nil
}

// roll moves q to the period containing now, forward only (a request
// whose clock reading is a little older than another's counts in the
// newer period). q.mu held.
func (q *quota) roll(now time.Time) {
	if q.period.Key != "" && now.Before(q.period.End) {
		return
	}
	if p := periodAt(now, q.ps, q.pe); p.Key != q.period.Key {
		q.period, q.left, q.exhausted = p, 0, time.Time{}
	}
}

// AdmitRequest is the hosted proxy's request limit (see the top of this
// file): nil when route's workspace may forward one more request in the
// period; a *agentkeys.UsageLimitError (USAGE_LIMIT_REACHED, its
// RetryAfter the time to the period's end) otherwise. Unlimited workspaces
// cost a map lookup.
func (s *Store) AdmitRequest(ctx context.Context, r *agentkeys.Route) error {
	if r == nil || r.WorkspaceID == "" {
		return nil
	}
	q, err := s.quotaOf(ctx, r.WorkspaceID)
	if err != nil {
		return err
	}
	now := s.now()
	for {
		q.mu.Lock()
		if q.limit == 0 {
			q.mu.Unlock()
			return nil
		}
		q.roll(now)
		if q.left > 0 {
			q.left--
			q.mu.Unlock()
			return nil
		}
		ev := LimitReachedEvent{WorkspaceID: r.WorkspaceID, Plan: q.plan, Limit: q.limit, Period: q.period}
		if !q.exhausted.IsZero() && now.Sub(q.exhausted) < exhaustedRetry && now.After(q.exhausted) {
			q.mu.Unlock()
			return agentkeys.NewUsageLimitError(ev.Plan, ev.Limit, now, ev.Period.End)
		}
		q.mu.Unlock()
		got, err := s.takeLease(ctx, q, ev)
		if err != nil {
			return err
		}
		if !got {
			s.limitReached(ctx, q, ev)
			return agentkeys.NewUsageLimitError(ev.Plan, ev.Limit, now, ev.Period.End)
		}
	}
}

// takeLease adds a lease to q for ev's period, one taker at a time; false
// when the period's limit is used up.
func (s *Store) takeLease(ctx context.Context, q *quota, ev LimitReachedEvent) (bool, error) {
	q.lease.Lock()
	defer q.lease.Unlock()
	q.mu.Lock()
	if q.period.Key != ev.Period.Key || q.left > 0 {
		q.mu.Unlock()
		return true, nil // another taker was quicker, or the period moved: look again
	}
	q.mu.Unlock()
	var grant int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// The upsert locks the counter's row (PostgreSQL; SQLite's
		// transaction holds the write lock) until the commit.
		var admitted int64
		err := tx.QueryRowContext(ctx, `INSERT INTO usage (workspace_id, month, requests, admitted) VALUES ($1, $2, 0, 0)
			ON CONFLICT (workspace_id, month) DO UPDATE SET admitted = usage.admitted RETURNING admitted`,
			ev.WorkspaceID, ev.Period.Key).Scan(&admitted)
		if err != nil {
			return err
		}
		left := ev.Limit - admitted
		if left <= 0 {
			return nil
		}
		grant = min(margin(ev.Limit), max(1, left/16), left)
		_, err = tx.ExecContext(ctx, `UPDATE usage SET admitted = admitted + $1 WHERE workspace_id = $2 AND month = $3`,
			grant, ev.WorkspaceID, ev.Period.Key)
		return err
	})
	if err != nil {
		return false, s.storeErr("request limit", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.period.Key != ev.Period.Key {
		return true, nil
	}
	if grant == 0 {
		q.exhausted = s.now()
		return false, nil
	}
	q.left += grant
	q.exhausted = time.Time{}
	return true, nil
}

// returnLeases gives the unused leases of the current periods back (Close).
func (s *Store) returnLeases() {
	s.quotas.mu.RLock()
	defer s.quotas.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ws, q := range s.quotas.m {
		q.mu.Lock()
		left, key := q.left, q.period.Key
		q.left = 0
		q.mu.Unlock()
		if left > 0 {
			if _, err := s.db.ExecContext(ctx, `UPDATE usage SET admitted = admitted - $1 WHERE workspace_id = $2 AND month = $3 AND admitted >= $1`,
				left, ws, key); err != nil {
				s.log.Warn("request limit: an unused lease was not given back", "workspace", ws, "requests", left)
			}
		}
	}
}

// limitReached raises usage.limit_reached for ev's period unless this
// process or another replica did already (limit_notified in the database).
func (s *Store) limitReached(ctx context.Context, q *quota, ev LimitReachedEvent) {
	q.mu.Lock()
	done := q.notified == ev.Period.Key
	q.notified = ev.Period.Key
	q.mu.Unlock()
	if done {
		return
	}
	ctx = context.WithoutCancel(ctx)
	// The webhook event first: RaiseUsageLimitReached writes it to the
	// outbox once per period whichever replica calls, so a crash before the
	// mark below cannot lose it.
	if _, err := s.RaiseUsageLimitReached(ctx, ev.WorkspaceID, ev.Period.Key, map[string]any{"plan": ev.Plan, "limit": ev.Limit}); err != nil {
		s.log.WarnContext(ctx, "usage limit reached, but raising its webhook event failed", "workspace", ev.WorkspaceID, "error", agentkeys.ErrorMessage(err))
	}
	res, err := s.db.ExecContext(ctx, `UPDATE workspaces SET limit_notified = $1 WHERE id = $2 AND limit_notified <> $1`, ev.Period.Key, ev.WorkspaceID)
	if err != nil {
		s.log.WarnContext(ctx, "usage limit reached, but recording it failed", "workspace", ev.WorkspaceID, "error", agentkeys.ErrorMessage(s.storeErr("limit", err)))
		return
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return
	}
	s.log.InfoContext(ctx, "usage limit reached", "workspace", ev.WorkspaceID, "plan", ev.Plan, "limit", ev.Limit, "period", ev.Period.Key)
	if s.reached != nil {
		s.reached(ctx, ev)
	}
}
