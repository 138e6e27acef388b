package vaulttest

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// upstream is an API on 127.0.0.1 that records what it received and counts
// the connections made to it.
type upstream struct {
	srv   *httptest.Server
	host  string // 127.0.0.1:PORT, as the allowlist names it
	conns atomic.Int64

	mu   sync.Mutex
	reqs []*seenRequest
}

type seenRequest struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, &seenRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, "hello from upstream")
	}))
	u.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	u.host = u.srv.Listener.Addr().String()
	if !strings.HasPrefix(u.host, "127.0.0.1:") {
		t.Fatalf("upstream listens on %s, want 127.0.0.1", u.host)
	}
	return u
}

func (u *upstream) url(pathAndQuery string) string { return "http://" + u.host + pathAndQuery }

func (u *upstream) requests() []*seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*seenRequest(nil), u.reqs...)
}

func (u *upstream) last(t *testing.T) *seenRequest {
	t.Helper()
	r := u.requests()
	if len(r) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r[len(r)-1]
}

// wantUntouched fails unless the upstream saw no connection at all.
func (u *upstream) wantUntouched(t *testing.T) {
	t.Helper()
	if n := u.conns.Load(); n != 0 {
		t.Fatalf("upstream got %d connections, want 0", n)
	}
	if n := len(u.requests()); n != 0 {
		t.Fatalf("upstream got %d requests, want 0", n)
	}
}

// proxyVault returns a fresh vault, skipping the test when the
// implementation's Proxy is not wired (returns EUNAVAILABLE).
func (s *suite) proxyVault(t *testing.T) agentkeys.Vault {
	t.Helper()
	return s.vault(t)
}

