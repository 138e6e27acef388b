package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestTransport_LocalhostNamesSkipDNS: names under .localhost reach
// 127.0.0.1 without asking DNS (RFC 6761), even when DNS would answer a
// public address for them: the secret sent over plain http stays on this
// machine.
func TestTransport_LocalhostNamesSkipDNS(t *testing.T) {
	up := newUpstream(t, nil)
	_, port, _ := net.SplitHostPort(up.hostPort())
	dns := newFakeDNS(t, "192.0.2.1") // what a hostile resolver says
	for _, name := range []string{"myapp.localhost", "a.b.localhost", "MyApp.LocalHost.", "localhost"} {
		t.Run(name, func(t *testing.T) {
			b := newMemBackend()
			host := strings.TrimSuffix(strings.ToLower(name), ".") + ":" + port
			tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{host}, agentkeys.Secret{Value: "sk_LOCAL_1"}), "a")
			p := newTestProxy(t, b, proxy.Config{Transport: proxy.NewTransport(proxy.TransportConfig{Resolver: dns.resolver(), DialTimeout: 2 * time.Second})})
			resp := p.do(t, call{Token: tok, Target: "http://" + name + ":" + port + "/x"})
			if body := readAll(t, resp); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if got := up.last(t).Header.Get("Authorization"); got != "Bearer sk_LOCAL_1" {
				t.Fatalf("upstream got %q", got)
			}
		})
	}
	dns.mu.Lock()
	defer dns.mu.Unlock()
	if dns.asked != 0 {
		t.Fatalf("DNS was asked %d times for .localhost names", dns.asked)
	}
}

// TestTransport_PlainHTTPOnlyToLoopback: a plain-http request may only be
// connected to a loopback address, whatever the name resolved to; the check
// is made on the address dialled, before connecting.
func TestTransport_PlainHTTPOnlyToLoopback(t *testing.T) {
	up := newUpstream(t, nil)
	_, port, _ := net.SplitHostPort(up.hostPort())
	for _, tt := range []struct {
		answer string
		host   string
		ok     bool
	}{
		{"192.0.2.1", "rebind.test", false},  // a name resolving to a public address
		{"10.1.2.3", "rebind.test", false},   // or a private one
		{"127.0.0.1", "rebind.test", true},   // loopback: fine
		{"127.0.0.1", "198.51.100.7", false}, // an IP literal that is not loopback
		{"127.0.0.1", "[::ffff:198.51.100.7]", false},
		{"127.0.0.1", "127.0.0.1", true},
	} {
		t.Run(tt.answer+"/"+tt.host, func(t *testing.T) {
			tr := proxy.NewTransport(proxy.TransportConfig{Resolver: newFakeDNS(t, tt.answer).resolver(), DialTimeout: 2 * time.Second})
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(proxy.WithPlainHTTP(context.Background()), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+tt.host+":"+port+"/", nil)
			resp, err := tr.RoundTrip(req)
			if tt.ok {
				if err != nil {
					t.Fatalf("loopback refused: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("plain http sent to a non-loopback address")
			}
			var ae *proxy.AddressError
			if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "plain http") {
				t.Fatalf("error = %v, want an AddressError about plain http", err)
			}
		})
	}
}
