// Command server benchmarks `agentkeys serve`'s hosted proxy side by side
// with a direct call, a bare httputil.ReverseProxy and the local proxy
// (`agentkeys up`: the proxy package over a local vault), in one run, on
// loopback; and GET /api/v1/credentials on a workspace with many
// credentials:
//
//	go run ./bench/server [-d 4s] [-c 64] [-n 10000] [-pg postgres://…]
//
// The bare proxy, the local proxy and each hosted server (the server package behind
// http.Server, on SQLite in a temporary directory and, when -pg or
// AGENTKEYS_TEST_DATABASE_URL names a PostgreSQL server, on a fresh schema
// there) run as subprocesses: this program re-executed. Targets take turns
// in short rounds so a neighbour's burst of load hits them alike. For each it
// prints req/s, p50, p99, the serving process's CPU per request, the local
// PostgreSQL server's (all its processes) and the whole machine's,
// then the ratio against the bare proxy (target: hosted on PostgreSQL ≥ 0.6×
// at c=64). Everything is on 127.0.0.1 and stops by itself.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

const keyEnv = "AGENTKEYS_BENCH_SERVER_KEY"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-bare":
			serveBare(os.Args[2], os.Args[3])
			return
		case "serve-hosted":
			serveHosted(os.Args[2], os.Args[3], os.Args[4])
			return
		case "serve-local":
			serveLocal(os.Args[2], os.Args[3])
			return
		}
	}
	dur := flag.Duration("d", 4*time.Second, "measuring time per target and concurrency")
	concs := flag.String("c", "64", "concurrency levels")
	n := flag.Int("n", 10000, "credentials in the workspace for the list benchmark (0: skip)")
	pg := flag.String("pg", os.Getenv("AGENTKEYS_TEST_DATABASE_URL"), "PostgreSQL server for the hosted-on-PostgreSQL rows (a schema is created and dropped)")
	flag.Parse()
	if err := run(*dur, *concs, *n, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	url  string
	hdr  http.Header
	pid  int
}

// hosted is one hosted server under test.
type hosted struct {
	name   string
	dbArg  string // "sqlite:<dir>" or a PostgreSQL URL
	proc   *proc
	addr   string
	token  string
	apiKey string
}

