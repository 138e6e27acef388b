package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Refusals of requests that carry no valid token are sampled, not each
// written: any local process (or a web page making simple GETs to
// `agentkeys up`) could otherwise grow the audit log without limit. The
// first such refusal of each kind (error code) in each minute gets its full
// audit row; the others of that minute are counted, and the count is logged
// when the minute is over. Every request that presented a valid token keeps
// its own row, refused or not.
type refusalSampler struct {
	log *slog.Logger
	mu  sync.Mutex
	// minute is the window being counted (Unix minutes); counts holds, per
	// error code, the refusals seen in it.
	minute int64
	counts map[string]int
	timer  *time.Timer
}

// keep reports whether a refusal with code at time t gets an audit row.
func (s *refusalSampler) keep(code string, t time.Time) bool {
	m := t.Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	if m != s.minute || s.counts == nil {
		s.report()
		s.minute, s.counts = m, map[string]int{}
		// Report this window when it ends, even if no refusal follows.
		wait := time.Until(time.Unix((m+1)*60, 0)) + time.Second
		s.timer = time.AfterFunc(max(wait, time.Second), s.flush)
	}
	s.counts[code]++
	return s.counts[code] == 1
}

// flush reports the current window if it is over.
func (s *refusalSampler) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Unix()/60 > s.minute {
		s.report()
		s.counts = nil
	}
}

// report logs the refusals of the window that were counted, not written.
// The caller holds mu.
func (s *refusalSampler) report() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	for code, n := range s.counts {
		if n > 1 {
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "proxy: requests without a valid token refused; the first of the minute is in the audit log, the others only counted",
				slog.Time("minute", time.Unix(s.minute*60, 0).UTC()), slog.String("code", code), slog.Int("refused", n), slog.Int("not_audited", n-1))
		}
	}
}
