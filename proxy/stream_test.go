package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

func TestProxy_HeaderHandling(t *testing.T) {
	tests := []struct {
		name   string
		typ    agentkeys.CredentialType
		secret agentkeys.Secret
		header http.Header
		query  string
		check  func(t *testing.T, got received)
	}{
		{
			name: "AgentAuthorizationReplaced", typ: agentkeys.APIKey, secret: agentkeys.Secret{Value: "real"},
			header: http.Header{"X-Keep": {"1"}, "Accept": {"text/plain"}, "User-Agent": {"agent/1.0"}},
			check: func(t *testing.T, got received) {
				wantValues(t, got.Header, "Authorization", "Bearer real")
				wantValues(t, got.Header, "X-Keep", "1")
				wantValues(t, got.Header, "Accept", "text/plain")
				wantValues(t, got.Header, "User-Agent", "agent/1.0")
			},
		},
		{
			name: "ConnectionAuthorizationCannotRemoveInjection", typ: agentkeys.APIKey, secret: agentkeys.Secret{Value: "real"},
			header: http.Header{"Connection": {"Authorization, X-Drop"}, "X-Drop": {"gone"}},
			check: func(t *testing.T, got received) {
				wantValues(t, got.Header, "Authorization", "Bearer real")
				wantValues(t, got.Header, "X-Drop")
			},
		},
		{
			name: "ConnectionCustomHeaderCannotRemoveInjection", typ: agentkeys.CustomHeader,
			secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "real"}}},
			header: http.Header{"Connection": {"x-api-key"}, "X-Api-Key": {"agents"}},
			check:  func(t *testing.T, got received) { wantValues(t, got.Header, "X-Api-Key", "real") },
		},
		{
			name: "ConnectionCookieCannotRemoveInjection", typ: agentkeys.Cookie, secret: agentkeys.Secret{Value: "sid=real"},
			header: http.Header{"Connection": {"Cookie"}, "Cookie": {"sid=agents"}},
			check:  func(t *testing.T, got received) { wantValues(t, got.Header, "Cookie", "sid=real") },
		},
		{
			name: "QueryParamReplacedNotAppended", typ: agentkeys.QueryParam, secret: agentkeys.Secret{Param: "api_key", Value: "real"},
			query: "?api_key=agents&api%5Fkey=again&x=1",
			check: func(t *testing.T, got received) {
				if v := got.URL.Query()["api_key"]; len(v) != 1 || v[0] != "real" {
					t.Errorf("api_key = %q (raw %q)", v, got.URL.RawQuery)
				}
			},
		},
		{
			name: "ForwardingAndProxyHeadersDropped", typ: agentkeys.APIKey, secret: agentkeys.Secret{Value: "real"},
			header: http.Header{
				"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Host": {"evil"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"1"}, "Forwarded": {"for=1.2.3.4"}, "Proxy-Authorization": {"Basic x"},
				"Proxy-Foo": {"1"}, "X-Agentkeys-Error": {"FAKE"}, "Keep-Alive": {"timeout=5"}, "Te": {"gzip"},
				"Upgrade-Insecure-Requests": {"1"},
			},
			check: func(t *testing.T, got received) {
				for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "Forwarded",
					"Proxy-Authorization", "Proxy-Foo", "X-Agentkeys-Error", "Keep-Alive", "Te"} {
					if v, ok := got.Header[h]; ok {
						t.Errorf("%s reached the upstream: %q", h, v)
					}
				}
				wantValues(t, got.Header, "Upgrade-Insecure-Requests", "1")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", tt.typ, []string{up.hostPort()}, tt.secret), "a")
			p := newTestProxy(t, b, proxy.Config{})
			resp := p.do(t, call{Token: tok, Target: up.URL + "/p" + tt.query, Header: tt.header})
			if body := readAll(t, resp); resp.StatusCode != 200 {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			got := up.last(t)
			if got.Host != up.hostPort() {
				t.Errorf("Host = %q, want the target's %q", got.Host, up.hostPort())
			}
			tt.check(t, got)
		})
	}
}

