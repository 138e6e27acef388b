package proxy_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestProxy_TransportErrorMapping feeds the handler the errors a transport
// returns and checks status, code and that no error text (which can hold
// the outbound URL, query-parameter secret included) reaches the agent.
func TestProxy_TransportErrorMapping(t *testing.T) {
	const secret = "qp-secret-value"
	withURL := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://api.example.com/x?key=" + secret, Err: err}
	}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		words  string
	}{
		{"DialTimeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, 504, agentkeys.ETIMEOUT, "did not answer in time"},
		{"ContextDeadline", withURL(context.DeadlineExceeded), 504, agentkeys.ETIMEOUT, "did not answer in time"},
		{"URLErrorTimeout", withURL(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), 504, agentkeys.ETIMEOUT, "timed out"},
		{"Refused", withURL(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), 502, agentkeys.EUPSTREAM, "connection refused"},
		{"Reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 502, agentkeys.EUPSTREAM, "connection reset"},
		{"DNS", withURL(&net.DNSError{Err: "no such host", Name: "api.example.com", IsNotFound: true}), 502, agentkeys.EUPSTREAM, "host name not found"},
		{"UntrustedCert", withURL(x509.UnknownAuthorityError{}), 502, agentkeys.EUPSTREAM, "TLS certificate not trusted"},
		{"WrongHostCert", x509.HostnameError{Host: "api.example.com"}, 502, agentkeys.EUPSTREAM, "TLS certificate not trusted"},
		{"Other", withURL(errors.New("something odd " + secret)), 502, agentkeys.EUPSTREAM, "request failed"},
		{"ForbiddenAddress", withURL(&net.OpError{Op: "dial", Err: &proxy.AddressError{Addr: netip.MustParseAddr("169.254.169.254"), Reason: "link-local"}}), 403, agentkeys.EDESTINATION, "link-local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", agentkeys.QueryParam, []string{"api.example.com"}, agentkeys.Secret{Param: "key", Value: secret}), "a")
			p := newTestProxy(t, b, proxy.Config{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Query().Get("key") != secret {
					t.Errorf("transport got %q without the injected key", r.URL.RawQuery)
				}
				return nil, tt.err
			})})
			resp := p.do(t, call{Token: tok, Target: "https://api.example.com/x?key=agents"})
			reqID := resp.Header.Get(agentkeys.HeaderRequestID)
			e := wantProxyError(t, resp, tt.status, tt.code)
			if !strings.Contains(e.Error, tt.words) || !strings.Contains(e.Error, "api.example.com") {
				t.Errorf("message %q does not say %q about api.example.com", e.Error, tt.words)
			}
			if strings.Contains(e.Error, secret) || strings.Contains(p.Logs.String(), secret) {
				t.Fatalf("secret leaked: message %q, logs %s", e.Error, p.Logs.String())
			}
			if row := b.rowByRequestID(t, reqID); row.Status != tt.status || row.Code != tt.code {
				t.Fatalf("audit row = %+v", row)
			}
		})
	}
}

func TestProxy_BackendFailures(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})

	b.mu.Lock()
	b.failOpen = errors.New("sqlite: disk I/O error at /home/secret/path")
	b.mu.Unlock()
	resp := p.do(t, call{Token: tok, Target: up.URL})
	reqID := resp.Header.Get(agentkeys.HeaderRequestID)
	e := wantProxyError(t, resp, http.StatusInternalServerError, agentkeys.EINTERNAL)
	if strings.Contains(e.Error, "sqlite") {
		t.Fatalf("internal error text reached the agent: %q", e.Error)
	}
	if row := b.rowByRequestID(t, reqID); row.Decision != agentkeys.DecisionDenied || row.Status != 500 {
		t.Fatalf("audit row = %+v", row)
	}

	b.mu.Lock()
	b.failOpen = agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is locked")
	b.mu.Unlock()
	wantProxyError(t, p.do(t, call{Token: tok, Target: up.URL}), http.StatusServiceUnavailable, agentkeys.EUNAVAILABLE)
	if up.conns.Load() != 0 {
		t.Fatalf("%d upstream connections without a secret", up.conns.Load())
	}
}
