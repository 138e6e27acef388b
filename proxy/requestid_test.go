package proxy_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestProxy_RequestIDAfterInformationalResponse checks that the final answer
// carries X-Agentkeys-Request-Id (exactly once, equal to the audit row's)
// when the upstream sent a 1xx first. ReverseProxy passes a 1xx on to the
// agent and then clears the response header map, which took the request id
// set before forwarding with it.
func TestProxy_RequestIDAfterInformationalResponse(t *testing.T) {
	tests := []struct {
		name   string
		h      http.HandlerFunc
		header http.Header
		body   string
		status int
		code   string // X-Agentkeys-Error of a proxy-made answer
	}{
		{
			name: "EarlyHints",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				io.WriteString(w, "final")
			},
			status: http.StatusOK,
		},
		{
			// The agent's Expect reaches the upstream, whose Go server
			// answers 100 Continue when the handler reads the body.
			name:   "ExpectContinue",
			header: http.Header{"Expect": {"100-continue"}},
			body:   strings.Repeat("b", 4096),
			status: http.StatusOK,
		},
		{
			// A proxy-made error after a 1xx: the upstream hangs up.
			name: "ErrorAfterEarlyHints",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints) // written at once; no Flush, which would send a 200
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			status: http.StatusBadGateway,
			code:   agentkeys.EUPSTREAM,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, tt.h)
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
			p := newTestProxy(t, b, proxy.Config{})

			method, hdr := http.MethodGet, tt.header.Clone()
			if tt.body != "" {
				method = http.MethodPost
			}
			if hdr == nil {
				hdr = http.Header{}
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp := p.do(t, call{Method: method, Token: tok, Target: up.URL + "/x", Header: hdr, Body: body})
			readAll(t, resp)
			if resp.StatusCode != tt.status || resp.Header.Get(agentkeys.HeaderError) != tt.code {
				t.Fatalf("got %d %v, want %d %q", resp.StatusCode, resp.Header, tt.status, tt.code)
			}
			ids := resp.Header.Values(agentkeys.HeaderRequestID)
			if len(ids) != 1 {
				t.Fatalf("%s = %q, want exactly one (header %v)", agentkeys.HeaderRequestID, ids, resp.Header)
			}
			if row := b.rowByRequestID(t, ids[0]); row.Status != tt.status {
				t.Errorf("audit row status %d, want %d", row.Status, tt.status)
			}

			// The same through Do (its 1xx answers are not passed on).
			if tt.code != "" {
				return // Do returns proxy-made errors as *agentkeys.Error
			}
			req := &agentkeys.ProxyRequest{Token: tok, URL: up.URL + "/x", Method: method, Header: tt.header.Clone()}
			if tt.body != "" {
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			dr, err := p.H.Do(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, dr.Body)
			dr.Body.Close()
			if ids := dr.Header.Values(agentkeys.HeaderRequestID); len(ids) != 1 {
				t.Errorf("Do: %s = %q, want exactly one (header %v)", agentkeys.HeaderRequestID, ids, dr.Header)
			} else if row := b.rowByRequestID(t, ids[0]); row.Status != tt.status {
				t.Errorf("Do: audit row status %d, want %d", row.Status, tt.status)
			}
		})
	}
}
