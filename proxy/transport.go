package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// TransportConfig tunes the outbound transport. Zero fields take the
// defaults documented on each.
type TransportConfig struct {
	DialTimeout           time.Duration // default 10s
	TLSHandshakeTimeout   time.Duration // default 10s
	ResponseHeaderTimeout time.Duration // default 60s; there is no overall timeout (streams may be long)
	IdleConnTimeout       time.Duration // default 90s
	// MaxIdleConnsPerHost is how many keep-alive connections to one upstream
	// are kept (default 512). Go's default of 2 costs 2.6× the CPU per request
	// under load (NOTES.md).
	MaxIdleConnsPerHost int
	// TLSClientConfig supplies RootCAs and the like. Certificate verification
	// is always on: InsecureSkipVerify is forced off.
	TLSClientConfig *tls.Config
	// BlockPrivate dials through SafeDialer: loopback, private, link-local,
	// CGNAT and other special addresses are refused at connect time (hosted
	// mode). AllowLoopback then lets loopback addresses through (development
	// and tests only).
	BlockPrivate  bool
	AllowLoopback bool
	// Refuse, when set, is asked about every address just before the
	// connection is made (after the BlockPrivate checks, also without them);
	// a non-nil error refuses it — return an *AddressError so the agent gets
	// 403 DESTINATION_NOT_ALLOWED. The hosted server refuses its own listening
	// address this way.
	Refuse func(netip.AddrPort) error
	// Resolver resolves host names when dialing (nil: the default resolver).
	Resolver *net.Resolver
}

// NewTransport returns an http.Transport tuned for a keep-alive reverse
// proxy: many idle connections per host, HTTP/2 when the upstream offers it,
// no proxy from the environment (an inherited HTTPS_PROXY would hide the real
// destination), TLS verification on, no transparent compression (bodies pass
// through as the upstream sent them), dial/TLS/response-header timeouts and no
// overall timeout.
func NewTransport(cfg TransportConfig) *http.Transport {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.TLSHandshakeTimeout <= 0 {
		cfg.TLSHandshakeTimeout = 10 * time.Second
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 60 * time.Second
	}
	if cfg.IdleConnTimeout <= 0 {
		cfg.IdleConnTimeout = 90 * time.Second
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = 512
	}
	var tlsConf *tls.Config
	if cfg.TLSClientConfig != nil {
		tlsConf = cfg.TLSClientConfig.Clone()
	} else {
		tlsConf = &tls.Config{}
	}
	tlsConf.InsecureSkipVerify = false
	if tlsConf.MinVersion == 0 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	var dialer *net.Dialer
	if cfg.BlockPrivate {
		dialer = SafeDialer(cfg.DialTimeout, cfg.AllowLoopback)
	} else {
		dialer = &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	}
	dialer.Resolver = cfg.Resolver
	if refuse := cfg.Refuse; refuse != nil {
		check := dialer.ControlContext
		dialer.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if check != nil {
				if err := check(ctx, network, address, c); err != nil {
					return err
				}
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &AddressError{Reason: "unparsable"}
			}
			return refuse(netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()))
		}
	}
	guardPlainHTTP(dialer)
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            localhostDial(dialer.DialContext),
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout:  1 * time.Second,
		IdleConnTimeout:        cfg.IdleConnTimeout,
		MaxIdleConns:           0, // no global cap; the per-host cap bounds it
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// plainHTTPKey marks, in a request's context, an upstream request sent as
// plain http: its connection may only be made to a loopback address.
type plainHTTPKey struct{}

// withPlainHTTP marks ctx for a plain-http upstream request.
func withPlainHTTP(ctx context.Context) context.Context {
	return context.WithValue(ctx, plainHTTPKey{}, true)
}

// guardPlainHTTP makes d refuse, just before connecting, any address that
// is not loopback when the dial is for a plain-http request (the
// allowlist's check of the name is not enough: a name may resolve
// anywhere). The check runs on the address actually dialled.
func guardPlainHTTP(d *net.Dialer) {
	check := d.ControlContext
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if plain, _ := ctx.Value(plainHTTPKey{}).(bool); plain {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &AddressError{Reason: "unparsable"}
			}
			if !ap.Addr().Unmap().IsLoopback() {
				return &AddressError{Addr: ap.Addr(), Reason: "not loopback, and plain http is sent only to loopback addresses (use https)"}
			}
		}
		if check != nil {
			return check(ctx, network, address, c)
		}
		return nil
	}
}