func TestProxy_UpstreamCannotFakeProxyErrors(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(agentkeys.HeaderError, agentkeys.EUNAUTHORIZED)
		w.Header().Set(agentkeys.HeaderRequestID, "req_fake")
		w.WriteHeader(http.StatusUnauthorized)
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL})
	readAll(t, resp)
	if resp.StatusCode != 401 || resp.Header.Get(agentkeys.HeaderError) != "" || resp.Header.Values(agentkeys.HeaderRequestID)[0] == "req_fake" ||
		len(resp.Header.Values(agentkeys.HeaderRequestID)) != 1 {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
}

func TestProxy_RedirectReturnedNotFollowed(t *testing.T) {
	followed := newUpstream(t, nil)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, followed.URL+"/landing", http.StatusFound)
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort(), followed.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	client := p.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", p.URL+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/start")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != followed.URL+"/landing" {
		t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if followed.conns.Load() != 0 || len(up.requests()) != 1 {
		t.Fatalf("redirect was followed (%d conns to the redirect target)", followed.conns.Load())
	}
}

func TestProxy_SSEEventsArriveOneByOne(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			<-release // the next event is sent only after the agent saw this one
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL + "/stream"})
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		release <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("trailing data %q", rest)
	}
}

// TestProxy_LargeResponseBoundedMemory streams 100 MiB and checks that the
// heap grows by a small, fixed amount (nothing buffered whole).
func TestProxy_LargeResponseBoundedMemory(t *testing.T) {
	const size = 100 << 20
	chunk := make([]byte, 64<<10)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})

	runtime.GC()
	var before, peak runtime.MemStats
	runtime.ReadMemStats(&before)
	peakHeap := before.HeapInuse
	resp := p.do(t, call{Token: tok, Target: up.URL + "/big"})
	defer resp.Body.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for i := 0; ; i++ {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if i%64 == 0 {
			runtime.ReadMemStats(&peak)
			peakHeap = max(peakHeap, peak.HeapInuse)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != size {
		t.Fatalf("read %d bytes, want %d", n, size)
	}
	growth := int64(peakHeap) - int64(before.HeapInuse)
	t.Logf("heap growth while streaming 100 MiB: %.1f MiB", float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 100 MiB", growth>>20)
	}
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.BytesOut != size || row.Decision != agentkeys.DecisionAllowed {
		t.Fatalf("audit row = %+v", row)
	}
}

// chunkedBody hides its length, so the request is sent chunked.
type chunkedBody struct{ r io.Reader }

func (c chunkedBody) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestProxy_BodyLimitEnforcedWhileStreaming(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{MaxBodyBytes: 64 << 10})

	// At the limit: forwarded whole.
	resp := p.do(t, call{Method: "PUT", Token: tok, Target: up.URL, Body: chunkedBody{strings.NewReader(strings.Repeat("a", 64<<10))}})
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("at the limit: %d %s", resp.StatusCode, body)
	}
	if got := len(up.last(t).Body); got != 64<<10 {
		t.Fatalf("upstream got %d bytes", got)
	}
	// One byte over, with no Content-Length: cut while streaming.
	before := len(up.requests())
	resp = p.do(t, call{Method: "PUT", Token: tok, Target: up.URL, Body: chunkedBody{strings.NewReader(strings.Repeat("a", 64<<10+1))}})
	reqID := resp.Header.Get(agentkeys.HeaderRequestID)
	wantProxyError(t, resp, http.StatusRequestEntityTooLarge, agentkeys.ETOOLARGE)
	for _, r := range up.requests()[before:] {
		if len(r.Body) > 64<<10 {
			t.Fatalf("upstream received %d bytes, over the limit", len(r.Body))
		}
	}
	row := b.rowByRequestID(t, reqID)
	if row.Status != 413 || row.Code != agentkeys.ETOOLARGE || row.BytesIn != 64<<10 {
		t.Fatalf("audit row = %+v", row)
	}
}

