package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Rate is a limit: Burst events at once, then one per Every.
type Rate struct {
	Every time.Duration
	Burst int
}

// Allow takes one event of key under rate r, shared by every replica on the
// database (GCRA: one theoretical arrival time per key, updated by one
// upsert that refuses when the key is over its burst). It returns 0 when
// the event is allowed, else how long until one would be.
func (s *Store) Allow(ctx context.Context, key string, r Rate) (time.Duration, error) {
	if r.Every <= 0 || r.Burst <= 0 {
		return 0, nil
	}
	now := s.now().UnixMicro()
	every := r.Every.Microseconds()
	tau := every * int64(r.Burst-1) // how far ahead of now the arrival time may run
	var tat int64
	// The parameters are cast so PostgreSQL knows their type where they are
	// only compared or added.
	err := s.db.QueryRowContext(ctx, `INSERT INTO rate_limits (key, tat) VALUES ($1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT))
		ON CONFLICT (key) DO UPDATE SET tat = (CASE WHEN rate_limits.tat > CAST($2 AS BIGINT) THEN rate_limits.tat ELSE CAST($2 AS BIGINT) END) + CAST($3 AS BIGINT)
		WHERE (CASE WHEN rate_limits.tat > CAST($2 AS BIGINT) THEN rate_limits.tat ELSE CAST($2 AS BIGINT) END) - CAST($2 AS BIGINT) <= CAST($4 AS BIGINT)
		RETURNING tat`, key, now, every, tau).Scan(&tat)
	if errors.Is(err, sql.ErrNoRows) {
		var cur int64
		if err := s.db.QueryRowContext(ctx, `SELECT tat FROM rate_limits WHERE key = $1`, key).Scan(&cur); err != nil {
			return r.Every, s.storeErr("rate limit", err)
		}
		return time.Duration(max(cur-now-tau, 1)) * time.Microsecond, nil
	}
	if err != nil {
		return 0, s.storeErr("rate limit", err)
	}
	return 0, nil
}
