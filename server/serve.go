package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
)

// ListenConfig says where and how Serve listens.
type ListenConfig struct {
	Addr string // host:port; port 0 picks a free one
	// TLSCert and TLSKey are PEM files; with both, Serve speaks HTTPS.
	TLSCert, TLSKey string
	// BehindProxy allows plain HTTP on a non-loopback address: a TLS-
	// terminating proxy stands in front.
	BehindProxy bool
	// ShutdownTimeout is how long in-flight requests (streams included)
	// may take to finish once ctx is cancelled (default 30s).
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the base URL once connections are
	// accepted.
	Ready func(baseURL string)
}

// CheckListen refuses plain HTTP on a non-loopback address unless TLS is
// configured or BehindProxy is set, and half a TLS configuration. Returns
// EINVALID saying what to do.
func CheckListen(lc ListenConfig) error {
	host, _, err := net.SplitHostPort(lc.Addr)
	if err != nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "--listen %q must be host:port, as in 127.0.0.1:8080", lc.Addr)
	}
	if (lc.TLSCert == "") != (lc.TLSKey == "") {
		return agentkeys.Errorf(agentkeys.EINVALID, "give both --tls-cert and --tls-key, or neither")
	}
	if host != "" && agentkeys.IsLoopbackHost(host) || lc.TLSCert != "" || lc.BehindProxy {
		return nil
	}
	return agentkeys.Errorf(agentkeys.EINVALID,
		"--listen %s is not a loopback address: serve HTTPS with --tls-cert and --tls-key, or pass --behind-proxy when a TLS-terminating proxy stands in front", lc.Addr)
}

// Serve listens on lc.Addr and serves until ctx is cancelled, then stops
// accepting connections and lets in-flight requests finish for up to
// lc.ShutdownTimeout. A clean drain returns nil.
func (s *Server) Serve(ctx context.Context, lc ListenConfig) error {
	if err := CheckListen(lc); err != nil {
		return err
	}
	if lc.ShutdownTimeout <= 0 {
		lc.ShutdownTimeout = 30 * time.Second
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		// No ReadTimeout or WriteTimeout: proxied uploads and streamed
		// answers may be long; the proxy bounds dial and header waits, the
		// API caps bodies.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if lc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(lc.TLSCert, lc.TLSKey)
		if err != nil {
			return agentkeys.Errorf(agentkeys.EINVALID, "cannot load --tls-cert/--tls-key: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	ln, err := net.Listen("tcp", lc.Addr)
	if err != nil {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot listen on %s: %v", lc.Addr, err)
	}
	s.self.Store(newSelfAddrs(ln.Addr()))
	base := scheme + "://" + ln.Addr().String()
	s.log.Info("agentkeys server listening", "version", version.Version(), "url", base, "database", s.store.Dialect(), "signup", s.cfg.Signup)
	if s.cfg.AllowLoopbackTargets {
		s.log.Warn("--allow-loopback-targets: the hosted proxy may reach loopback addresses on this machine. For development and tests only; never in production.")
	}
	if lc.Ready != nil {
		lc.Ready(base)
	}
	whCtx, stopWebhooks := context.WithCancel(context.WithoutCancel(ctx))
	whDone := make(chan struct{})
	go func() { defer close(whDone); s.RunWebhooks(whCtx) }()
	defer func() { stopWebhooks(); <-whDone }()
	serveErr := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-serveErr:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: waiting for in-flight requests", "grace", lc.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "shutdown: requests still running after %s were cut off", lc.ShutdownTimeout)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
