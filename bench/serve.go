package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/bench/internal/load"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// The servers under test, each run as this program re-executed with
// "serve <role> <addr> [arg]", until SIGTERM. Every one reads the
// benchmark's random key from AGENTKEYS_MASTER_KEY (the local vault's
// unlock key, also the hosted store's server key) and, when
// BENCH_CPUPROFILE is set, writes a CPU profile to $BENCH_CPUPROFILE.<role>
// (hosted: .hosted-sqlite, .hosted-postgres).

// agentkeysGCPercent is cmd.ServeGCPercent, the setting of the agentkeys
// commands that serve (up, serve, mcp, run).
const agentkeysGCPercent = 400

// secretValue is the credential every proxy injects.
const secretValue = "re_bench_secret_value"

func serveMain(args []string) {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench serve bare|local|memory|hosted ADDR [ARG]")
		os.Exit(2)
	}
	role, addr, arg := args[0], args[1], ""
	if len(args) > 2 {
		arg = args[2]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// Every server under test runs with the garbage collector setting of
	// agentkeys's serving commands (cmd.ServeGCPercent: 400 unless GOGC is set), so the
	// floor and agentkeys differ only in the work they do per request.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentkeysGCPercent)
	}
	if prefix := os.Getenv("BENCH_CPUPROFILE"); prefix != "" {
		name := role
		if role == "hosted" {
			name += map[bool]string{true: "-sqlite", false: "-postgres"}[strings.HasPrefix(arg, "sqlite:")]
		}
		if f, err := os.Create(prefix + "." + name); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	var err error
	switch role {
	case "bare":
		err = listen(ctx, addr, bareProxy(arg))
	case "local":
		err = serveLocal(ctx, addr)
	case "memory":
		mux := http.NewServeMux()
		mh := proxy.New(newMemVault(arg), proxy.Config{Logger: slog.New(slog.DiscardHandler)})
		mux.Handle("/v1/proxy", mh)
		mux.Handle(proxy.BaseURLPrefix, mh)
		err = listen(ctx, addr, proxy.LoopbackOnly(mux))
	case "hosted":
		err = serveHosted(ctx, addr, arg)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "serve %s: %v\n", role, err)
		stop()
		os.Exit(1)
	}
}

// listen serves h on addr until ctx ends.
func listen(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bareProxy is the floor: httputil.ReverseProxy whose Rewrite adds one
// header, with a tuned transport and a 32 KiB buffer pool (NOTES.md).
func bareProxy(upstream string) http.Handler {
	u, _ := url.Parse(upstream)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("Authorization", "Bearer "+secretValue)
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
			DisableCompression:  true,
		},
		FlushInterval: -1,
		BufferPool:    bufferPool{},
	}
}

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// serveLocal runs what `agentkeys up` runs: the local vault of
// $AGENTKEYS_HOME, proxy.New, the loopback Host guard, an http.Server.
func serveLocal(ctx context.Context, addr string) error {
	v, err := localvault.Open(ctx, localConfig(os.Getenv("AGENTKEYS_HOME")))
	if err != nil {
		return err
	}
	defer v.Close()
	h := proxy.New(v, proxy.Config{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", h)
	mux.Handle(proxy.BaseURLPrefix, h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return listen(ctx, addr, proxy.LoopbackOnly(mux))
}

// serveHosted runs the server package (REST API and /v1/proxy, loopback
// targets allowed) on the store named by dbArg.
func serveHosted(ctx context.Context, addr, dbArg string) error {
	st, err := openStore(ctx, dbArg)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, server.ListenConfig{Addr: addr, ShutdownTimeout: time.Second})
}

// localConfig is the benchmark's local vault in home, unlocked by the key
// in AGENTKEYS_MASTER_KEY, never touching the OS keychain.
func localConfig(home string) localvault.Config {
	return localvault.Config{Home: home, MasterKey: os.Getenv("AGENTKEYS_MASTER_KEY"), Keychain: noKeychain{}}
}

type noKeychain struct{}

func (noKeychain) Get(string, string) (string, error) { return "", localvault.ErrKeyNotFound }
func (noKeychain) Set(string, string, string) error   { return localvault.ErrKeychainUnavailable }
func (noKeychain) Delete(string, string) error        { return localvault.ErrKeyNotFound }

// openStore opens the hosted store named by dbArg ("sqlite:<dir>" or a
// PostgreSQL URL, whose data directory — the audit journal's — is
// $BENCH_PG_DATA_DIR) with the key in AGENTKEYS_MASTER_KEY.
func openStore(ctx context.Context, dbArg string) (*store.Store, error) {
	key, err := agentkeys.ParseKey("AGENTKEYS_MASTER_KEY", os.Getenv("AGENTKEYS_MASTER_KEY"))
	if err != nil {
		return nil, err
	}
	cfg := store.Config{ServerKey: key}
	if dir, ok := strings.CutPrefix(dbArg, "sqlite:"); ok {
		cfg.DataDir = dir
	} else {
		cfg.DatabaseURL, cfg.DataDir = dbArg, os.Getenv("BENCH_PG_DATA_DIR")
	}
	return store.Open(ctx, cfg)
}

// grantable is what grant needs of a vault: the local vault and a hosted
// workspace both have it.
type grantable interface {
	agentkeys.CredentialService
	agentkeys.AgentService
}

// grant gives v one API_KEY credential allowed to reach upHost (host:port,
// comma-separated) and one
// agent holding it; it returns the agent's proxy token.
func grant(ctx context.Context, v grantable, upHost string) (string, error) {
	cred, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Bench API", Type: agentkeys.APIKey,
		AllowedHosts: strings.Split(upHost, ","), Secret: agentkeys.Secret{Value: secretValue}})
	if err != nil {
		return "", err
	}
	agent, err := v.CreateAgent(ctx, "bench")
	if err != nil {
		return "", err
	}
	g, err := v.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		return "", err
	}
	return g.ProxyToken, nil
}

