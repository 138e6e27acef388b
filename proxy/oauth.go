package proxy

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/agentkeys/agentkeys"
)

// OAuth refresh in the proxy. Before an OAUTH credential is injected, its
// access token is refreshed when it expires within a minute, or when the
// upstream answered 401 to it last time. The backend does the refresh
// (agentkeys.TokenRefresher: one refresh across processes and replicas);
// here concurrent requests on one credential share one call to it.

// refreshMargin is how long before its expiry an access token is refreshed.
const refreshMargin = time.Minute

type oauthState struct {
	group singleflight.Group
	mu    sync.Mutex
	// rejected holds, per credential id, the SHA-256 of the access token
	// the upstream last answered 401 to.
	rejected map[string][sha256.Size]byte
}

// freshSecret returns s, or a refreshed secret when s is an OAUTH access
// token that is about to expire or was refused, and notes on x the token
// injected (for noteUpstreamStatus). Errors are the backend's: ECREDENTIAL
// (reconnect), EUPSTREAM (token endpoint unreachable), ….
func (h *Handler) freshSecret(ctx context.Context, x *exchange, route *agentkeys.Route, s *agentkeys.Secret) (*agentkeys.Secret, error) {
	if route.Credential.Type != agentkeys.OAuth || s.RefreshToken == "" {
		return s, nil
	}
	rf, ok := h.backend.(agentkeys.TokenRefresher)
	if !ok {
		return s, nil
	}
	id := route.Credential.ID
	expiring := !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(h.now().Add(refreshMargin))
	if expiring || h.oauth.wasRejected(id, s.Value) {
		v, err, _ := h.oauth.group.Do(id, func() (any, error) {
			// The refresh outlives one caller's cancellation: others wait on it.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			return rf.RefreshSecret(ctx, route, s)
		})
		if err != nil {
			return nil, err
		}
		h.oauth.forget(id)
		s = v.(*agentkeys.Secret)
	}
	sum := sha256.Sum256([]byte(s.Value))
	x.oauthSum = &sum
	return s, nil
}

// noteUpstreamStatus remembers a 401 to an injected OAuth access token, so
// the next request refreshes it first.
func (x *exchange) noteUpstreamStatus(status int) {
	if status != http.StatusUnauthorized || x.oauthSum == nil {
		return
	}
	o := &x.h.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rejected == nil {
		o.rejected = map[string][sha256.Size]byte{}
	}
	o.rejected[x.route.Credential.ID] = *x.oauthSum
}

func (o *oauthState) wasRejected(id, token string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	sum, ok := o.rejected[id]
	return ok && sum == sha256.Sum256([]byte(token))
}

func (o *oauthState) forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.rejected, id)
}
