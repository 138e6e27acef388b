package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// DefaultListen is where `agentkeys up` listens unless --listen says otherwise.
const DefaultListen = "127.0.0.1:8787"

// UpOptions are the parsed flags of `up`.
type UpOptions struct {
	IO           *IOStreams
	ProxyHandler func(context.Context) (http.Handler, error)

	Listen string
	// JSON prints the address as one JSON line instead of the text lines.
	JSON bool
	// ShutdownTimeout is how long in-flight requests may take to finish
	// after Ctrl-C or SIGTERM.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the proxy's base URL once it accepts
	// connections (tests).
	Ready func(baseURL string)

	// Vault and SyncInterval: when the vault syncs (`agentkeys sync
	// enable`), up syncs it in the background every SyncInterval (0: never)
	// and soon after a local change. Logger gets its lines.
	Vault        func(context.Context) (agentkeys.Vault, error)
	SyncInterval time.Duration
	Logger       *slog.Logger

	// logs holds back the logger's lines (set by NewCmdUp); RunUp flushes it
	// before writing to IO.ErrOut itself, so stderr stays in order.
	logs *batchWriter
}

// NewCmdUp returns `up`.
func NewCmdUp(f *Factory, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: f.IOStreams, ProxyHandler: f.ProxyHandler, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "up [--listen 127.0.0.1:PORT]",
		Short: "Run the proxy on loopback in the foreground (Ctrl-C stops it)",
		Long: `Run the agentkeys proxy in the foreground: agents send requests to
$AGENTKEYS_PROXY_URL/v1/proxy with "Authorization: Bearer pxr_…" and
"X-Target-Url: https://…", and the proxy injects the credential, forwards the
request to an allowed host, streams the answer back and writes an audit row.
Tools that take a base URL and an API key use base-URL mode instead:
$AGENTKEYS_PROXY_URL/to/<host>/<path> with the pxr_ token as their key (see
agentkeys run).

It listens on ` + DefaultListen + ` unless --listen says otherwise (port 0 picks a
free port). On loopback, requests whose Host header is not a loopback name are
refused (a web page cannot reach the proxy by DNS rebinding).

A --listen address that is not loopback (for example 0.0.0.0:8787, to serve
containers) prints a warning: anyone who can reach it and holds a token can use
it, over plain HTTP. Clients then necessarily use a non-loopback Host, so the
loopback guard is replaced by one that accepts only IP literals, loopback names
and the host named in --listen: still no DNS rebinding, which needs a domain name.

Ctrl-C or SIGTERM stops accepting connections and lets in-flight requests finish
(up to --shutdown-timeout), then exits 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ShutdownTimeout <= 0 {
				return errInvalid("--shutdown-timeout must be positive")
			}
			if opts.SyncInterval != 0 && opts.SyncInterval < time.Second {
				return errInvalid("--sync-interval must be 0 (no background sync) or at least 1s")
			}
			if _, _, err := splitListen(opts.Listen); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			f.defaultLogLevel(slog.LevelInfo)
			// A line per proxied request, written in batches. Registered
			// before the vault is opened, the batcher is closed after it, so
			// the vault's last lines come out too.
			opts.logs = newBatchWriter(f.IOStreams.ErrOut, logFlushInterval)
			f.onClose(opts.logs.Close)
			f.Logger = slog.New(slog.NewTextHandler(opts.logs, &slog.HandlerOptions{Level: f.logLevel}))
			opts.Logger = f.Logger
			return RunUp(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Listen, "listen", DefaultListen, "address to listen on (host:port)")
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"listen": HOST:PORT, "url": BASE-URL} as one JSON line once listening`)
	c.Flags().DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
	c.Flags().DurationVar(&opts.SyncInterval, "sync-interval", 10*time.Second, "when sync is on, how often to sync in the background (0 turns it off; a local change syncs at once)")
	return c
}

// splitListen checks host:port and reports whether host is loopback.
func splitListen(addr string) (host string, loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, errInvalid("--listen %q must be host:port, as in %s", addr, DefaultListen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "", false, errInvalid("--listen %q has a bad port", addr)
	}
	if host == "" {
		return "", false, nil // all interfaces
	}
	return host, agentkeys.IsLoopbackHost(host), nil
}

