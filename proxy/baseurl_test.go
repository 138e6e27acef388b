package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

const realKey = "sk-real-key-canary-7f3a"

// expire makes the grant behind tok expire at t.
func (b *memBackend) expire(tok string, t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.grants[agentkeys.HashToken(tok)].ExpiresAt = t
}

// baseReq sends one request to the proxy's base-URL path.
func (p *testProxy) baseReq(tb testing.TB, method, path string, hdr http.Header, body io.Reader) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(method, p.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vv := range hdr {
		for _, v := range vv {
			req.Header.Add(k, v)
		}
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		tb.Fatalf("proxy request: %v", err)
	}
	return resp
}

// noToken fails when anything the upstream received holds a proxy token.
func noToken(tb testing.TB, u *upstream) {
	tb.Helper()
	for _, r := range u.requests() {
		seen := r.URL.String() + fmt.Sprint(r.Header) + string(r.Body)
		if strings.Contains(seen, agentkeys.ProxyTokenPrefix) {
			tb.Fatalf("the upstream received a proxy token: %s", seen)
		}
	}
}

func baseURLSetup(t *testing.T, h http.HandlerFunc) (*memBackend, *upstream, *testProxy, string) {
	t.Helper()
	b := newMemBackend()
	up := newUpstream(t, h)
	c := b.addCredential(t, "OpenAI", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: realKey})
	tok := b.assign(c, "coder")
	return b, up, newTestProxy(t, b, proxy.Config{}), tok
}

// TestBaseURL_KeySlots: the token is found in every slot a client puts its
// own key in, removed, and the real key injected; the rest of the request
// (path, other query parameters, other headers, body) goes through as sent.
func TestBaseURL_KeySlots(t *testing.T) {
	slots := []struct {
		name  string
		hdr   func(tok string) http.Header
		query func(tok string) string
	}{
		{"Authorization Bearer", func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }, nil},
		{"x-api-key", func(tok string) http.Header { return http.Header{"X-Api-Key": {tok}} }, nil},
		{"api-key", func(tok string) http.Header { return http.Header{"Api-Key": {tok}} }, nil},
		{"x-goog-api-key", func(tok string) http.Header { return http.Header{"X-Goog-Api-Key": {tok}} }, nil},
		{"key query parameter", nil, func(tok string) string { return "&key=" + tok }},
		{"same token in two slots", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "X-Api-Key": {tok}}
		}, func(tok string) string { return "&key=" + tok }},
	}
	for _, s := range slots {
		t.Run(s.name, func(t *testing.T) {
			b, up, p, tok := baseURLSetup(t, nil)
			hdr := http.Header{"X-Client": {"sdk/1.0"}, "Content-Type": {"application/json"}}
			if s.hdr != nil {
				for k, v := range s.hdr(tok) {
					hdr[k] = v
				}
			}
			path := "/to/" + up.hostPort() + "/v1/chat/completions?a=1&b=two%20words"
			if s.query != nil {
				path += s.query(tok)
			}
			resp := p.baseReq(t, "POST", path, hdr, strings.NewReader(`{"model":"m"}`))
			if body := readAll(t, resp); resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			got := up.last(t)
			if got.URL.Path != "/v1/chat/completions" || got.URL.RawQuery != "a=1&b=two%20words" {
				t.Errorf("upstream URL = %s", got.URL)
			}
			if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+realKey {
				t.Errorf("upstream Authorization = %q, want the real key once", a)
			}
			for _, slot := range []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
				if v := got.Header.Values(slot); len(v) != 0 {
					t.Errorf("upstream got %s: %q", slot, v)
				}
			}
			if got.Header.Get("X-Client") != "sdk/1.0" || string(got.Body) != `{"model":"m"}` || got.Method != "POST" {
				t.Errorf("request not passed through: %+v", got)
			}
			noToken(t, up)
			row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
			if row.AgentName != "coder" || row.Decision != agentkeys.DecisionAllowed || row.Host != up.hostPort() || row.Path != "/v1/chat/completions" {
				t.Errorf("audit row = %+v", row)
			}
		})
	}
}