// setupLocal creates the local vault in home (this process's
// AGENTKEYS_MASTER_KEY) with grant's credential and agent.
func setupLocal(ctx context.Context, home, upHost string) (string, error) {
	cfg := localConfig(home)
	if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{}); err != nil {
		return "", err
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer v.Close()
	return grant(ctx, v, upHost)
}

// hosted is one hosted server under test.
type hosted struct {
	name, dbArg   string
	proc          *load.Proc
	token, apiKey string
	// limitedToken is an agent's token in a second workspace with a
	// request limit (issue 18: plans on), far above what the run sends.
	limitedToken string
}

// setup creates a workspace in the store with grant's credential and agent.
func (h *hosted) setup(ctx context.Context, upHost string) error {
	st, err := openStore(ctx, h.dbArg)
	if err != nil {
		return err
	}
	defer st.Close()
	ws, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: "bench@example.com", Name: "Bench"})
	if err != nil {
		return err
	}
	h.apiKey = ws.APIKey
	if h.token, err = grant(ctx, st.Workspace(ws.ID), upHost); err != nil {
		return err
	}
	lw, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: "bench@example.com", Name: "Bench limited"})
	if err != nil {
		return err
	}
	limit := int64(1_000_000_000)
	if err := st.SetPlan(ctx, lw.ID, store.PlanChange{Plan: agentkeys.PlanScale, Requests: &limit}); err != nil {
		return err
	}
	h.limitedToken, err = grant(ctx, st.Workspace(lw.ID), upHost)
	return err
}

// api is a request to the hosted REST API with the workspace key.
func (h *hosted) api(method, path, body string) *http.Request {
	req, _ := http.NewRequest(method, "http://"+h.proc.Addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// fill creates credentials through the running server's API, 8 at a time,
// until the workspace holds n.
func (h *hosted) fill(n int) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	next.Store(1) // grant's credential is the first
	var firstErr atomic.Value
	client := load.NewClient(8)
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for firstErr.Load() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				body := fmt.Sprintf(`{"name":"cred-%05d","type":"API_KEY","value":"v-%d","allowedHosts":["api.example.com"]}`, i, i)
				resp, err := client.Do(h.api(http.MethodPost, "/api/v1/credentials", body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("create credential: HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return time.Since(start), nil
}

// listTimes times k calls of GET /api/v1/credentials (whole body read)
// after two warm-up calls; it returns the latencies and the body's size.
func (h *hosted) listTimes(k int) ([]time.Duration, int, error) {
	client := load.NewClient(1)
	defer client.CloseIdleConnections()
	var lats []time.Duration
	size := 0
	for i := range k + 2 {
		t0 := time.Now()
		b, err := load.Get(client, h.api(http.MethodGet, "/api/v1/credentials", ""))
		if err != nil {
			return nil, 0, err
		}
		if i >= 2 {
			lats = append(lats, time.Since(t0))
		}
		size = len(b)
	}
	return lats, size, nil
}

// memToken is the proxy token the memory vault accepts.
var memToken = "pxr_" + strings.Repeat("b", 43)

// memVault is an agentkeys.ProxyBackend held in memory whose audit writes
// cost nothing: what the proxy code costs without a vault behind it.
type memVault struct {
	route  agentkeys.Route
	secret agentkeys.Secret
	rows   atomic.Int64
}

func newMemVault(upHost string) *memVault {
	return &memVault{
		route: agentkeys.Route{WorkspaceID: "ws_bench", AgentID: "agent_bench", AgentName: "bench",
			Credential: &agentkeys.Credential{ID: "cred_bench", Name: "Bench API", Type: agentkeys.APIKey, AllowedHosts: strings.Split(upHost, ",")}},
		secret: agentkeys.Secret{Value: secretValue},
	}
}

func (m *memVault) Authorize(_ context.Context, token, _ string) (*agentkeys.Route, error) {
	if !agentkeys.EqualHash(agentkeys.HashToken(token), agentkeys.HashToken(memToken)) {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "invalid token")
	}
	r := m.route
	return &r, nil
}

func (m *memVault) RouteByName(context.Context, string) (*agentkeys.Route, error) {
	r := m.route
	return &r, nil
}

func (m *memVault) OpenSecret(context.Context, *agentkeys.Route) (*agentkeys.Secret, error) {
	s := m.secret
	return &s, nil
}

func (m *memVault) BeginAudit(context.Context, *agentkeys.AuditEvent) error {
	m.rows.Add(1)
	return nil
}

func (m *memVault) EndAudit(context.Context, *agentkeys.AuditEvent) { m.rows.Add(1) }
