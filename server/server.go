// Package server is `agentkeys serve`: the REST API under /api/v1 (the
// seed's "API Reference": credentials, agents, assignments, workspace status,
// audit log, sign-up), the hosted /v1/proxy (the proxy package's handler
// over the store, dialling through the SSRF-safe transport), /healthz and
// /readyz, on a store.Store (SQLite or PostgreSQL).
//
// Every API request but sign-up, the OpenAPI document and the health checks
// carries Authorization: Bearer ak_ws_…, which selects the workspace every
// call is scoped to. Errors are JSON {"error","code","status"} with the
// X-Agentkeys-Error header; bodies are capped, unknown or read-only JSON
// fields refused.
package server

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/store"
)

// Sign-up modes.
const (
	SignupOpen   = "open"
	SignupClosed = "closed"
)

// DefaultMaxBodyBytes caps API request bodies when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Config configures a Server. Zero fields take the defaults documented on
// each.
type Config struct {
	Store *store.Store
	// Signup is SignupOpen (default) or SignupClosed (POST /api/v1/signup
	// answers 403; `serve create-workspace` still works).
	Signup string
	// AllowLoopbackTargets lets the hosted proxy reach loopback addresses
	// (development and tests only). Private, link-local and other special
	// addresses stay refused, and so does the server's own address.
	AllowLoopbackTargets bool
	// Transport replaces the hosted proxy's outbound transport (benchmarks).
	// nil: proxy.NewTransport with BlockPrivate, plus the own-address check.
	Transport http.RoundTripper
	// MaxBodyBytes caps API request bodies (default 1 MiB);
	// ProxyMaxBodyBytes caps proxied bodies (default proxy.DefaultMaxBodyBytes).
	MaxBodyBytes      int64
	ProxyMaxBodyBytes int64
	// BehindProxy trusts X-Forwarded-Proto and X-Forwarded-Host when telling
	// clients the server's URL.
	BehindProxy bool
	// Logger gets structured logs with a request id on every line and never
	// a secret. nil: discard.
	Logger *slog.Logger
	Now    func() time.Time
	// Billing, when set, turns on the billing endpoints (billing.go).
	Billing *BillingConfig
}

// Server is the HTTP side of `agentkeys serve`. It is safe for concurrent
// use.
type Server struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	proxy   *proxy.Handler
	handler http.Handler
	signups chan struct{}  // bounds concurrent argon2id hashing
	stripe  *stripe.Client // nil: billing off

	self atomic.Pointer[selfAddrs] // set by Serve once listening
}

// New returns a Server over cfg.Store. Returns EINVALID for a bad Signup
// mode or a missing store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "server: no store")
	}
	switch cfg.Signup {
	case "":
		cfg.Signup = SignupOpen
	case SignupOpen, SignupClosed:
	default:
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--signup must be open or closed (got %q)", cfg.Signup)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := slog.New(WithRequestID(cfg.Logger.Handler()))
	s := &Server{cfg: cfg, store: cfg.Store, log: log, signups: make(chan struct{}, 2)}
	if cfg.Billing != nil {
		if err := checkBilling(cfg.Billing); err != nil {
			return nil, err
		}
		s.stripe = newStripe(cfg.Billing)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = s.outboundTransport()
	}
	s.proxy = proxy.New(cfg.Store, proxy.Config{Transport: tr, Logger: log, Now: cfg.Now, MaxBodyBytes: cfg.ProxyMaxBodyBytes})
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's whole HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// outboundTransport is the proxy package's SSRF-safe transport (loopback,
// private, link-local, CGNAT and other special addresses refused at
// connect time; no proxy from the environment), with one more refusal made
// before connecting: this server's own listening address, so the hosted
// proxy cannot be pointed at itself.
func (s *Server) outboundTransport() *http.Transport {
	return proxy.NewTransport(proxy.TransportConfig{
		BlockPrivate:  true,
		AllowLoopback: s.cfg.AllowLoopbackTargets,
		Refuse: func(ap netip.AddrPort) error {
			if self := s.self.Load(); self != nil && self.has(ap) {
				return &proxy.AddressError{Addr: ap.Addr(), Reason: "this agentkeys server's own address"}
			}
			return nil
		},
	})
}

// selfAddrs is the address the server listens on: a port and the IPs it
// answers on (every local interface address when listening on all).
type selfAddrs struct {
	port uint16
	ips  map[netip.Addr]bool
	any  bool // listening on 0.0.0.0 or ::
}

func (a *selfAddrs) has(ap netip.AddrPort) bool {
	if ap.Port() != a.port {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	return ip.IsLoopback() || a.ips[ip] || a.any && ip.IsUnspecified()
}

func newSelfAddrs(ln net.Addr) *selfAddrs {
	tcp, ok := ln.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ap := tcp.AddrPort()
	a := &selfAddrs{port: ap.Port(), ips: map[netip.Addr]bool{}}
	ip := ap.Addr().Unmap()
	a.ips[ip] = true
	if ip.IsUnspecified() {
		a.any = true
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range addrs {
				if p, err := netip.ParsePrefix(ia.String()); err == nil {
					a.ips[p.Addr().Unmap()] = true
				}
			}
		}
	}
	return a
}
