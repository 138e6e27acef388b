package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

func TestDo_StreamsResponseBeforeItEnds(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Up", "1")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "head;")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "tail")
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(b, proxy.Config{})

	resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, Method: "POST", URL: up.URL + "/x?y=1",
		Header: http.Header{"content-type": {"text/plain"}, "authorization": {"Bearer agents-own"}}, Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Up") != "1" || resp.Header.Get(agentkeys.HeaderRequestID) == "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	head := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != "head;" {
		t.Fatalf("head = %q %v", head, err)
	}
	close(release)
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "tail" {
		t.Fatalf("tail = %q %v", rest, err)
	}
	got := up.last(t)
	if got.Method != "POST" || got.URL.RawQuery != "y=1" || string(got.Body) != "hello" {
		t.Fatalf("upstream got %s %s %q", got.Method, got.URL, got.Body)
	}
	wantValues(t, got.Header, "Authorization", "Bearer v")
	wantValues(t, got.Header, "Content-Type", "text/plain")
	row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
	if row.Decision != agentkeys.DecisionAllowed || row.Status != 202 || row.BytesOut != 9 || row.BytesIn != 5 {
		t.Fatalf("audit row = %+v", row)
	}
}

func TestDo_OwnerAuthority(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	b.addCredential(t, "GitHub", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "ghp_1"})
	h := proxy.New(b, proxy.Config{})

	resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{CredentialName: "github", URL: up.URL + "/user"})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	wantValues(t, up.last(t).Header, "Authorization", "Bearer ghp_1")

	// The owner path is not reachable over HTTP, whatever headers say.
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, hdr := range []http.Header{
		{agentkeys.HeaderCredentialName: {"GitHub"}, agentkeys.HeaderTargetURL: {up.URL}},
		{agentkeys.HeaderCredentialName: {"GitHub"}, agentkeys.HeaderTargetURL: {up.URL}, "Authorization": {"Bearer "}},
		{agentkeys.HeaderCredentialName: {"GitHub"}, agentkeys.HeaderTargetURL: {up.URL}, "Authorization": {"Bearer owner"}},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/proxy", nil)
		req.Header = hdr
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wantProxyError(t, resp, 401, agentkeys.EUNAUTHORIZED)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

func TestDo_Errors(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
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
	up := newUpstream(t, nil)
	b := newMemBackend()
	c := b.addCredential(t, "Main", agentkeys.QueryParam, []string{up.hostPort(), closedAddr, slow.hostPort()}, agentkeys.Secret{Param: "key", Value: "qsecret"})
	tok := b.assign(c, "a")
	h := proxy.New(b, proxy.Config{ResponseHeaderTimeout: 100 * time.Millisecond})

	tests := []struct {
		name string
		req  agentkeys.ProxyRequest
		code string
	}{
		{"BadToken", agentkeys.ProxyRequest{Token: "pxr_nope_nope_nope_nope_nope_nope", URL: up.URL}, agentkeys.EUNAUTHORIZED},
		{"UnknownName", agentkeys.ProxyRequest{CredentialName: "Nope", URL: up.URL}, agentkeys.ENOTFOUND},
		{"NoName", agentkeys.ProxyRequest{URL: up.URL}, agentkeys.EINVALID},
		{"ControlCharacter", agentkeys.ProxyRequest{Token: tok, URL: up.URL + "/a\x00b"}, agentkeys.EINVALID},
		{"NewlineInURL", agentkeys.ProxyRequest{Token: tok, URL: up.URL + "/a\r\nX-Injected: 1"}, agentkeys.EINVALID},
		{"BadMethod", agentkeys.ProxyRequest{Token: tok, Method: "GET /evil", URL: up.URL}, agentkeys.EINVALID},
		{"BadHeaderName", agentkeys.ProxyRequest{Token: tok, URL: up.URL, Header: http.Header{"Bad Name": {"1"}}}, agentkeys.EINVALID},
		{"NewlineInHeaderValue", agentkeys.ProxyRequest{Token: tok, URL: up.URL, Header: http.Header{"X-A": {"1\r\nX-Injected: 1"}}}, agentkeys.EINVALID},
		{"Destination", agentkeys.ProxyRequest{Token: tok, URL: "https://evil.example/"}, agentkeys.EDESTINATION},
		{"Refused", agentkeys.ProxyRequest{Token: tok, URL: "http://" + closedAddr + "/"}, agentkeys.EUPSTREAM},
		{"Timeout", agentkeys.ProxyRequest{Token: tok, URL: slow.URL}, agentkeys.ETIMEOUT},
		{"TooLarge", agentkeys.ProxyRequest{Token: tok, Method: "POST", URL: up.URL, Body: strings.NewReader(strings.Repeat("x", proxy.DefaultMaxBodyBytes+1))}, agentkeys.ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Do(context.Background(), &tt.req)
			var e *agentkeys.Error
			if !errors.As(err, &e) || e.Code != tt.code || e.Message == "" {
				if resp != nil {
					resp.Body.Close()
				}
				t.Fatalf("Do = %v, %v; want *agentkeys.Error %s", resp, err, tt.code)
			}
			if strings.Contains(e.Message, "qsecret") {
				t.Fatalf("error message holds the secret: %s", e.Message)
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
}

func TestDo_ContextCancelled(t *testing.T) {
	started := make(chan struct{}, 2)
	cancelled := make(chan struct{}, 2)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		started <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(b, proxy.Config{})

	t.Run("BeforeHeaders", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		resp, err := h.Do(ctx, &agentkeys.ProxyRequest{Token: tok, URL: up.URL + "/wait"})
		if !errors.Is(err, context.Canceled) || resp != nil {
			t.Fatalf("Do = %v, %v; want context.Canceled", resp, err)
		}
		// Do has returned: the outcome is already recorded (the caller may
		// close the vault next, as `agentkeys proxy` does on Ctrl-C).
		rows := b.auditRows()
		if len(rows) == 0 || rows[len(rows)-1].Decision == agentkeys.DecisionPending {
			t.Fatalf("audit row still pending when Do returned: %+v", rows)
		}
		waitFor(t, cancelled, "upstream request cancelled")
	})
	t.Run("MidStream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := h.Do(ctx, &agentkeys.ProxyRequest{Token: tok, URL: up.URL + "/stream"})
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		<-started
		cancel()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("body read ended cleanly after cancellation")
		}
		resp.Body.Close()
		waitFor(t, cancelled, "upstream request cancelled")
		// The caller stopped reading; the upstream did not fail (see
		// TestProxy_AgentStopsReading).
		row := b.rowByRequestID(t, resp.Header.Get(agentkeys.HeaderRequestID))
		if row.Decision != agentkeys.DecisionAllowed || row.Code != "" || row.BytesOut < 5 {
			t.Fatalf("audit row = %+v", row)
		}
	})
}

func TestDo_BodyCloseStopsUpstream(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.WriteString(w, strings.Repeat("x", 1024)); err != nil {
				cancelled <- struct{}{}
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
				return
			default:
			}
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(b, proxy.Config{})
	resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, URL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 4096))
	resp.Body.Close()
	waitFor(t, cancelled, "endless upstream stopped after Body.Close")
}

