package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
)

// The monthly request limit, enforced by the hosted proxy without a
// database read per request. Each process keeps, per workspace in use, the
// limit (reloaded when the workspace's revision changes: SetPlan bumps
// it), the period's usage as the database last told it (the importer
// updates it from the counter it writes, the poller from the database every
// usageRefresh for what other replicas counted) and the requests it
// admitted whose audit rows are not imported yet (by request id). A request
// is refused once usage + not-yet-imported reaches the limit.
//
// In the last margin(limit) requests of the period admissions take a slower
// path: this process's journal is imported and the database's count read
// before each one (serialised per workspace), so one process alone never
// goes over the limit. Across replicas a burst can overshoot by what the
// other replicas admitted and had not imported yet: requests admitted in
// the fast path during the last importInterval + usageRefresh (≈ 300 ms)
// beyond margin(limit), plus, per other replica, the requests between their
// admission and their journal line (microseconds). While the other
// replicas together send fewer than margin(limit) requests in 300 ms (33
// requests a second on Free), the overshoot stays under margin(limit) =
// max(1% of the limit, 10).

// usageRefresh is how often the poller re-reads the usage of the
// workspaces with a request limit that are in use.
const usageRefresh = 100 * time.Millisecond

// margin is how close to the limit admissions take the slow path.
func margin(limit int64) int64 { return max(limit/100, 10) }

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
	near sync.Mutex // serialises slow-path admissions

	mu       sync.Mutex
	rev      int64
	plan     string
	limit    int64 // 0: unlimited
	ps, pe   sql.NullInt64
	period   Period
	db       int64                // the period's usage in the database
	own      map[string]time.Time // request ids admitted here, not imported yet
	notified string               // period key whose event is raised
}

type quotaTable struct {
	mu sync.RWMutex
	m  map[string]*quota
}

func (t *quotaTable) get(ws string) *quota {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[ws]
}

// quotaOf returns ws's quota, loading it when missing or when the
// workspace's revision moved since it was loaded.
func (s *Store) quotaOf(ctx context.Context, ws string) (*quota, error) {
	q := s.quotas.get(ws)
	if q != nil {
		q.mu.Lock()
		rev := q.rev
		q.mu.Unlock()
		if s.cache.check(ws).lastRev() == rev {
			return q, nil
		}
	}
	return s.loadQuota(ctx, ws)
}

func (s *Store) loadQuota(ctx context.Context, ws string) (*quota, error) {
	start := time.Now()
	var p planRow
	var rev int64
	err := p.scan(s.db.QueryRowContext(ctx, `SELECT `+planCols+`, revision FROM workspaces WHERE id = $1`, ws), &rev)
	if err != nil {
		return nil, s.storeErr("read plan", err)
	}
	period := periodAt(s.now(), p.periodStart, p.periodEnd)
	var used int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(requests), 0) FROM usage WHERE workspace_id = $1 AND month = $2`,
		ws, period.Key).Scan(&used); err != nil {
		return nil, s.storeErr("read usage", err)
	}
	s.cache.check(ws).record(revRead{rev: rev, start: start})
	s.quotas.mu.Lock()
	defer s.quotas.mu.Unlock()
	q := s.quotas.m[ws]
	if q == nil {
		q = &quota{own: map[string]time.Time{}}
		s.quotas.m[ws] = q
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rev, q.plan, q.limit, q.ps, q.pe = rev, p.plan, p.limits().RequestsPerMonth, p.periodStart, p.periodEnd
	if q.period.Key != period.Key {
		q.period, q.db = period, used
		clear(q.own)
	} else {
		q.db = max(q.db, used)
	}
	if p.notified != "" {
		q.notified = p.notified
	}
	return q, nil
}

// roll moves q to the period containing now (usage 0 until read). q.mu held.
func (q *quota) roll(now time.Time) {
	if now.Before(q.period.End) {
		return
	}
	q.period = periodAt(now, q.ps, q.pe)
	q.db = 0
	clear(q.own)
}

// AdmitRequest is the hosted proxy's request limit (see the top of this
// file): nil when route's workspace may forward one more request in the
// period, counting it (by the request id in ctx) until its audit row is
// imported; a *agentkeys.UsageLimitError (USAGE_LIMIT_REACHED, Retry-After:
// the period's end) otherwise. Unlimited workspaces cost a map lookup.
func (s *Store) AdmitRequest(ctx context.Context, r *agentkeys.Route) error {
	if r == nil || r.WorkspaceID == "" {
		return nil
	}
	q, err := s.quotaOf(ctx, r.WorkspaceID)
	if err != nil {
		return err
	}
	id := agentkeys.RequestID(ctx)
	now := s.now()
	q.mu.Lock()
	if q.limit == 0 {
		q.mu.Unlock()
		return nil
	}
	q.roll(now)
	used := q.db + int64(len(q.own))
	if used < q.limit-margin(q.limit) {
		q.own[id] = now
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()

	// The slow path, near the limit: import this process's journal, read
	// the database's count, decide, one admission at a time.
	q.near.Lock()
	defer q.near.Unlock()
	s.flushAudit(ctx)
	q.mu.Lock()
	key := q.period.Key
	q.mu.Unlock()
	var db int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(requests), 0) FROM usage WHERE workspace_id = $1 AND month = $2`,
		r.WorkspaceID, key).Scan(&db); err != nil {
		return s.storeErr("read usage", err)
	}
	q.mu.Lock()
	if q.period.Key == key {
		q.db = max(q.db, db)
	}
	used = q.db + int64(len(q.own))
	ev := LimitReachedEvent{WorkspaceID: r.WorkspaceID, Plan: q.plan, Limit: q.limit, Period: q.period}
	if used >= q.limit {
		q.mu.Unlock()
		s.limitReached(ctx, q, ev)
		return agentkeys.NewUsageLimitError(ev.Plan, ev.Limit, now, ev.Period.End)
	}
	q.own[id] = now
	q.mu.Unlock()
	if used+1 >= ev.Limit {
		s.limitReached(ctx, q, ev)
	}
	return nil
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

// imported tells ws's quota that the importer counted n requests of the
// period keyed key, leaving total in the database, among them those of
// the request ids given.
func (s *Store) imported(ws, key string, total int64, ids []string) {
	q := s.quotas.get(ws)
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.period.Key != key {
		return
	}
	q.db = max(q.db, total)
	for _, id := range ids {
		delete(q.own, id)
	}
}

// refreshUsage re-reads the usage of the workspaces with a request limit
// (the poller's, every usageRefresh), and forgets admitted requests whose
// rows never came (refused after admission).
func (s *Store) refreshUsage() {
	s.quotas.mu.RLock()
	var ids []string
	var qs []*quota
	for id, q := range s.quotas.m {
		ids, qs = append(ids, id), append(qs, q)
	}
	s.quotas.mu.RUnlock()
	for i, q := range qs {
		q.mu.Lock()
		limit, key := q.limit, q.period.Key
		stale := s.now().Add(-time.Minute)
		for id, t := range q.own {
			if t.Before(stale) {
				delete(q.own, id)
			}
		}
		q.mu.Unlock()
		if limit == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		var db int64
		err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(requests), 0) FROM usage WHERE workspace_id = $1 AND month = $2`, ids[i], key).Scan(&db)
		cancel()
		if err != nil {
			continue
		}
		q.mu.Lock()
		if q.period.Key == key {
			q.db = max(q.db, db)
		}
		q.mu.Unlock()
	}
}