// TestBaseURL_CustomHeaderCredential: an Anthropic-style credential
// (x-api-key) injected for a client that sent its token as Bearer.
func TestBaseURL_CustomHeaderCredential(t *testing.T) {
	b := newMemBackend()
	up := newUpstream(t, nil)
	c := b.addCredential(t, "Anthropic", agentkeys.CustomHeader, []string{up.hostPort()},
		agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: realKey}}})
	tok := b.assign(c, "coder")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.baseReq(t, "POST", "/to/"+up.hostPort()+"/v1/messages", http.Header{"Authorization": {"Bearer " + tok}, "X-Api-Key": {tok}}, strings.NewReader("{}"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	got := up.last(t)
	if v := got.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != realKey {
		t.Errorf("x-api-key = %q", v)
	}
	if v := got.Header.Values("Authorization"); len(v) != 0 {
		t.Errorf("Authorization reached the upstream: %q", v)
	}
	noToken(t, up)
}

// TestBaseURL_Refusals: each refusal has the proxy's JSON error, an audit
// row, and nothing reaches the upstream or is decrypted.
func TestBaseURL_Refusals(t *testing.T) {
	other := agentkeys.NewProxyToken()
	cases := []struct {
		name   string
		path   string // after the upstream's host:port; "!" prefix: the whole path
		hdr    func(tok string) http.Header
		status int
		code   string
	}{
		{"no token", "/v1/x", func(string) http.Header { return http.Header{"Authorization": {"Bearer sk-not-a-token"}} }, 401, agentkeys.EUNAUTHORIZED},
		{"two different tokens", "/v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "X-Api-Key": {other}}
		}, 401, agentkeys.EUNAUTHORIZED},
		{"token in another header too", "/v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "X-Debug": {"was " + tok}}
		}, 400, agentkeys.EINVALID},
		{"another token in another header", "/v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "X-Debug": {other}}
		}, 400, agentkeys.EINVALID},
		{"token in another query parameter", "/v1/x?api_key=" + other, func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 400, agentkeys.EINVALID},
		{"token in the path", "/v1/" + other, func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 400, agentkeys.EINVALID},
		{"token escaped in the path", "/v1/%70" + other[1:], func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 400, agentkeys.EINVALID},
		{"token escaped in the query", "/v1/x?q=%70" + other[1:], func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 400, agentkeys.EINVALID},
		{"host not allowed", "!/to/evil.example/v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 403, agentkeys.EDESTINATION},
		{"no host", "!/to//v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}}
		}, 400, agentkeys.EINVALID},
		{"TRACE", "/v1/x", func(tok string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, agentkeys.HeaderTargetMethod: {"TRACE"}}
		}, 0, ""}, // X-Target-Method is ignored here: a GET goes through
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, up, p, tok := baseURLSetup(t, nil)
			path := "/to/" + up.hostPort() + c.path
			if strings.HasPrefix(c.path, "!") {
				path = c.path[1:]
			}
			resp := p.baseReq(t, "GET", path, c.hdr(tok), nil)
			if c.status == 0 {
				readAll(t, resp)
				if resp.StatusCode != 200 || up.last(t).Method != "GET" {
					t.Fatalf("status %d, upstream method %s", resp.StatusCode, up.last(t).Method)
				}
				return
			}
			wantProxyError(t, resp, c.status, c.code)
			if n := len(up.requests()); n != 0 {
				t.Errorf("the upstream received %d request(s)", n)
			}
			if n := b.secretsOpened(); n != 0 {
				t.Errorf("%d secret(s) decrypted for a refused request", n)
			}
			row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
			if row.Decision != agentkeys.DecisionDenied || row.Code != c.code || row.Status != c.status {
				t.Errorf("audit row = %+v", row)
			}
		})
	}
}