func run(dur time.Duration, concList string, nCreds int, pgBase string) error {
	var concs []int
	for _, s := range strings.Split(concList, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return fmt.Errorf("bad -c %q", concList)
		}
		concs = append(concs, c)
	}
	tmp, err := os.MkdirTemp("", "agentkeys-server-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := []byte(`{"id":"4ef9a2","object":"email","status":"queued","created_at":"2026-11-26T00:00:00Z"}`)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	go up.Serve(upLn)
	defer up.Close()
	upHost := upLn.Addr().String()
	upURL := "http://" + upHost

	key := make([]byte, 32)
	rand.Read(key)
	env := append(os.Environ(), keyEnv+"="+base64.StdEncoding.EncodeToString(key))
	self, err := os.Executable()
	if err != nil {
		return err
	}

	barePort, err := freePort()
	if err != nil {
		return err
	}
	bare, err := startProc(exec.Command(self, "serve-bare", barePort, upURL), nil)
	if err != nil {
		return err
	}
	defer bare.stop()

	localHome := filepath.Join(tmp, "local")
	localToken, err := setupLocal(localHome, env, upHost)
	if err != nil {
		return fmt.Errorf("local vault: %w", err)
	}
	localPort, err := freePort()
	if err != nil {
		return err
	}
	local, err := startProc(exec.Command(self, "serve-local", localPort, localHome), env)
	if err != nil {
		return err
	}
	defer local.stop()

	servers := []*hosted{{name: "hosted, SQLite", dbArg: "sqlite:" + filepath.Join(tmp, "sqlite")}}
	if pgBase != "" {
		dbURL, drop, err := pgSchema(pgBase)
		if err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		defer drop()
		servers = append(servers, &hosted{name: "hosted, PostgreSQL", dbArg: dbURL})
	} else {
		fmt.Fprintln(os.Stderr, "no -pg or AGENTKEYS_TEST_DATABASE_URL: PostgreSQL rows skipped")
	}
	for _, h := range servers {
		if err := h.setup(key, upHost); err != nil {
			return fmt.Errorf("%s: set up: %w", h.name, err)
		}
		if h.addr, err = freePort(); err != nil {
			return err
		}
		if h.proc, err = startProc(exec.Command(self, "serve-hosted", h.addr, h.dbArg, "loopback"), env); err != nil {
			return err
		}
		defer h.proc.stop()
	}
	if err := waitListening(barePort, bare); err != nil {
		return err
	}
	if err := waitListening(localPort, local); err != nil {
		return fmt.Errorf("local proxy: %w", err)
	}
	for _, h := range servers {
		if err := waitListening(h.addr, h.proc); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
	}

	targets := []target{
		{name: "direct", url: upURL + "/emails"},
		{name: "bare ReverseProxy", url: "http://" + barePort + "/emails", pid: bare.cmd.Process.Pid},
		{name: "local (agentkeys up)", url: "http://" + localPort + "/v1/proxy", pid: local.cmd.Process.Pid, hdr: http.Header{
			"Authorization":           {"Bearer " + localToken},
			agentkeys.HeaderTargetURL: {upURL + "/emails"},
		}},
	}
	for _, h := range servers {
		targets = append(targets, target{name: h.name, url: "http://" + h.addr + "/v1/proxy", pid: h.proc.cmd.Process.Pid, hdr: http.Header{
			"Authorization":           {"Bearer " + h.token},
			agentkeys.HeaderTargetURL: {upURL + "/emails"},
		}})
	}
	for _, t := range targets {
		if err := once(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	fmt.Printf("agentkeys server benchmark — %s, %d CPUs (%s), %s\n", cpuModel(), runtime.NumCPU(), runtime.GOARCH, runtime.Version())
	fmt.Printf("hosted = server.New (REST API + /v1/proxy over server/store, audit group-committed) behind http.Server, a subprocess\n")
	fmt.Printf("keep-alive clients, %s per target and concurrency (in 4 interleaved rounds), loopback upstream answering %d bytes of JSON\n\n", dur, len(body))

	results := map[string]map[int]result{}
	fmt.Printf("%-20s %5s %10s %9s %9s %12s %14s %15s\n", "target", "conc", "req/s", "p50 ms", "p99 ms", "proc CPU/req", "postgres CPU/req", "machine CPU/req")
	const rounds = 4
	for _, c := range concs {
		loaders := make([]*loader, len(targets))
		for i, t := range targets {
			loaders[i] = newLoader(t, c)
			loaders[i].round(300*time.Millisecond, false)
		}
		for range rounds {
			for _, l := range loaders {
				l.round(dur/rounds, true)
			}
		}
		for _, l := range loaders {
			r, err := l.result()
			if err != nil {
				return fmt.Errorf("%s c=%d: %w", l.t.name, c, err)
			}
			if results[l.t.name] == nil {
				results[l.t.name] = map[int]result{}
			}
			results[l.t.name][c] = r
			cpu := "-"
			if l.t.pid != 0 {
				cpu = fmt.Sprintf("%.0f µs", r.cpuPerReq)
			}
			fmt.Printf("%-20s %5d %10.0f %9.3f %9.3f %12s %13.0f µs %12.0f µs\n", l.t.name, c, r.rps, ms(r.p50), ms(r.p99), cpu, r.pgPerReq, r.machinePerReq)
		}
	}
	fmt.Println()
	fmt.Println("ratios (throughput against the bare ReverseProxy, measured in this run):")
	for _, c := range concs {
		b := results["bare ReverseProxy"][c]
		if r := results["local (agentkeys up)"][c]; b.rps > 0 {
			fmt.Printf("  c=%-3d %-20s %.2f×   p50 added over bare %+.3f ms\n", c, "local (agentkeys up)", r.rps/b.rps, ms(r.p50-b.p50))
		}
		for _, h := range servers {
			r := results[h.name][c]
			fmt.Printf("  c=%-3d %-20s %.2f×   p50 added over bare %+.3f ms\n", c, h.name, r.rps/b.rps, ms(r.p50-b.p50))
		}
	}
	for _, h := range servers {
		if strings.Contains(h.name, "PostgreSQL") {
			if r, b := results[h.name][64], results["bare ReverseProxy"][64]; b.rps > 0 && r.rps > 0 {
				fmt.Printf("  target: hosted on PostgreSQL ≥ 0.6× bare at c=64: %.2f× %s\n", r.rps/b.rps, verdict(r.rps/b.rps >= 0.6))
			}
		}
	}

	if nCreds > 0 {
		fmt.Printf("\nGET /api/v1/credentials with %d credentials (over HTTP, whole body read):\n", nCreds)
		for _, h := range servers {
			if err := h.fill(nCreds); err != nil {
				return fmt.Errorf("%s: fill: %w", h.name, err)
			}
			lat, size, err := listTimes(h, 15)
			if err != nil {
				return fmt.Errorf("%s: list: %w", h.name, err)
			}
			fmt.Printf("  %-20s p50 %7.1f ms   min %7.1f ms   max %7.1f ms   %5.1f MiB   %s\n", h.name,
				ms(lat[len(lat)/2]), ms(lat[0]), ms(lat[len(lat)-1]), float64(size)/(1<<20), verdict(lat[len(lat)/2] < 100*time.Millisecond))
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// openStore opens the store named by dbArg with the key.
func openStore(dbArg string, key []byte) (*store.Store, error) {
	var k agentkeys.Key
	copy(k[:], key)
	cfg := store.Config{ServerKey: k}
	if dir, ok := strings.CutPrefix(dbArg, "sqlite:"); ok {
		cfg.DataDir = dir
	} else {
		cfg.DatabaseURL = dbArg
	}
	return store.Open(context.Background(), cfg)
}

// setup creates the workspace, one credential allowed to reach the
// upstream and one agent holding a grant.
func (h *hosted) setup(key []byte, upHost string) error {
	ctx := context.Background()
	st, err := openStore(h.dbArg, key)
	if err != nil {
		return err
	}
	defer st.Close()
	ws, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: "bench@example.com", Name: "Bench"})
	if err != nil {
		return err
	}
	v := st.Workspace(ws.ID)
	cred, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Bench API", Type: agentkeys.APIKey,
		AllowedHosts: []string{upHost}, Secret: agentkeys.Secret{Value: "re_bench_secret_value"}})
	if err != nil {
		return err
	}
	agent, err := v.CreateAgent(ctx, "bench")
	if err != nil {
		return err
	}
	g, err := v.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		return err
	}
	h.token, h.apiKey = g.ProxyToken, ws.APIKey
	return nil
}

