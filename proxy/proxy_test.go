package proxy_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

func TestProxy_CredentialTypes(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cr3t-pw"))
	tests := []struct {
		name   string
		typ    agentkeys.CredentialType
		secret agentkeys.Secret
		// agent sends its own value under the injected name; the upstream
		// must see only the injected one.
		agentHeader http.Header
		query       string
		check       func(t *testing.T, got received)
	}{
		{
			name: "API_KEY", typ: agentkeys.APIKey, secret: agentkeys.Secret{Value: "sk_live_123"},
			agentHeader: http.Header{"X-Other": {"kept"}},
			check: func(t *testing.T, got received) {
				wantValues(t, got.Header, "Authorization", "Bearer sk_live_123")
				wantValues(t, got.Header, "X-Other", "kept")
			},
		},
		{
			name: "OAUTH", typ: agentkeys.OAuth, secret: agentkeys.Secret{Value: "ya29.access"},
			check: func(t *testing.T, got received) { wantValues(t, got.Header, "Authorization", "Bearer ya29.access") },
		},
		{
			name: "BASIC_AUTH", typ: agentkeys.BasicAuth, secret: agentkeys.Secret{Username: "alice", Password: "s3cr3t-pw"},
			check: func(t *testing.T, got received) { wantValues(t, got.Header, "Authorization", basic) },
		},
		{
			name: "COOKIE", typ: agentkeys.Cookie, secret: agentkeys.Secret{Value: "session=abc123; csrf=tok"},
			agentHeader: http.Header{"Cookie": {"session=agents-own; theme=dark"}},
			check: func(t *testing.T, got received) {
				wantValues(t, got.Header, "Cookie", "theme=dark; session=abc123; csrf=tok")
			},
		},
		{
			name: "CUSTOM_HEADER", typ: agentkeys.CustomHeader,
			secret:      agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "key-1"}, {Name: "X-Team", Value: "t-9"}}},
			agentHeader: http.Header{"X-Api-Key": {"agents-own"}},
			check: func(t *testing.T, got received) {
				wantValues(t, got.Header, "X-Api-Key", "key-1")
				wantValues(t, got.Header, "X-Team", "t-9")
				if _, ok := got.Header["Authorization"]; ok {
					t.Errorf("Authorization reached the upstream: %q", got.Header["Authorization"])
				}
			},
		},
		{
			name: "QUERY_PARAM", typ: agentkeys.QueryParam, secret: agentkeys.Secret{Param: "key", Value: "AIza secret/+"},
			query: "?q=coffee&key=agents-own&z=1",
			check: func(t *testing.T, got received) {
				if got.URL.RawQuery != "q=coffee&z=1&key=AIza+secret%2F%2B" {
					t.Errorf("upstream query = %q", got.URL.RawQuery)
				}
				if v := got.URL.Query()["key"]; len(v) != 1 || v[0] != "AIza secret/+" {
					t.Errorf("key = %q", v)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Upstream", "yes")
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte("created"))
			})
			b := newMemBackend()
			c := b.addCredential(t, "Test "+tt.name, tt.typ, []string{up.hostPort()}, tt.secret)
			tok := b.assign(c, "bot")
			p := newTestProxy(t, b, proxy.Config{})

			h := http.Header{"Content-Type": {"application/json"}}
			for k, v := range tt.agentHeader {
				h[k] = v
			}
			resp := p.do(t, call{Method: http.MethodPost, Token: tok, Target: up.URL + "/v1/things" + tt.query, Header: h, Body: strings.NewReader(`{"a":1}`)})
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusCreated || string(body) != "created" || resp.Header.Get("X-Upstream") != "yes" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if resp.Header.Get(agentkeys.HeaderError) != "" {
				t.Fatalf("upstream answer carries %s", agentkeys.HeaderError)
			}
			got := up.last(t)
			if got.Method != http.MethodPost || got.URL.Path != "/v1/things" || string(got.Body) != `{"a":1}` || got.Host != up.hostPort() {
				t.Fatalf("upstream got %s %s host %s body %q", got.Method, got.URL, got.Host, got.Body)
			}
			wantValues(t, got.Header, "Content-Type", "application/json")
			for _, h := range []string{agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod, agentkeys.HeaderCredentialName, "X-Forwarded-For", "Forwarded"} {
				if _, ok := got.Header[http.CanonicalHeaderKey(h)]; ok {
					t.Errorf("%s reached the upstream", h)
				}
			}
			tt.check(t, got)

			row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
			if row.Decision != agentkeys.DecisionAllowed || row.Status != http.StatusCreated || row.Method != http.MethodPost ||
				row.Host != up.hostPort() || row.Path != "/v1/things" || row.CredentialID != c.ID || row.AgentName != "bot" ||
				row.BytesIn != int64(len(`{"a":1}`)) || row.BytesOut != int64(len("created")) || row.Duration <= 0 {
				t.Fatalf("audit row = %+v", row)
			}
		})
	}
}