// send makes one proxied request and reads the whole answer.
func send(t *testing.T, v agentkeys.Vault, req *agentkeys.ProxyRequest) (*http.Response, string, error) {
	t.Helper()
	resp, err := v.Proxy(t.Context(), req)
	if err != nil {
		if resp != nil {
			t.Fatalf("Proxy returned both a response and an error: %v", err)
		}
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustNoErr(t, err, "read proxied body")
	return resp, string(b), nil
}

// mustSend sends a request that must reach the upstream and get its 200.
func mustSend(t *testing.T, v agentkeys.Vault, req *agentkeys.ProxyRequest) {
	t.Helper()
	resp, body, err := send(t, v, req)
	mustNoErr(t, err, "Proxy")
	if resp.StatusCode != http.StatusOK || body != "hello from upstream" || resp.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("proxied answer = %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// proxyFixture is a vault with one credential on the upstream assigned to one agent.
type proxyFixture struct {
	v     agentkeys.Vault
	up    *upstream
	cred  *agentkeys.Credential
	agent *agentkeys.Agent
	token string
}

func (s *suite) fixture(t *testing.T, value string) *proxyFixture {
	t.Helper()
	f := &proxyFixture{v: s.proxyVault(t), up: newUpstream(t)}
	f.cred = mustCreateCredential(t, f.v, apiKey("Upstream Key", value, f.up.host))
	f.agent = mustCreateAgent(t, f.v, "bot")
	f.token = mustAssign(t, f.v, f.agent.ID, f.cred.ID).ProxyToken
	return f
}

func (f *proxyFixture) get(path string) *agentkeys.ProxyRequest {
	return &agentkeys.ProxyRequest{Token: f.token, URL: f.up.url(path)}
}

func (s *suite) testProxy(t *testing.T) {
	t.Run("Types", s.testProxyTypes)
	t.Run("PassesRequestThrough", func(t *testing.T) {
		f := s.fixture(t, "k-pass")
		resp, body, err := send(t, f.v, &agentkeys.ProxyRequest{
			Token: f.token, Method: http.MethodPost, URL: f.up.url("/v1/emails?keep=1&b=2"),
			Header: http.Header{"Content-Type": {"application/json"}, "X-Agent-Header": {"kept"}},
			Body:   strings.NewReader(`{"to":"a@example.com"}`),
		})
		mustNoErr(t, err, "Proxy")
		if resp.StatusCode != 200 || body != "hello from upstream" {
			t.Fatalf("answer %d %q", resp.StatusCode, body)
		}
		got := f.up.last(t)
		if got.Method != "POST" || got.Path != "/v1/emails" || got.Query.Get("keep") != "1" || got.Query.Get("b") != "2" ||
			got.Header.Get("X-Agent-Header") != "kept" || got.Header.Get("Content-Type") != "application/json" ||
			got.Body != `{"to":"a@example.com"}` || got.Header.Get("Authorization") != "Bearer k-pass" {
			t.Fatalf("upstream received %+v", got)
		}
	})
	t.Run("ReplacesAgentHeader", func(t *testing.T) {
		f := s.fixture(t, "k-real")
		mustSend(t, f.v, &agentkeys.ProxyRequest{Token: f.token, URL: f.up.url("/"), Header: http.Header{"Authorization": {"Bearer fake"}}})
		if got := f.up.last(t).Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer k-real" {
			t.Fatalf("upstream Authorization = %q, want exactly the injected one", got)
		}
	})
	t.Run("OwnerAuthority", func(t *testing.T) {
		f := s.fixture(t, "k-owner")
		mustSend(t, f.v, &agentkeys.ProxyRequest{CredentialName: "upstream key", URL: f.up.url("/owner")})
		if got := f.up.last(t); got.Header.Get("Authorization") != "Bearer k-owner" || got.Path != "/owner" {
			t.Fatalf("upstream received %+v", got)
		}
	})
	t.Run("TokenIgnoresCredentialName", func(t *testing.T) {
		// A pxr_ token opens its own grant only: naming another credential
		// does not reach it.
		f := s.fixture(t, "k-granted")
		mustCreateCredential(t, f.v, apiKey("Not Granted", "k-other", f.up.host))
		mustSend(t, f.v, &agentkeys.ProxyRequest{Token: f.token, CredentialName: "Not Granted", URL: f.up.url("/")})
		if got := f.up.last(t).Header.Get("Authorization"); got != "Bearer k-granted" {
			t.Fatalf("upstream got %q, want the granted credential", got)
		}
	})
	t.Run("ErrOwnerUnknownName", func(t *testing.T) {
		f := s.fixture(t, "k")
		_, _, err := send(t, f.v, &agentkeys.ProxyRequest{CredentialName: "no such credential", URL: f.up.url("/")})
		wantCode(t, err, agentkeys.ENOTFOUND)
		f.up.wantUntouched(t)
	})
	t.Run("ErrUnknownToken", func(t *testing.T) {
		f := s.fixture(t, "k")
		for _, tok := range []string{agentkeys.NewProxyToken(), f.token + "x", "pxr_short", "garbage", "Bearer " + f.token} {
			_, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: tok, URL: f.up.url("/")})
			wantCode(t, err, agentkeys.EUNAUTHORIZED)
		}
		f.up.wantUntouched(t)
	})
	t.Run("ErrRevokedToken", func(t *testing.T) {
		f := s.fixture(t, "k")
		mustSend(t, f.v, f.get("/before")) // warm any cache
		mustNoErr(t, f.v.RevokeCredential(t.Context(), f.agent.ID, f.cred.ID), "RevokeCredential")
		_, _, err := send(t, f.v, f.get("/after"))
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1 (before the revocation)", n)
		}
	})
	t.Run("ErrExpiredToken", func(t *testing.T) {
		f := s.fixture(t, "k")
		g, err := f.v.AssignCredentialUntil(t.Context(), f.agent.ID, f.cred.ID, time.Now().Add(time.Second))
		mustNoErr(t, err, "AssignCredentialUntil")
		f.token = g.ProxyToken
		mustSend(t, f.v, f.get("/before")) // warm any cache
		time.Sleep(time.Until(*g.ExpiresAt) + 10*time.Millisecond)
		_, _, err = send(t, f.v, f.get("/after"))
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1 (before the expiry)", n)
		}
	})
	t.Run("ErrDeletedCredential", func(t *testing.T) {
		f := s.fixture(t, "k")
		mustSend(t, f.v, f.get("/before"))
		mustNoErr(t, f.v.DeleteCredential(t.Context(), f.cred.ID), "DeleteCredential")
		_, _, err := send(t, f.v, f.get("/after"))
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		_, _, err = send(t, f.v, &agentkeys.ProxyRequest{CredentialName: "Upstream Key", URL: f.up.url("/after")})
		wantCode(t, err, agentkeys.ENOTFOUND)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1", n)
		}
	})
	t.Run("ErrDeletedAgent", func(t *testing.T) {
		f := s.fixture(t, "k")
		mustSend(t, f.v, f.get("/before"))
		mustNoErr(t, f.v.DeleteAgent(t.Context(), f.agent.ID), "DeleteAgent")
		_, _, err := send(t, f.v, f.get("/after"))
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1", n)
		}
	})
	t.Run("ReassignedOldToken", func(t *testing.T) {
		f := s.fixture(t, "k")
		mustSend(t, f.v, f.get("/old"))
		g := mustAssign(t, f.v, f.agent.ID, f.cred.ID)
		_, _, err := send(t, f.v, f.get("/old-again"))
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		mustSend(t, f.v, &agentkeys.ProxyRequest{Token: g.ProxyToken, URL: f.up.url("/new")})
		if got := f.up.last(t); got.Path != "/new" {
			t.Fatalf("last upstream path = %s", got.Path)
		}
	})
	t.Run("UpdatedSecret", func(t *testing.T) {
		f := s.fixture(t, "k-one")
		mustSend(t, f.v, f.get("/"))
		_, err := f.v.UpdateCredential(t.Context(), f.cred.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "k-two"}})
		mustNoErr(t, err, "UpdateCredential")
		mustSend(t, f.v, f.get("/"))
		if got := f.up.last(t).Header.Get("Authorization"); got != "Bearer k-two" {
			t.Fatalf("after update the upstream got %q", got)
		}
	})
	t.Run("ErrDestinationNotAllowed", func(t *testing.T) {
		f := s.fixture(t, "k")
		evil := newUpstream(t)
		port := strings.TrimPrefix(f.up.host, "127.0.0.1:")
		for _, target := range []string{
			evil.url("/steal"),                                 // another port on the same host
			"http://localhost:" + port + "/",                   // same port, a name not on the list
			"http://127.0.0.1." + "evil.example:" + port + "/", // suffix trick
			"http://evil.example/?u=" + f.up.host,
		} {
			_, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: f.token, URL: target})
			wantCode(t, err, agentkeys.EDESTINATION)
		}
		evil.wantUntouched(t)
		f.up.wantUntouched(t)
	})
	t.Run("ErrDestinationAfterHostsChange", func(t *testing.T) {
		f := s.fixture(t, "k")
		mustSend(t, f.v, f.get("/"))
		_, err := f.v.UpdateCredential(t.Context(), f.cred.ID, &agentkeys.CredentialUpdate{AllowedHosts: []string{"api.example.com"}})
		mustNoErr(t, err, "UpdateCredential")
		_, _, err = send(t, f.v, f.get("/"))
		wantCode(t, err, agentkeys.EDESTINATION)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1", n)
		}
	})
	t.Run("ErrBadTarget", func(t *testing.T) {
		f := s.fixture(t, "k")
		for _, target := range []string{"", "ftp://" + f.up.host + "/", "http://user@" + f.up.host + "/", "/relative"} {
			_, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: f.token, URL: target})
			wantCode(t, err, agentkeys.EINVALID)
		}
		f.up.wantUntouched(t)
	})
	t.Run("UpstreamStatusPassedBack", func(t *testing.T) {
		f := s.fixture(t, "k")
		resp, body, err := send(t, f.v, f.get("/missing"))
		mustNoErr(t, err, "Proxy")
		if resp.StatusCode != http.StatusNotFound || body != "hello from upstream" {
			t.Fatalf("answer = %d %q, want the upstream's 404", resp.StatusCode, body)
		}
	})
	t.Run("CountsRequests", func(t *testing.T) {
		f := s.fixture(t, "k")
		for i := 0; i < 3; i++ {
			mustSend(t, f.v, f.get("/"))
		}
		_, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: f.token, URL: "http://evil.example/"})
		wantCode(t, err, agentkeys.EDESTINATION)
		waitFor(t, "requestsThisMonth = 3", func() bool {
			st, err := f.v.Status(t.Context())
			mustNoErr(t, err, "Status")
			return st.Usage.RequestsThisMonth == 3
		})
	})
}

