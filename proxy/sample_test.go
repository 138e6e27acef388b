package proxy_test

import (
	"net/http"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestProxy_UnauthenticatedRefusalsSampled: requests without a valid token
// (none, malformed, unknown, revoked, a wrong workspace key) get one audit
// row per kind per minute, not one each, and the rest are counted; every
// request with a valid token keeps its own row, refused or forwarded.
func TestProxy_UnauthenticatedRefusalsSampled(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	c := b.addCredential(t, "Main", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "sk_sample"})
	tok := b.assign(c, "a")
	revoked := b.assign(c, "b")
	b.revoke(revoked)
	p := newTestProxy(t, b, proxy.Config{})
	bad := []call{
		{Target: up.URL},
		{Auth: "Basic abc", Target: up.URL},
		{Token: "pxr_nope", Target: up.URL},
		{Token: agentkeys.NewProxyToken(), Target: up.URL},
		{Token: revoked, Target: up.URL},
		{Token: agentkeys.NewWorkspaceKey(), Target: up.URL, Header: http.Header{agentkeys.HeaderCredentialName: {"Main"}}},
	}
	for i := 0; i < 50; i++ {
		wantProxyError(t, p.do(t, bad[i%len(bad)]), http.StatusUnauthorized, agentkeys.EUNAUTHORIZED)
	}
	rows := b.auditRows()
	if len(rows) > 2 { // one per minute; two if the test crossed a minute boundary
		t.Fatalf("%d audit rows for 50 unauthenticated requests, want one per minute", len(rows))
	}
	// With a valid token, every request has its row: forwarded or refused.
	for i := 0; i < 10; i++ {
		readAll(t, p.do(t, call{Token: tok, Target: up.URL}))
		wantProxyError(t, p.do(t, call{Token: tok, Target: "https://elsewhere.example.com/"}), http.StatusForbidden, agentkeys.EDESTINATION)
	}
	if got := len(b.auditRows()) - len(rows); got != 20 {
		t.Fatalf("%d rows for 20 requests with a valid token", got)
	}
}