// fill adds credentials until the workspace holds n, through the API
// (the running server), 8 at a time.
func (h *hosted) fill(n int) error {
	start := time.Now()
	var next atomic.Int64
	next.Store(1) // the benchmark's own credential is the first
	var wg sync.WaitGroup
	var firstErr atomic.Value
	client := newClient(8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || firstErr.Load() != nil {
					return
				}
				body := fmt.Sprintf(`{"name":"cred-%05d","type":"API_KEY","value":"v-%d","allowedHosts":["api.example.com"]}`, i, i)
				req, _ := http.NewRequest("POST", "http://"+h.addr+"/api/v1/credentials", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+h.apiKey)
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("create credential: HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d credentials created through the API in %s\n", h.name, n-1, time.Since(start).Round(time.Millisecond))
	return nil
}

// listTimes times GET /api/v1/credentials k times, sorted.
func listTimes(h *hosted, k int) ([]time.Duration, int, error) {
	client := newClient(1)
	var lats []time.Duration
	size := 0
	for i := 0; i < k+2; i++ {
		req, _ := http.NewRequest("GET", "http://"+h.addr+"/api/v1/credentials", nil)
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return nil, 0, fmt.Errorf("HTTP %d %v", resp.StatusCode, err)
		}
		if i >= 2 { // two warm-up calls
			lats = append(lats, time.Since(t0))
		}
		size = len(b)
	}
	slices.Sort(lats)
	return lats, size, nil
}

// pgSchema creates a schema on base and returns its URL and a drop func.
func pgSchema(base string) (string, func(), error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	}, nil
}

// serveHosted runs the server package on the store named by dbArg.
func serveHosted(addr, dbArg, loopback string) {
	key, err := base64.StdEncoding.DecodeString(os.Getenv(keyEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hosted: bad key")
		os.Exit(1)
	}
	st, err := openStore(dbArg, key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hosted:", err)
		os.Exit(1)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: loopback == "loopback", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hosted:", err)
		os.Exit(1)
	}
	// SIGTERM stops the server (and a CPU profile, when
	// AGENTKEYS_BENCH_PROFILE names a file for it).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if name := os.Getenv("AGENTKEYS_BENCH_PROFILE"); name != "" {
		if f, err := os.Create(name + "." + filepath.Base(strings.SplitN(dbArg, ":", 2)[0])); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := srv.Serve(ctx, server.ListenConfig{Addr: addr, ShutdownTimeout: time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, "hosted:", err)
		os.Exit(1)
	}
}

// noKeychain keeps the benchmark's local vault away from the OS keychain:
// its key comes from localvault.Config.MasterKey.
type noKeychain struct{}

func (noKeychain) Get(string, string) (string, error) { return "", localvault.ErrKeyNotFound }
func (noKeychain) Set(string, string, string) error   { return localvault.ErrKeychainUnavailable }
func (noKeychain) Delete(string, string) error        { return localvault.ErrKeyNotFound }

// localConfig is the benchmark's local vault in home, keyed by the same
// random key as the hosted servers (from the environment).
func localConfig(home string, env []string) localvault.Config {
	var key string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, keyEnv+"="); ok {
			key = v
		}
	}
	return localvault.Config{Home: home, MasterKey: key, Keychain: noKeychain{}}
}

