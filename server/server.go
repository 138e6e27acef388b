// Package server is `agentkeys serve`: the REST API under /api/v1 (the
// seed's "API Reference": credentials, agents, assignments, workspace status,
// audit log, sign-up; and teams: workspaces, members and roles, invitations,
// API keys, login), the hosted /v1/proxy (the proxy package's handler over
// the store, dialling through the SSRF-safe transport), /healthz and
// /readyz, on a store.Store (SQLite or PostgreSQL). One file per noun; the
// route table is in routes.go.
//
// Every API request but the public routes (sign-up, login, accepting an
// invitation, the OpenAPI document, health checks) carries Authorization:
// Bearer ak_ws_…: server/auth turns it into an agentkeys.Actor (the member
// the key belongs to, their workspace and current role), and serveAPI
// checks the route's permission against that role — the one place it is
// checked — before the handler runs on the actor's workspace. Errors are
// JSON {"error","code","status"} with the X-Agentkeys-Error header; bodies
// are capped, unknown or read-only JSON fields refused.
//
// The web dashboard (server/dashboard, mounted at / by dashboard.go) signs
// people in with a session cookie and acts through the same route table:
// each action is an in-process API call as the session's actor, so
// serveAPI's permission check is the only one.
package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/auth"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
	"github.com/agentkeys/agentkeys/sync"
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
	// SlowBodyTimeout bounds how long a request body may take to arrive
	// (timeout.go; default DefaultSlowBodyTimeout).
	SlowBodyTimeout time.Duration
	// SyncLimits bound the sync blob store (zero fields: sync's defaults).
	SyncLimits sync.Limits
	// BehindProxy trusts X-Forwarded-Proto and X-Forwarded-Host when telling
	// clients the server's URL.
	BehindProxy bool
	// Logger gets structured logs with a request id on every line and never
	// a secret. nil: discard.
	Logger *slog.Logger
	Now    func() time.Time
	// Mailer sends invitations and sign-up confirmations (mail.Sender). nil:
	// no email; the API answers each invitation with its acceptUrl for the
	// inviter to pass on, and sign-up answers at once.
	Mailer Mailer
	// PublicURL is the server's address as people reach it, used for the
	// links in emails (https://agentkeys.example.com). Without it links use
	// the request's Host, which a caller chooses: set it whenever Mailer is.
	PublicURL string
	// Throttles of sign-up and login, per client address and per email,
	// shared by replicas (zero: DefaultSignupPerIP and the like).
	SignupPerIP, SignupPerEmail store.Rate
	LoginPerIP, LoginPerEmail   store.Rate
	// Webhooks tunes webhook delivery (workers, timeout, backoff, poll and
	// scan intervals, lease); zero fields take webhook.Config's defaults.
	// Store, Transport (the proxy's SSRF-refusing one), Logger and Now are
	// the server's.
	Webhooks webhook.Config
	// Billing, when set, turns on the billing endpoints (billing.go).
	Billing *BillingConfig
	// SessionIdle and SessionAbsolute bound dashboard sessions (default
	// DefaultSessionIdle, DefaultSessionAbsolute).
	SessionIdle, SessionAbsolute time.Duration
}

// Mailer sends one plain-text email.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Server is the HTTP side of `agentkeys serve`. It is safe for concurrent
// use.
type Server struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	auth    *auth.Authenticator
	proxy   *proxy.Handler
	handler http.Handler
	api     http.Handler  // the route table's mux, which the dashboard calls in process
	signups chan struct{} // bounds concurrent argon2id hashing
	// webhooks sends the outbox's deliveries (RunWebhooks).
	webhooks *webhook.Dispatcher
	stripe   *stripe.Client // nil: billing off

	self atomic.Pointer[selfAddrs] // set by Serve once listening
	sync *sync.Handler
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
	cfg.PublicURL = strings.TrimRight(strings.TrimSpace(cfg.PublicURL), "/")
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "--public-url must be the server's address, such as https://agentkeys.example.com")
		}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SlowBodyTimeout <= 0 {
		cfg.SlowBodyTimeout = DefaultSlowBodyTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, r := range []struct {
		dst *store.Rate
		def store.Rate
	}{{&cfg.SignupPerIP, DefaultSignupPerIP}, {&cfg.SignupPerEmail, DefaultSignupPerEmail},
		{&cfg.LoginPerIP, DefaultLoginPerIP}, {&cfg.LoginPerEmail, DefaultLoginPerEmail}} {
		if r.dst.Every <= 0 || r.dst.Burst <= 0 {
			*r.dst = r.def
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := slog.New(WithRequestID(cfg.Logger.Handler()))
	s := &Server{cfg: cfg, store: cfg.Store, log: log, signups: make(chan struct{}, 2),
		auth: &auth.Authenticator{Keys: cfg.Store}}
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
	s.sync = sync.NewHandler(sync.NewStore(cfg.Store.DB(), cfg.SyncLimits, cfg.Now))
	wh := cfg.Webhooks
	wh.Store, wh.Transport, wh.Logger, wh.Now = cfg.Store, s.outboundTransport(), log, cfg.Now
	s.webhooks = webhook.New(wh)
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