// wantValues checks that h holds exactly the given values under name.
func wantValues(t *testing.T, h http.Header, name string, want ...string) {
	t.Helper()
	got := h.Values(name)
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func TestProxy_WorkspaceKey(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	b.addCredential(t, "Resend Production", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "re_123"})
	p := newTestProxy(t, b, proxy.Config{})

	resp := p.do(t, call{Token: b.wsKey, Target: up.URL + "/emails", Header: http.Header{agentkeys.HeaderCredentialName: {"resend PRODUCTION"}}})
	if body := readAll(t, resp); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	wantValues(t, up.last(t).Header, "Authorization", "Bearer re_123")
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.AgentID != "" || row.CredentialName != "Resend Production" || row.Decision != agentkeys.DecisionAllowed {
		t.Fatalf("audit row = %+v", row)
	}
}

func TestProxy_TargetMethod(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Method: http.MethodPost, Token: tok, Target: up.URL + "/x", Header: http.Header{agentkeys.HeaderTargetMethod: {"DELETE"}}})
	readAll(t, resp)
	if got := up.last(t).Method; got != http.MethodDelete {
		t.Fatalf("upstream method = %s, want DELETE", got)
	}
}

func TestProxy_Errors(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	c := b.addCredential(t, "Main", agentkeys.APIKey, []string{up.hostPort(), "api.example.com"}, agentkeys.Secret{Value: "sk_1"})
	tok := b.assign(c, "bot")
	revoked := b.assign(c, "old-bot")
	b.revoke(revoked)
	p := newTestProxy(t, b, proxy.Config{MaxBodyBytes: 1000, AuditEveryRefusal: true})
	target := up.URL + "/x"

	tests := []struct {
		name   string
		c      call
		status int
		code   string
		// opens is whether the secret may have been opened (only for
		// refusals after the destination check).
		attributed bool
	}{
		{"MissingToken", call{Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"NotBearer", call{Auth: "Basic " + tok, Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"EmptyBearer", call{Auth: "Bearer ", Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"NotAToken", call{Token: "sk_live_whatever_this_is_long", Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"UnknownProxyToken", call{Token: agentkeys.NewProxyToken(), Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"RevokedProxyToken", call{Token: revoked, Target: target}, 401, agentkeys.EUNAUTHORIZED, false},
		{"WrongWorkspaceKey", call{Token: agentkeys.NewWorkspaceKey(), Target: target, Header: http.Header{agentkeys.HeaderCredentialName: {"Main"}}}, 401, agentkeys.EUNAUTHORIZED, false},
		{"TwoAuthorizationHeaders", call{Token: tok, Target: target, Header: http.Header{"Authorization": {"Bearer " + tok}}}, 401, agentkeys.EUNAUTHORIZED, false},
		{"WorkspaceKeyWithoutName", call{Token: b.wsKey, Target: target}, 400, agentkeys.EINVALID, false},
		{"UnknownCredentialName", call{Token: b.wsKey, Target: target, Header: http.Header{agentkeys.HeaderCredentialName: {"Nope"}}}, 404, agentkeys.ENOTFOUND, false},
		{"MissingTarget", call{Token: tok}, 400, agentkeys.EINVALID, true},
		{"MalformedTarget", call{Token: tok, Target: "https://[::1"}, 400, agentkeys.EINVALID, true},
		{"RelativeTarget", call{Token: tok, Target: "/v1/things"}, 400, agentkeys.EINVALID, true},
		{"FtpTarget", call{Token: tok, Target: "ftp://api.example.com/x"}, 400, agentkeys.EINVALID, true},
		{"BadTargetMethod", call{Token: tok, Target: target, Header: http.Header{agentkeys.HeaderTargetMethod: {"GE T"}}}, 400, agentkeys.EINVALID, true},
		{"TraceEchoesCredential", call{Token: tok, Target: target, Header: http.Header{agentkeys.HeaderTargetMethod: {"TRACE"}}}, 400, agentkeys.EINVALID, true},
		{"TwoTargets", call{Token: tok, Target: target, Header: http.Header{agentkeys.HeaderTargetURL: {"https://evil.example.net/"}}}, 400, agentkeys.EINVALID, true},
		{"TwoMethods", call{Token: tok, Target: target, Header: http.Header{agentkeys.HeaderTargetMethod: {"GET", "DELETE"}}}, 400, agentkeys.EINVALID, true},
		{"EvilHost", call{Token: tok, Target: "https://evil.example.net/steal"}, 403, agentkeys.EDESTINATION, true},
		{"PlainHTTPToPublicHost", call{Token: tok, Target: "http://api.example.com/x"}, 403, agentkeys.EDESTINATION, true},
		{"WrongPort", call{Token: tok, Target: "http://127.0.0.1:1/x"}, 403, agentkeys.EDESTINATION, true},
		{"BodyOverLimitByLength", call{Method: "POST", Token: tok, Target: target, Body: strings.NewReader(strings.Repeat("x", 1001))}, 413, agentkeys.ETOOLARGE, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.conns.Load()
			opened := b.secretsOpened()
			resp := p.do(t, tt.c)
			reqID := resp.Header.Get(agentkeys.HeaderRequestID)
			wantProxyError(t, resp, tt.status, tt.code)
			if n := up.conns.Load() - before; n != 0 {
				t.Errorf("%d upstream connections for a refused request", n)
			}
			if b.secretsOpened() != opened {
				t.Errorf("the secret was decrypted for a refused request")
			}
			row := b.rowByRequestID(t, reqID)
			if row.Decision != agentkeys.DecisionDenied || row.Status != tt.status || row.Code != tt.code {
				t.Errorf("audit row = %+v", row)
			}
			if tt.attributed && row.CredentialID != c.ID {
				t.Errorf("audit row not attributed to the credential: %+v", row)
			}
			if tt.name == "EvilHost" && (row.Host != "evil.example.net" || row.Path != "/steal") {
				t.Errorf("refused row names %q %q, want the host and path aimed at", row.Host, row.Path)
			}
		})
	}
}

func TestProxy_AuditFailureFailsClosed(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	b.setFailBegin(true)
	wantProxyError(t, p.do(t, call{Token: tok, Target: up.URL}), http.StatusServiceUnavailable, agentkeys.EUNAVAILABLE)
	if up.conns.Load() != 0 || b.secretsOpened() != 0 {
		t.Fatalf("forwarded (%d conns) or decrypted (%d) without an audit row", up.conns.Load(), b.secretsOpened())
	}
	if !strings.Contains(p.Logs.String(), "audit write failed") {
		t.Fatalf("audit failure not logged: %s", p.Logs.String())
	}
}

func TestProxy_ConfusableTargets(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	c := b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort(), "api.example.com", "*.apis.example.org"}, agentkeys.Secret{Value: "v"})
	tok := b.assign(c, "a")
	p := newTestProxy(t, b, proxy.Config{})
	port := strings.TrimPrefix(up.hostPort(), "127.0.0.1:")

	tests := []struct {
		target string
		status int
		code   string
	}{
		{"https://api.example.com@evil.com/", 400, agentkeys.EINVALID},
		{"https://evil.com@api.example.com/", 400, agentkeys.EINVALID},
		{"https://evil.com\\@api.example.com/", 400, agentkeys.EINVALID},
		{"https://api.example.com\\.evil.com/", 400, agentkeys.EINVALID},
		{"https://api.example.com/#@evil.com", 400, agentkeys.EINVALID},
		{"https://api.example.com#frag", 400, agentkeys.EINVALID},
		{"https://аpi.example.com/", 403, agentkeys.EDESTINATION},          // Cyrillic а: xn--pi-6kc.example.com
		{"https://api.exаmple.com/", 403, agentkeys.EDESTINATION},          // Cyrillic а in the domain
		{"https://api.example.com.evil.com/", 403, agentkeys.EDESTINATION}, // suffix trick
		{"https://evilapi.example.com/", 403, agentkeys.EDESTINATION},
		{"https://apis.example.org/", 403, agentkeys.EDESTINATION}, // wildcard excludes the apex
		{"https://x.apis.example.org.evil.com/", 403, agentkeys.EDESTINATION},
		{"http://127.1:" + port + "/", 400, agentkeys.EINVALID}, // an IP in another spelling is no host name
		{"http://0x7f.1:" + port + "/", 400, agentkeys.EINVALID},
		{"http://2130706433:" + port + "/", 400, agentkeys.EINVALID},
		{"http://0x7f000001:" + port + "/", 400, agentkeys.EINVALID},
		{"http://[::ffff:127.0.0.1]:" + port + "/", 403, agentkeys.EDESTINATION},
		{"http://localhost:" + port + "/", 403, agentkeys.EDESTINATION},
		{"http://127.0.0.1/", 403, agentkeys.EDESTINATION}, // no port: entry names one
		{"https://api.example.com\t/", 400, agentkeys.EINVALID},
		{"https://a\u200d.example.com/", 400, agentkeys.EINVALID}, // zero-width joiner
		{"https://evil.com%2f@api.example.com/", 400, agentkeys.EINVALID},
		{"javascript:alert(1)", 400, agentkeys.EINVALID},
		{"//api.example.com/x", 400, agentkeys.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			resp := p.do(t, call{Token: tok, Target: tt.target})
			wantProxyError(t, resp, tt.status, tt.code)
			if up.conns.Load() != 0 {
				t.Fatalf("upstream got %d connections", up.conns.Load())
			}
		})
	}
	if b.secretsOpened() != 0 {
		t.Fatalf("secret decrypted %d times for refused targets", b.secretsOpened())
	}

	// Spellings that normalise to an allowed host do pass.
	for _, target := range []string{
		up.URL + "/ok",
		"HTTP://127.0.0.1:" + port + "/ok",
		"http://127.0.0.1.:" + port + "/ok",
	} {
		t.Run("allowed/"+target, func(t *testing.T) {
			resp := p.do(t, call{Token: tok, Target: target})
			if body := readAll(t, resp); resp.StatusCode != 200 {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestProxy_UnicodeHostIsPunycoded(t *testing.T) {
	// The allowlist names the punycode form; the Unicode spelling of the
	// same name matches it, and a homograph does not. Nothing is dialled:
	// the transport records the host it would have dialled.
	rt := &recordingTransport{}
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{"xn--bcher-kva.de"}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{Transport: rt})

	resp := p.do(t, call{Token: tok, Target: "https://BÜCHER.de/katalog?x=1"})
	readAll(t, resp)
	if resp.StatusCode != 200 || rt.last().URL.Host != "xn--bcher-kva.de" || rt.last().URL.RawQuery != "x=1" {
		t.Fatalf("got %d, dialled %v", resp.StatusCode, rt.last().URL)
	}
	wantProxyError(t, p.do(t, call{Token: tok, Target: "https://bücher.de.evil.com/"}), 403, agentkeys.EDESTINATION)
	wantProxyError(t, p.do(t, call{Token: tok, Target: "https://bцcher.de/"}), 403, agentkeys.EDESTINATION)
	wantProxyError(t, p.do(t, call{Token: tok, Target: "https://-bücher.de/"}), 400, agentkeys.EINVALID)
}
