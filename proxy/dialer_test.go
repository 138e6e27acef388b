package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"golang.org/x/net/dns/dnsmessage"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr          string
		ok            bool
		okWithLoopbck bool
	}{
		{"93.184.215.14", true, true},
		{"8.8.8.8", true, true},
		{"2606:4700::1111", true, true},
		{"127.0.0.1", false, true},
		{"127.255.255.254", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.1.2.3", false, false},
		{"172.16.0.1", false, false},
		{"172.31.255.255", false, false},
		{"192.168.0.1", false, false},
		{"169.254.169.254", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.255", false, false},
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"224.0.0.1", false, false},
		{"239.255.255.250", false, false},
		{"255.255.255.255", false, false},
		{"240.0.0.1", false, false},
		{"::", false, false},
		{"fe80::1", false, false},
		{"fe80::1%eth0", false, false},
		{"fc00::1", false, false},
		{"fd12:3456::1", false, false},
		{"ff02::1", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"::ffff:8.8.8.8", true, true},
		{"::127.0.0.1", false, false},                          // IPv4-compatible
		{"64:ff9b::7f00:1", false, false},                      // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false, false},                   // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", true, true},                       // NAT64 of 8.8.8.8
		{"2002:7f00:1::", false, false},                        // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", false, false},                     // 6to4 of 192.168.1.1
		{"2002:808:808::1", true, true},                        // 6to4 of 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false, false}, // Teredo, client 127.0.0.1
		{"2001:0:7f00:1::1", false, false},                     // Teredo, server 127.0.0.1
		{"2001:0:808:808:0:0:f7f7:f7f7", true, true},           // Teredo, public server and client 8.8.8.8
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			err := proxy.CheckAddr(ip, false)
			if (err == nil) != tt.ok {
				t.Errorf("CheckAddr(%s, false) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
			if err != nil && !errors.Is(err, proxy.ErrForbiddenAddress) {
				t.Errorf("error %v does not match ErrForbiddenAddress", err)
			}
			if err := proxy.CheckAddr(ip, true); (err == nil) != tt.okWithLoopbck {
				t.Errorf("CheckAddr(%s, true) = %v, want ok=%v", tt.addr, err, tt.okWithLoopbck)
			}
		})
	}
}

// fakeDNS answers A queries for every name with the next address of a
// script (repeating the last), and AAAA queries with no records.
type fakeDNS struct {
	mu      sync.Mutex
	answers []netip.Addr
	asked   int
	conn    net.PacketConn
}

func newFakeDNS(t *testing.T, answers ...string) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: pc}
	for _, a := range answers {
		d.answers = append(d.answers, netip.MustParseAddr(a))
	}
	t.Cleanup(func() { pc.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true})
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if q.Type == dnsmessage.TypeA {
			d.mu.Lock()
			a := d.answers[min(d.asked, len(d.answers)-1)]
			d.asked++
			d.mu.Unlock()
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: a.As4()})
		}
		msg, err := b.Finish()
		if err != nil {
			continue
		}
		d.conn.WriteTo(msg, addr)
	}
}

func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestSafeDialer_DNSRebinding: a name answers a public address to a check
// made before dialling, then 127.0.0.1 when the dialer resolves it. The
// connect-time check refuses the second answer; nothing connects.
func TestSafeDialer_DNSRebinding(t *testing.T) {
	up := newUpstream(t, nil)
	_, port, _ := net.SplitHostPort(up.hostPort())
	dns := newFakeDNS(t, "93.184.215.14", "127.0.0.1")
	res := dns.resolver()

	// A naive pre-check sees a public address and would let it through.
	addrs, err := res.LookupNetIP(context.Background(), "ip4", "rebind.test.")
	if err != nil || len(addrs) != 1 || proxy.CheckAddr(addrs[0], false) != nil {
		t.Fatalf("first lookup = %v, %v", addrs, err)
	}
	d := proxy.SafeDialer(2*time.Second, false)
	d.Resolver = res
	conn, err := d.DialContext(context.Background(), "tcp4", net.JoinHostPort("rebind.test.", port))
	if err == nil {
		conn.Close()
		t.Fatal("dialled a name that rebound to 127.0.0.1")
	}
	var ae *proxy.AddressError
	if !errors.As(err, &ae) || ae.Addr != netip.MustParseAddr("127.0.0.1") || ae.Reason != "loopback" {
		t.Fatalf("error = %v, want an AddressError for 127.0.0.1 loopback", err)
	}
	if up.conns.Load() != 0 {
		t.Fatalf("%d connections reached the loopback server", up.conns.Load())
	}
	// With loopback allowed explicitly, the same dial connects.
	d = proxy.SafeDialer(2*time.Second, true)
	d.Resolver = res
	conn, err = d.DialContext(context.Background(), "tcp4", net.JoinHostPort("rebind.test.", port))
	if err != nil {
		t.Fatalf("with loopback allowed: %v", err)
	}
	conn.Close()
}