// setupLocal creates a local vault in home with one credential allowed to
// reach the upstream and one agent holding it; it returns the proxy token.
func setupLocal(home string, env []string, upHost string) (string, error) {
	ctx := context.Background()
	cfg := localConfig(home, env)
	if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{}); err != nil {
		return "", err
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer v.Close()
	cred, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Bench API", Type: agentkeys.APIKey,
		AllowedHosts: []string{upHost}, Secret: agentkeys.Secret{Value: "re_bench_secret_value"}})
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

// serveLocal runs what `agentkeys up` runs: the proxy package over the
// local vault in home, behind the loopback Host guard, on addr.
func serveLocal(addr, home string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	v, err := localvault.Open(ctx, localConfig(home, os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
	defer v.Close()
	h := proxy.New(v, proxy.Config{Logger: slog.New(slog.DiscardHandler)})
	v.UseProxy(h)
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", h)
	srv := &http.Server{Addr: addr, Handler: proxy.LoopbackOnly(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// serveBare is the floor: httputil.ReverseProxy with Rewrite adding one
// header, a tuned transport and a 32 KiB buffer pool.
func serveBare(addr, upstream string) {
	u, _ := url.Parse(upstream)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set("Authorization", "Bearer re_bench_secret_value")
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
		BufferPool:    pool{},
	}
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "bare proxy:", err)
		os.Exit(1)
	}
}

type pool struct{}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (pool) Get() []byte  { return *(bufs.Get().(*[]byte)) }
func (pool) Put(b []byte) { bufs.Put(&b) }

// ---- processes ----

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd, env []string) (*proc, error) {
	if env != nil {
		cmd.Env = env
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitListening(addr string, p *proc) error {
	for i := 0; i < 300; i++ {
		select {
		case <-p.done:
			return errors.New("the server process exited")
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not start listening", addr)
}

// ---- load ----

func newClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}}
}

func newReq(t target) *http.Request {
	req, _ := http.NewRequest("GET", t.url, nil)
	for k, v := range t.hdr {
		req.Header[k] = v
	}
	return req
}

func once(t target) error {
	resp, err := newClient(1).Do(newReq(t))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

type result struct {
	rps           float64
	p50, p99      time.Duration
	cpuPerReq     float64 // µs of the serving process
	pgPerReq      float64 // µs of every postgres process on the machine
	machinePerReq float64 // µs of the whole machine (all CPUs)
}

type loader struct {
	t       target
	conc    int
	client  *http.Client
	n       int64
	errs    int64
	elapsed time.Duration
	cpu     time.Duration
	pg      time.Duration
	machine time.Duration
	lats    []time.Duration
}

func newLoader(t target, conc int) *loader {
	return &loader{t: t, conc: conc, client: newClient(conc)}
}

// round runs conc clients for d; with record, it counts what they did.
func (l *loader) round(d time.Duration, record bool) {
	var n, errs atomic.Int64
	lats := make([][]time.Duration, l.conc)
	deadline := time.Now().Add(d)
	cpu0, pg0, mach0 := procCPU(l.t.pid), postgresCPU(), machineCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < l.conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := l.client.Do(newReq(l.t))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				n.Add(1)
				lats[i] = append(lats[i], time.Since(t0))
			}
		}(i)
	}
	wg.Wait()
	if !record {
		return
	}
	l.elapsed += time.Since(start)
	l.cpu += procCPU(l.t.pid) - cpu0
	l.pg += postgresCPU() - pg0
	l.machine += machineCPU() - mach0
	l.n += n.Load()
	l.errs += errs.Load()
	for _, ls := range lats {
		l.lats = append(l.lats, ls...)
	}
}

func (l *loader) result() (result, error) {
	if l.n == 0 {
		return result{}, errors.New("no request succeeded")
	}
	if l.errs > l.n/100 {
		return result{}, fmt.Errorf("%d of %d requests failed", l.errs, l.n+l.errs)
	}
	slices.Sort(l.lats)
	return result{
		rps:           float64(l.n) / l.elapsed.Seconds(),
		p50:           l.lats[len(l.lats)/2],
		p99:           l.lats[len(l.lats)*99/100],
		cpuPerReq:     float64(l.cpu.Microseconds()) / float64(l.n),
		pgPerReq:      float64(l.pg.Microseconds()) / float64(l.n),
		machinePerReq: float64(l.machine.Microseconds()) / float64(l.n),
	}, nil
}

// procCPU is the user+system CPU time of pid (0: none).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// postgresCPU is the CPU time of every process named postgres (a local
// PostgreSQL server's backends), 0 when there is none.
func postgresCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			total += procCPU(pid)
		}
	}
	return total
}

// machineCPU is the busy CPU time of the whole machine (all CPUs).
func machineCPU() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	var busy int64
	for i, v := range fields[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