// TestBaseURL_TargetHeaderIgnored: an agent's own X-Target-Url cannot aim a
// base-URL request elsewhere.
func TestBaseURL_TargetHeaderIgnored(t *testing.T) {
	_, up, p, tok := baseURLSetup(t, nil)
	other := newUpstream(t, nil)
	resp := p.baseReq(t, "GET", "/to/"+up.hostPort()+"/v1/x", http.Header{
		"Authorization": {"Bearer " + tok}, agentkeys.HeaderTargetURL: {other.URL + "/steal"},
	}, nil)
	readAll(t, resp)
	if resp.StatusCode != 200 || len(up.requests()) != 1 || len(other.requests()) != 0 {
		t.Fatalf("status %d, upstream %d, other %d", resp.StatusCode, len(up.requests()), len(other.requests()))
	}
	if v := up.last(t).Header.Get(agentkeys.HeaderTargetURL); v != "" {
		t.Errorf("X-Target-Url reached the upstream: %q", v)
	}
}

// TestBaseURL_TokenInBody: a body holding the token is cut off before the
// token's bytes leave, wherever the token falls in the reads; a body
// without it passes whole, even when it holds pxr_-like fragments.
func TestBaseURL_TokenInBody(t *testing.T) {
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		for _, at := range []int{0, 5, 100_000} {
			t.Run(fmt.Sprintf("chunk%d/at%d", chunk, at), func(t *testing.T) {
				b, up, p, tok := baseURLSetup(t, nil)
				body := bytes.Repeat([]byte("a"), at)
				body = append(body, tok...)
				body = append(body, "tail"...)
				pr, pw := io.Pipe()
				go func() {
					for i := 0; i < len(body); i += chunk {
						if _, err := pw.Write(body[i:min(i+chunk, len(body))]); err != nil {
							return
						}
					}
					pw.Close()
				}()
				resp := p.baseReq(t, "POST", "/to/"+up.hostPort()+"/v1/x", http.Header{"X-Api-Key": {tok}}, pr)
				wantProxyError(t, resp, 400, agentkeys.EINVALID)
				pr.CloseWithError(io.ErrClosedPipe)
				noToken(t, up)
				row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
				if row.Code != agentkeys.EINVALID {
					t.Errorf("audit row = %+v", row)
				}
			})
		}
	}
	t.Run("clean body passes whole", func(t *testing.T) {
		_, up, p, tok := baseURLSetup(t, nil)
		var body []byte
		for i := 0; len(body) < 300_000; i++ {
			body = append(body, fmt.Sprintf("line %d pxr_short %s\n", i, tok[:30])...)
		}
		resp := p.baseReq(t, "POST", "/to/"+up.hostPort()+"/v1/x", http.Header{"Authorization": {"Bearer " + tok}}, bytes.NewReader(body))
		readAll(t, resp)
		if resp.StatusCode != 200 || !bytes.Equal(up.last(t).Body, body) {
			t.Fatalf("status %d, upstream got %d of %d bytes", resp.StatusCode, len(up.last(t).Body), len(body))
		}
	})
}

// TestBaseURL_RevokedAndExpired: a revoked token and an expired grant are
// refused (401, audited with the agent); expiry applies to /v1/proxy too.
func TestBaseURL_RevokedAndExpired(t *testing.T) {
	b, up, p, tok := baseURLSetup(t, nil)
	path := "/to/" + up.hostPort() + "/v1/x"
	auth := http.Header{"Authorization": {"Bearer " + tok}}
	if resp := p.baseReq(t, "GET", path, auth, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	} else {
		readAll(t, resp)
	}
	b.expire(tok, time.Now().Add(-time.Second))
	resp := p.baseReq(t, "GET", path, auth, nil)
	e := wantProxyError(t, resp, 401, agentkeys.EUNAUTHORIZED)
	if !strings.Contains(e.Error, "expired") {
		t.Errorf("message = %q", e.Error)
	}
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.AgentName != "coder" || row.Decision != agentkeys.DecisionDenied {
		t.Errorf("audit row = %+v", row)
	}
	wantProxyError(t, p.do(t, call{Token: tok, Target: up.URL + "/v1/x"}), 401, agentkeys.EUNAUTHORIZED)

	b.expire(tok, time.Now().Add(time.Hour))
	if resp := p.do(t, call{Token: tok, Target: up.URL + "/v1/x"}); resp.StatusCode != 200 {
		t.Fatalf("unexpired token: status %d", resp.StatusCode)
	} else {
		readAll(t, resp)
	}
	b.revoke(tok)
	wantProxyError(t, p.baseReq(t, "GET", path, auth, nil), 401, agentkeys.EUNAUTHORIZED)
	if n := len(up.requests()); n != 2 {
		t.Errorf("upstream received %d requests, want 2", n)
	}
}