func TestSafeDialer_OddSpellings(t *testing.T) {
	up := newUpstream(t, nil)
	_, port, _ := net.SplitHostPort(up.hostPort())
	d := proxy.SafeDialer(time.Second, false)
	// Names that are not IP literals go to a fake DNS server (never the
	// network's) that answers 127.0.0.1, as getaddrinfo would for "127.1".
	d.Resolver = newFakeDNS(t, "127.0.0.1").resolver()
	for _, host := range []string{"127.0.0.1", "127.1", "0x7f.1", "2130706433", "::ffff:7f00:1", "::1", "0.0.0.0", "localhost"} {
		t.Run(host, func(t *testing.T) {
			conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort(host, port))
			if err == nil {
				conn.Close()
				t.Fatalf("dialled %s", host)
			}
			// Go's resolver itself refuses all-numeric names ("127.1") as
			// not found; everything else is refused at connect time.
			var dnsErr *net.DNSError
			if !errors.Is(err, proxy.ErrForbiddenAddress) && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
				t.Fatalf("error = %v", err)
			}
		})
	}
	if up.conns.Load() != 0 {
		t.Fatalf("%d connections reached the loopback server", up.conns.Load())
	}
}

// TestHostedTransport_RefusesLoopbackTargets: with the hosted-mode dialer a
// loopback target on the allowlist is still refused, with 403 and no
// connection; with loopback allowed explicitly it works.
func TestHostedTransport_RefusesLoopbackTargets(t *testing.T) {
	up := newUpstream(t, nil)
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")

	hosted := newTestProxy(t, b, proxy.Config{Transport: proxy.NewTransport(proxy.TransportConfig{BlockPrivate: true})})
	reqID := ""
	{
		resp := hosted.do(t, call{Token: tok, Target: up.URL + "/internal"})
		reqID = resp.Header.Get(agentkeys.HeaderRequestID)
		e := wantProxyError(t, resp, http.StatusForbidden, agentkeys.EDESTINATION)
		if !strings.Contains(e.Error, "loopback") {
			t.Errorf("message %q does not say why", e.Error)
		}
	}
	if up.conns.Load() != 0 {
		t.Fatalf("%d connections reached the loopback upstream", up.conns.Load())
	}
	if row := b.rowByRequestID(t, reqID); row.Decision != agentkeys.DecisionDenied || row.Code != agentkeys.EDESTINATION {
		t.Fatalf("audit row = %+v", row)
	}

	dev := newTestProxy(t, b, proxy.Config{Transport: proxy.NewTransport(proxy.TransportConfig{BlockPrivate: true, AllowLoopback: true})})
	resp := dev.do(t, call{Token: tok, Target: up.URL + "/internal"})
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("with loopback allowed: %d %s", resp.StatusCode, body)
	}
}

// TestTransport_Refuse: the Refuse hook is asked before connecting, so a
// refused address (the hosted server's own, say) gets 403 and no connection.
func TestTransport_Refuse(t *testing.T) {
	up := newUpstream(t, nil)
	self := netip.MustParseAddrPort(up.hostPort())
	var asked []netip.AddrPort
	tr := proxy.NewTransport(proxy.TransportConfig{BlockPrivate: true, AllowLoopback: true, Refuse: func(ap netip.AddrPort) error {
		asked = append(asked, ap)
		if ap == self {
			return &proxy.AddressError{Addr: ap.Addr(), Reason: "this server's own address"}
		}
		return nil
	}})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{Transport: tr})
	e := wantProxyError(t, p.do(t, call{Token: tok, Target: up.URL}), http.StatusForbidden, agentkeys.EDESTINATION)
	if !strings.Contains(e.Error, "own address") || up.conns.Load() != 0 || len(asked) != 1 || asked[0] != self {
		t.Fatalf("message %q, %d connections, asked %v", e.Error, up.conns.Load(), asked)
	}
}