// RunUp serves the proxy until ctx is cancelled, then drains in-flight
// requests. A clean drain returns nil.
func RunUp(ctx context.Context, opts *UpOptions) error {
	serving()
	host, loopback, err := splitListen(opts.Listen)
	if err != nil {
		return err
	}
	h, err := opts.ProxyHandler(ctx)
	if err != nil {
		return err
	}
	guarded := hostGuardFor(loopback, host, h)
	if opts.Vault != nil && opts.SyncInterval > 0 {
		if v, err := opts.Vault(ctx); err == nil {
			log := opts.Logger
			if log == nil {
				log = slog.New(slog.DiscardHandler)
			}
			defer startBackgroundSync(ctx, v, opts.SyncInterval, log)()
		}
	}
	var inflight atomic.Int64
	var handlers sync.WaitGroup
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", guarded)
	mux.Handle(proxy.BaseURLPrefix, guarded) // base-URL mode: /to/<host>/<path>
	mux.Handle("/healthz", hostGuardFor(loopback, host, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProxyError(w, http.StatusNotFound, agentkeys.ENOTFOUND, "no such endpoint: send requests to /v1/proxy")
	})
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		handlers.Add(1)
		defer handlers.Done()
		defer inflight.Add(-1)
		mux.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return unavailable("cannot listen on %s: %v (is another agentkeys up running? pick another port with --listen)", opts.Listen, unwrapOpError(err))
	}
	srv := &http.Server{
		Handler:           counted,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		// No ReadTimeout or WriteTimeout: uploads and streamed answers may be
		// long; the proxy bounds dial and response-header waits itself.
		// Request contexts do not derive from ctx, so Ctrl-C does not cancel
		// in-flight requests: Shutdown lets them finish.
	}
	addr := ln.Addr().(*net.TCPAddr)
	baseURL := "http://" + addr.String()
	if addr.IP.IsUnspecified() {
		// Listening on every interface: this machine reaches it on loopback.
		baseURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
	}

	// The address as it was asked for (0.0.0.0 stays 0.0.0.0, not the
	// dual-stack [::] Go reports), with the port the system picked for :0.
	listening := net.JoinHostPort(host, strconv.Itoa(addr.Port))

	out := opts.IO.Out
	opts.logs.Flush()
	if !loopback {
		opts.IO.Warnf("listening on %s, which is not loopback: anyone who can reach this address and holds a proxy token or the workspace key can use your credentials, over plain HTTP. Use a firewall, or --listen %s.", listening, DefaultListen)
	}
	if opts.JSON {
		if err := json.NewEncoder(out).Encode(map[string]string{"listen": listening, "url": baseURL}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "agentkeys proxy listening on http://%s\n", listening)
		fmt.Fprintf(out, "export AGENTKEYS_PROXY_URL=%s\n", baseURL)
		fmt.Fprintf(out, "Try it:\n  curl \"$AGENTKEYS_PROXY_URL/v1/proxy\" -H \"Authorization: Bearer pxr_…\" -H \"X-Target-Url: https://api.example.com/…\"\n")
		fmt.Fprintln(out, "Press Ctrl-C to stop.")
	}
	if opts.Ready != nil {
		opts.Ready(baseURL)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("proxy server: %w", err)
	case <-ctx.Done():
	}
	n := inflight.Load()
	opts.logs.Flush()
	fmt.Fprintf(opts.IO.ErrOut, "Shutting down: waiting up to %s for %d in-flight request(s)…\n", opts.ShutdownTimeout, n)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		// Closing the connections cancels the requests still running; let
		// their handlers return, so their audit outcomes are recorded before
		// the vault is closed.
		waitGroup(&handlers, 5*time.Second)
		if errors.Is(err, context.DeadlineExceeded) {
			return unavailable("shutdown: %d request(s) still running after %s were cut off", inflight.Load(), opts.ShutdownTimeout)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy server: %w", err)
	}
	opts.logs.Flush()
	fmt.Fprintln(opts.IO.ErrOut, "Stopped.")
	return nil
}

// waitGroup waits until wg is done or d has passed.
func waitGroup(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func hostGuardFor(loopback bool, host string, h http.Handler) http.Handler {
	if loopback {
		return proxy.LoopbackOnly(h)
	}
	return hostGuard(host, h)
}

// hostGuard is the DNS-rebinding guard for a non-loopback --listen: the
// Host header must be an IP literal, a loopback name, or the host --listen
// named. A rebinding attack needs a domain name the attacker controls in
// Host, so it is refused; clients on other machines use the IP or that name.
// Refusals by the proxy handler's guard are audited (proxy.GuardHost).
func hostGuard(listenHost string, next http.Handler) http.Handler {
	listenHost = strings.ToLower(strings.Trim(listenHost, "[]"))
	allowed := func(hostHeader string) bool {
		h := hostHeader
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
		return net.ParseIP(h) != nil || agentkeys.IsLoopbackHost(h) || (listenHost != "" && h == listenHost)
	}
	return proxy.GuardHost(allowed, agentkeys.Errorf(agentkeys.EFORBIDDEN,
		"the Host header is not accepted by this proxy: use its IP address or the host name given to --listen"), next)
}

// writeProxyError writes the proxy protocol's JSON error, with a request id
// like every answer of the proxy (no audit row: these requests are for no
// endpoint the proxy serves).
func writeProxyError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(agentkeys.HeaderRequestID, agentkeys.NewID("req"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(agentkeys.HeaderError, code)
	w.WriteHeader(status)
	_ = writeJSON(w, map[string]any{"error": msg, "code": code, "status": status})
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