// localhostDial connects "localhost" and names under .localhost to the
// loopback address without asking DNS (RFC 6761 §6.3): a resolver could
// answer anything for them, and the allowlist treats them as loopback.
// 127.0.0.1 is tried first, then ::1.
func localhostDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !isLocalhostName(host) {
			return dial(ctx, network, addr)
		}
		c, err := dial(ctx, network, net.JoinHostPort("127.0.0.1", port))
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrForbiddenAddress) {
			return c, err
		}
		if c6, err6 := dial(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
			return c6, nil
		}
		return nil, err
	}
}

// isLocalhostName reports whether host is "localhost" or a name below it.
func isLocalhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// ErrForbiddenAddress is matched (errors.Is) by the error SafeDialer returns
// when it refuses an address; the proxy answers 403 DESTINATION_NOT_ALLOWED.
var ErrForbiddenAddress = errors.New("destination address not allowed")

// AddressError says which address SafeDialer refused and why.
type AddressError struct {
	Addr   netip.Addr
	Reason string // "loopback", "private", "link-local", …
}

// Error implements error.
func (e *AddressError) Error() string {
	return fmt.Sprintf("destination address %s is %s: refused", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *AddressError) Is(target error) bool { return target == ErrForbiddenAddress }

// SafeDialer returns a dialer that checks, at connect time, the address
// each connection is actually made to (after DNS resolution, so a name that
// resolves to a public address once and to 127.0.0.1 the next time is still
// caught) and refuses every address CheckAddr refuses.
func SafeDialer(timeout time.Duration, allowLoopback bool) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, network, address string, _ syscall.RawConn) error {
			switch network {
			case "tcp", "tcp4", "tcp6":
			default:
				return &AddressError{Reason: "not TCP (" + network + ")"}
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &AddressError{Reason: "unparsable"}
			}
			return CheckAddr(ap.Addr(), allowLoopback)
		},
	}
}

// Special-purpose IPv4 ranges refused by CheckAddr, with the reason given.
var blockedV4 = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "in 0.0.0.0/8 (this network)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
}

var blockedV6 = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
	v4compat   = netip.MustParsePrefix("::/96")
)

// CheckAddr returns an *AddressError (matching ErrForbiddenAddress) when ip
// is not a public unicast address: loopback (unless allowLoopback), RFC 1918,
// link-local (169.254.0.0/16 — cloud metadata — and fe80::/10), CGNAT
// 100.64.0.0/10, 0.0.0.0/8, ::, unique-local fc00::/7, multicast, broadcast
// and reserved ranges, and IPv6 forms that embed such an IPv4 address
// (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96,
// 6to4 2002::/16, Teredo 2001::/32).
func CheckAddr(ip netip.Addr, allowLoopback bool) error {
	if !ip.IsValid() {
		return &AddressError{Addr: ip, Reason: "invalid"}
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		return checkV4(ip, ip.Unmap(), allowLoopback)
	}
	if ip.Is4() {
		return checkV4(ip, ip, allowLoopback)
	}
	for _, b := range blockedV6 {
		if b.p.Contains(ip) {
			if b.reason == "loopback" && allowLoopback {
				return nil
			}
			return &AddressError{Addr: ip, Reason: b.reason}
		}
	}
	a := ip.As16()
	switch {
	case nat64.Contains(ip), v4compat.Contains(ip):
		return checkV4(ip, netip.AddrFrom4([4]byte(a[12:16])), allowLoopback)
	case nat64Local.Contains(ip):
		return &AddressError{Addr: ip, Reason: "local-use NAT64"}
	case sixToFour.Contains(ip):
		return checkV4(ip, netip.AddrFrom4([4]byte(a[2:6])), allowLoopback)
	case teredo.Contains(ip):
		// Teredo carries the server's IPv4 address in bits 32–63 and the
		// client's, inverted, in the last 32 bits.
		if err := checkV4(ip, netip.AddrFrom4([4]byte(a[4:8])), false); err != nil {
			return err
		}
		return checkV4(ip, netip.AddrFrom4([4]byte{^a[12], ^a[13], ^a[14], ^a[15]}), false)
	}
	return nil
}

// checkV4 checks the IPv4 address v4, reporting orig (the address dialled,
// which may be an IPv6 form embedding v4) in the error.
func checkV4(orig, v4 netip.Addr, allowLoopback bool) error {
	for _, b := range blockedV4 {
		if b.p.Contains(v4) {
			// An allowed loopback must really be loopback: 127.x or its
			// IPv4-mapped form, not a NAT64/6to4 address that routes elsewhere.
			if b.reason == "loopback" && allowLoopback && (orig == v4 || orig.Is4In6()) {
				return nil
			}
			reason := b.reason
			if orig != v4 {
				reason += " (embedded in " + orig.String() + ")"
			}
			return &AddressError{Addr: orig, Reason: reason}
		}
	}
	return nil
}