func TestDo_StreamsRequestBody(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(b, proxy.Config{})
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 4; i++ {
			io.WriteString(pw, "part;")
		}
		pw.Close()
	}()
	resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, Method: "PUT", URL: up.URL, Body: pr})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if body := string(up.last(t).Body); body != "part;part;part;part;" {
		t.Fatalf("upstream body = %q", body)
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for: %s", what)
	}
}

func TestLoopbackOnly(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "passed") })
	h := proxy.LoopbackOnly(next)
	tests := []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{"localhost.:8080", true},
		{"127.0.0.1", true},
		{"127.0.0.1:49152", true},
		{"127.8.9.10:1", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"", false},
		{"evil.com", false},
		{"evil.com:8080", false},
		{"localhost.evil.com", false},
		{"evil.localhost", false},
		{"127.0.0.1.nip.io:8080", false},
		{"127.1:8080", false},
		{"2130706433", false},
		{"0x7f.0.0.1", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"[::ffff:127.0.0.1]:8080", false},
		{"[fe80::1%25lo]:8080", false},
		{"192.168.1.10:8080", false},
		{"localhost:80x", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/proxy", nil)
			req.Host = tt.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.ok {
				if rec.Code != 200 || rec.Body.String() != "passed" {
					t.Fatalf("refused: %d %s", rec.Code, rec.Body)
				}
				return
			}
			wantProxyError(t, rec.Result(), http.StatusForbidden, agentkeys.EFORBIDDEN)
		})
	}
}

type panickyBackend struct{ *memBackend }

func (panickyBackend) Authorize(context.Context, string, string) (*agentkeys.Route, error) {
	panic("store bug")
}

func TestDo_PanicBecomesInternalError(t *testing.T) {
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{"api.example.com"}, agentkeys.Secret{Value: "v"}), "a")
	h := proxy.New(panickyBackend{b}, proxy.Config{})
	resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, URL: "https://api.example.com/"})
	if agentkeys.ErrorCode(err) != agentkeys.EINTERNAL || resp != nil {
		t.Fatalf("Do = %v, %v; want EINTERNAL", resp, err)
	}
}