// TestBaseURL_Stream: SSE events reach the client one by one (the
// upstream sends the next only after the client has read the previous).
func TestBaseURL_Stream(t *testing.T) {
	next := make(chan struct{})
	_, up, p, tok := baseURLSetup(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	resp := p.baseReq(t, "POST", "/to/"+up.hostPort()+"/v1/chat/completions", http.Header{"Authorization": {"Bearer " + tok}}, strings.NewReader("{}"))
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		done := make(chan string, 1)
		go func() { line, _ := rd.ReadString('\n'); rd.ReadString('\n'); done <- line }()
		select {
		case line := <-done:
			if want := fmt.Sprintf("data: event %d\n", i); line != want {
				t.Fatalf("event %d = %q, want %q", i, line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive before the next was sent: the stream is buffered", i)
		}
		next <- struct{}{}
	}
}

// TestBaseURL_RedirectReturned: a redirect goes back to the client.
func TestBaseURL_RedirectReturned(t *testing.T) {
	_, up, p, tok := baseURLSetup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	resp := p.baseReq(t, "GET", "/to/"+up.hostPort()+"/v1/x", http.Header{"Authorization": {"Bearer " + tok}}, nil)
	readAll(t, resp)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/elsewhere" || len(up.requests()) != 1 {
		t.Fatalf("status %d Location %q, %d upstream requests", resp.StatusCode, resp.Header.Get("Location"), len(up.requests()))
	}
}

// TestBaseURL_HTTPSForPublicHosts: a public host is reached over https,
// a loopback one over http (allowed only when listed exactly).
func TestBaseURL_HTTPSForPublicHosts(t *testing.T) {
	b := newMemBackend()
	c := b.addCredential(t, "OpenAI", agentkeys.APIKey, []string{"api.openai.com", "localhost:9", "[::1]:9", "127.0.0.2:9"}, agentkeys.Secret{Value: realKey})
	tok := b.assign(c, "coder")
	rt := &recordingTransport{}
	p := newTestProxy(t, b, proxy.Config{Transport: rt})
	resp := p.baseReq(t, "GET", "/to/API.OpenAI.com/v1/models?limit=2", http.Header{"Authorization": {"Bearer " + tok}}, nil)
	readAll(t, resp)
	if got := rt.last().URL.String(); resp.StatusCode != 200 || got != "https://api.openai.com/v1/models?limit=2" {
		t.Fatalf("status %d, outbound %s", resp.StatusCode, got)
	}
	resp = p.baseReq(t, "GET", "/to/127.0.0.1:9/v1/models", http.Header{"Authorization": {"Bearer " + tok}}, nil)
	wantProxyError(t, resp, 403, agentkeys.EDESTINATION)
	for _, host := range []string{"localhost:9", "[::1]:9", "127.0.0.2:9"} {
		resp = p.baseReq(t, "GET", "/to/"+host+"/v1/models", http.Header{"Authorization": {"Bearer " + tok}}, nil)
		readAll(t, resp)
		if got := rt.last().URL.String(); resp.StatusCode != 200 || got != "http://"+host+"/v1/models" {
			t.Errorf("%s: status %d, outbound %s", host, resp.StatusCode, got)
		}
	}
}
