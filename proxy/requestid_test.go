package proxy_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// ctxBackend records the request id each backend call's context carries.
type ctxBackend struct {
	*memBackend
	mu  sync.Mutex
	ids map[string][]string // method -> ids seen
}

func (b *ctxBackend) seen(method string, ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ids[method] = append(b.ids[method], agentkeys.RequestID(ctx))
}

func (b *ctxBackend) Authorize(ctx context.Context, token, name string) (*agentkeys.Route, error) {
	b.seen("Authorize", ctx)
	return b.memBackend.Authorize(ctx, token, name)
}

func (b *ctxBackend) OpenSecret(ctx context.Context, r *agentkeys.Route) (*agentkeys.Secret, error) {
	b.seen("OpenSecret", ctx)
	return b.memBackend.OpenSecret(ctx, r)
}

func (b *ctxBackend) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	b.seen("BeginAudit", ctx)
	return b.memBackend.BeginAudit(ctx, e)
}

// TestProxy_RequestIDInContext: the backend's calls see the request's id
// through their context (agentkeys.RequestID), the same id as the answer's
// X-Agentkeys-Request-Id, so a store's log lines can name the request.
func TestProxy_RequestIDInContext(t *testing.T) {
	b := &ctxBackend{memBackend: newMemBackend(), ids: map[string][]string{}}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: "http://" + up.hostPort() + "/x"})
	readAll(t, resp)
	id := resp.Header.Get(agentkeys.HeaderRequestID)
	if resp.StatusCode != http.StatusNoContent || id == "" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, id)
	}
	for _, m := range []string{"Authorize", "OpenSecret", "BeginAudit"} {
		if got := b.ids[m]; len(got) != 1 || got[0] != id {
			t.Errorf("%s saw request ids %v, want [%s]", m, got, id)
		}
	}
}