func TestProxy_UpstreamFailures(t *testing.T) {
	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	tlsUp := newTLSUpstream(t, nil)

	b := newMemBackend()
	c := b.addCredential(t, "k", agentkeys.APIKey, []string{closedAddr, slow.hostPort(), tlsUp.hostPort()}, agentkeys.Secret{Value: "v"})
	tok := b.assign(c, "a")
	p := newTestProxy(t, b, proxy.Config{ResponseHeaderTimeout: 200 * time.Millisecond})

	tests := []struct {
		name, target string
		status       int
		code         string
	}{
		{"ConnectionRefused", "http://" + closedAddr + "/", 502, agentkeys.EUPSTREAM},
		{"ResponseHeaderTimeout", slow.URL + "/", 504, agentkeys.ETIMEOUT},
		{"UntrustedCertificate", tlsUp.URL + "/", 502, agentkeys.EUPSTREAM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.do(t, call{Token: tok, Target: tt.target})
			reqID := resp.Header.Get(agentkeys.HeaderRequestID)
			e := wantProxyError(t, resp, tt.status, tt.code)
			t.Logf("message: %s", e.Error)
			row := b.rowByRequestID(t, reqID)
			if row.Decision != agentkeys.DecisionError || row.Status != tt.status || row.Code != tt.code {
				t.Fatalf("audit row = %+v", row)
			}
		})
	}
	if len(tlsUp.requests()) != 0 {
		t.Fatal("a request reached the TLS upstream despite its untrusted certificate")
	}
}

func TestProxy_TrustedTLSUpstream(t *testing.T) {
	up := newTLSUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	tr := proxy.NewTransport(proxy.TransportConfig{TLSClientConfig: &tls.Config{RootCAs: up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, InsecureSkipVerify: true}})
	if tr.TLSClientConfig.InsecureSkipVerify {
		t.Fatal("NewTransport kept InsecureSkipVerify")
	}
	if tr.Proxy != nil {
		t.Fatal("NewTransport uses a proxy from the environment")
	}
	p := newTestProxy(t, b, proxy.Config{Transport: tr})
	resp := p.do(t, call{Token: tok, Target: up.URL + "/secure"})
	if body := readAll(t, resp); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestProxy_IgnoresEnvironmentProxy(t *testing.T) {
	// An HTTP proxy from the environment would see (and could keep) the
	// injected credential. Point the variables at a server that counts.
	trap := newUpstream(t, nil)
	t.Setenv("HTTP_PROXY", trap.URL)
	t.Setenv("HTTPS_PROXY", trap.URL)
	t.Setenv("NO_PROXY", "")
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	readAll(t, p.do(t, call{Token: tok, Target: up.URL}))
	if trap.conns.Load() != 0 || len(up.requests()) != 1 {
		t.Fatalf("went through the environment's proxy (%d conns)", trap.conns.Load())
	}
}

func TestProxy_GracefulShutdownFinishesStream(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "last")
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(b, proxy.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Config.Shutdown(context.Background()) }()
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) while a stream was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(rest) != "last" {
		t.Fatalf("rest of stream = %q, %v", rest, err)
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.Decision != agentkeys.DecisionAllowed || row.BytesOut != int64(len("first;last")) {
		t.Fatalf("audit row = %+v", row)
	}
}

func TestProxy_BrokenStreamIsAudited(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL})
	_, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("a truncated stream read cleanly")
	}
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.Decision != agentkeys.DecisionError || row.Code != agentkeys.EUPSTREAM {
		t.Fatalf("audit row = %+v", row)
	}
}

func TestProxy_RequestTrailersDropped(t *testing.T) {
	gotTrailer := make(chan http.Header, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { gotTrailer <- r.Trailer })
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "real"}), "a")
	p := newTestProxy(t, b, proxy.Config{})

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", p.URL+"/v1/proxy", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL)
	req.Trailer = http.Header{"Authorization": nil, "X-Checksum": nil}
	go func() {
		io.WriteString(pw, "body")
		req.Trailer.Set("Authorization", "Bearer agents-own")
		req.Trailer.Set("X-Checksum", "1")
		pw.Close()
	}()
	resp, err := p.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if tr := <-gotTrailer; len(tr) != 0 {
		t.Fatalf("upstream got request trailers %v", tr)
	}
	wantValues(t, up.last(t).Header, "Authorization", "Bearer real")
}