// testProxyTypes sends one request per credential type and asserts what
// the upstream received.
func (s *suite) testProxyTypes(t *testing.T) {
	cases := []struct {
		typ    agentkeys.CredentialType
		secret agentkeys.Secret
		check  func(t *testing.T, r *seenRequest)
	}{
		{agentkeys.APIKey, agentkeys.Secret{Value: "sk-live-1"}, func(t *testing.T, r *seenRequest) {
			wantHeader(t, r, "Authorization", "Bearer sk-live-1")
		}},
		{agentkeys.OAuth, agentkeys.Secret{Value: "oauth-access-1"}, func(t *testing.T, r *seenRequest) {
			wantHeader(t, r, "Authorization", "Bearer oauth-access-1")
		}},
		{agentkeys.BasicAuth, agentkeys.Secret{Username: "jira-user", Password: "p@ss word"}, func(t *testing.T, r *seenRequest) {
			wantHeader(t, r, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("jira-user:p@ss word")))
		}},
		{agentkeys.Cookie, agentkeys.Secret{Value: "auth_token=abc; ct0=def"}, func(t *testing.T, r *seenRequest) {
			wantHeader(t, r, "Cookie", "auth_token=abc; ct0=def")
		}},
		{agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "sk-ant-1"}, {Name: "anthropic-version", Value: "2023-06-01"}}}, func(t *testing.T, r *seenRequest) {
			wantHeader(t, r, "X-Api-Key", "sk-ant-1")
			wantHeader(t, r, "Anthropic-Version", "2023-06-01")
			if r.Header.Get("Authorization") != "" {
				t.Errorf("CUSTOM_HEADER also set Authorization")
			}
		}},
		{agentkeys.QueryParam, agentkeys.Secret{Param: "key", Value: "AIza-1"}, func(t *testing.T, r *seenRequest) {
			if got := r.Query["key"]; len(got) != 1 || got[0] != "AIza-1" {
				t.Errorf("query key = %q, want exactly [AIza-1]", got)
			}
			if r.Query.Get("q") != "x" {
				t.Errorf("query q = %q, want the agent's x kept", r.Query.Get("q"))
			}
			if r.Header.Get("Authorization") != "" {
				t.Errorf("QUERY_PARAM also set Authorization")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) {
			v := s.proxyVault(t)
			up := newUpstream(t)
			c := mustCreateCredential(t, v, &agentkeys.CredentialInput{Name: "cred " + string(tc.typ), Type: tc.typ, AllowedHosts: []string{up.host}, Secret: tc.secret})
			a := mustCreateAgent(t, v, "agent")
			g := mustAssign(t, v, a.ID, c.ID)
			mustSend(t, v, &agentkeys.ProxyRequest{Token: g.ProxyToken, URL: up.url("/v1/things?q=x")})
			r := up.last(t)
			if r.Method != http.MethodGet || r.Path != "/v1/things" {
				t.Fatalf("upstream got %s %s", r.Method, r.Path)
			}
			tc.check(t, r)
		})
	}
}

func wantHeader(t *testing.T, r *seenRequest, name, want string) {
	t.Helper()
	if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("upstream header %s = %q, want exactly [%q]", name, got, want)
	}
}

// waitFor polls cond for a few seconds: audit outcomes may be written
// asynchronously after the response body is closed. It is not a timing
// assertion: it fails only if the state is never reached.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
