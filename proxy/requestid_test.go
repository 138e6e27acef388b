package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// TestGuardHost_Audited: a request the Host guard refuses in front of the
// proxy handler is answered like every refusal and has its audit row
// (decision denied, code FORBIDDEN, the answer's request id); nothing is
// authorised or decrypted for it.
func TestGuardHost_Audited(t *testing.T) {
	b := &ctxBackend{memBackend: newMemBackend(), ids: map[string][]string{}}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.LoopbackOnly(proxy.New(b, proxy.Config{}))

	req := httptest.NewRequest(http.MethodPost, "/v1/proxy", nil)
	req.Host = "rebind.evil.example:8787"
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, "http://"+up.hostPort()+"/x?q=1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusForbidden || rec.Header().Get(agentkeys.HeaderError) != agentkeys.EFORBIDDEN {
		t.Fatalf("status %d, code %q", rec.Code, rec.Header().Get(agentkeys.HeaderError))
	}
	row := b.rowByRequestID(t, rec.Header().Get(agentkeys.HeaderRequestID))
	if row.Decision != agentkeys.DecisionDenied || row.Code != agentkeys.EFORBIDDEN || row.Status != http.StatusForbidden ||
		row.Method != http.MethodPost || row.Host != up.hostPort() || row.Path != "/x" || row.AgentID != "" {
		t.Errorf("audit row: %+v", row)
	}
	if len(b.ids["Authorize"]) != 0 || b.secretsOpened() != 0 || len(up.requests()) != 0 {
		t.Errorf("a refused request was authorised (%d), decrypted (%d) or forwarded (%d)", len(b.ids["Authorize"]), b.secretsOpened(), len(up.requests()))
	}
}
