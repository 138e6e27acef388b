package server

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// Default limits of the public routes that check a password or create an
// account, per client address and per email (kept in the database, so all
// replicas share them).
var (
	DefaultSignupPerIP    = store.Rate{Every: 30e9, Burst: 20} // 20 at once, then 2 a minute
	DefaultSignupPerEmail = store.Rate{Every: 600e9, Burst: 5} // 5 at once, then 6 an hour
	DefaultLoginPerIP     = store.Rate{Every: 3e9, Burst: 30}  // 30 at once, then 20 a minute
	DefaultLoginPerEmail  = store.Rate{Every: 60e9, Burst: 10} // 10 at once, then one a minute
)

// throttle takes one event of what for the client's address and for email
// (when given). Returns ERATELIMIT, with Retry-After set, when either is
// over its limit.
func (s *Server) throttle(w http.ResponseWriter, r *http.Request, what string, perIP, perEmail store.Rate, email string) error {
	keys := []struct {
		key  string
		rate store.Rate
	}{{what + ":ip:" + clientIP(r, s.cfg.BehindProxy), perIP}}
	if email != "" {
		if e, err := store.NormalizeEmail(email); err == nil {
			keys = append(keys, struct {
				key  string
				rate store.Rate
			}{what + ":email:" + e, perEmail})
		}
	}
	for _, k := range keys {
		wait, err := s.store.Allow(r.Context(), k.key, k.rate)
		if err != nil {
			return err
		}
		if wait > 0 {
			secs := int(wait.Seconds()) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			return agentkeys.Errorf(agentkeys.ERATELIMIT, "too many attempts: try again in %d seconds", secs)
		}
	}
	return nil
}

// clientIP is the address the request came from (the first
// X-Forwarded-For hop when the server is behind a trusted proxy).
func clientIP(r *http.Request, behindProxy bool) string {
	if behindProxy {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			first, _, _ := strings.Cut(f, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hashing takes one of the few slots for password hashing (argon2id costs
// 19 MiB and tens of milliseconds each), or answers 429 at once when all
// are taken. Call release when done.
func (s *Server) hashing(w http.ResponseWriter) (release func(), err error) {
	select {
	case s.signups <- struct{}{}:
		return func() { <-s.signups }, nil
	default:
		w.Header().Set("Retry-After", "1")
		return nil, agentkeys.Errorf(agentkeys.ERATELIMIT, "too many password checks at once: try again in a second")
	}
}
