package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// baseURLGet sends GET base+/to/<host><path> with the token in header.
func baseURLGet(t *testing.T, base, host, path, header, value string) *answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/to/"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestHostedProxy_BaseURL: `agentkeys serve` answers base-URL mode
// (/to/<host>/<path>, the pxr_ token in the client's key slot) with the
// hosted proxy's rules: the token is stripped and the key injected, a
// workspace key is not a proxy token, and loopback targets stay refused at
// connect time unless allowed.
func TestHostedProxy_BaseURL(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	up := newUpstream(t)
	_, key := s.signup("Acme")
	c := s.createCredential(key, "OpenAI", "sk-hosted-secret", up.host())
	g := s.assign(key, s.createAgent(key, "bot").ID, c.ID)

	a := baseURLGet(t, s.url, up.host(), "/v1/models", "X-Api-Key", g.ProxyToken)
	a.want(t, 200, "")
	if string(a.body) != "upstream ok" || a.header.Get(agentkeys.HeaderRequestID) == "" {
		t.Fatalf("answer %s %v", a.body, a.header)
	}
	if got := up.received(); len(got) != 1 || got[0] != "Bearer sk-hosted-secret" {
		t.Fatalf("upstream Authorization = %q", got)
	}
	baseURLGet(t, s.url, up.host(), "/v1/models", "Authorization", "Bearer "+key).want(t, 401, agentkeys.EUNAUTHORIZED)
	baseURLGet(t, s.url, "evil.example", "/v1/models", "Authorization", "Bearer "+g.ProxyToken).want(t, 403, agentkeys.EDESTINATION)
	if n := len(up.received()); n != 1 {
		t.Fatalf("upstream received %d requests, want 1", n)
	}

	strict := newTestServer(t, serverOpts{})
	_, key2 := strict.signup("Beta")
	c2 := strict.createCredential(key2, "OpenAI", "sk-hosted-secret", up.host())
	g2 := strict.assign(key2, strict.createAgent(key2, "bot").ID, c2.ID)
	baseURLGet(t, strict.url, up.host(), "/v1/models", "Authorization", "Bearer "+g2.ProxyToken).want(t, 403, agentkeys.EDESTINATION)
}

// TestAssign_ExpiresAt: the REST assign request takes expiresAt, the
// answer carries it, a past time is refused (and nothing assigned), and the
// hosted proxy refuses the token once it has expired.
func TestAssign_ExpiresAt(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	up := newUpstream(t)
	_, key := s.signup("Acme")
	c := s.createCredential(key, "OpenAI", "sk-hosted-secret", up.host())
	ag := s.createAgent(key, "bot")
	path := "/api/v1/agents/" + ag.ID + "/credentials"

	s.do("POST", path, key, map[string]any{"credentialId": c.ID, "expiresAt": time.Now().Add(-time.Minute)}).want(t, 400, agentkeys.EINVALID)
	s.do("POST", path, key, map[string]any{"credentialId": c.ID, "expiresAt": "tomorrow"}).want(t, 400, agentkeys.EINVALID)
	var got agentkeys.Agent
	s.do("GET", "/api/v1/agents/"+ag.ID, key, nil).decode(t, &got)
	if len(got.Credentials) != 0 {
		t.Fatalf("a refused assignment was stored: %+v", got.Credentials)
	}

	until := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond)
	a := s.do("POST", path, key, map[string]any{"credentialId": c.ID, "expiresAt": until})
	a.want(t, 201, "")
	if !strings.Contains(string(a.body), `"expiresAt":"`+until.Format(time.RFC3339Nano)+`"`) {
		t.Fatalf("answer = %s, want expiresAt %s", a.body, until.Format(time.RFC3339Nano))
	}
	var g agentkeys.Grant
	a.decode(t, &g)
	proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/before").want(t, 200, "")
	time.Sleep(time.Until(until) + 20*time.Millisecond)
	proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/after").want(t, 401, agentkeys.EUNAUTHORIZED)
	baseURLGet(t, s.url, up.host(), "/after", "Authorization", "Bearer "+g.ProxyToken).want(t, 401, agentkeys.EUNAUTHORIZED)
	if n := len(up.received()); n != 1 {
		t.Fatalf("upstream received %d requests, want 1", n)
	}
	// Without expiresAt the grant has none.
	a = s.do("POST", path, key, map[string]any{"credentialId": c.ID})
	a.want(t, 201, "")
	if strings.Contains(string(a.body), "expiresAt") {
		t.Fatalf("answer = %s", a.body)
	}
}
