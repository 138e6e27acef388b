// Command proxy benchmarks agentkeys' proxy side by side with a direct call
// and a bare httputil.ReverseProxy, in one run, on loopback:
//
//	go run ./bench/proxy [-d 4s] [-c 1,64] [-stream 1073741824] [-bin path/to/agentkeys] [-inproc]
//
// It starts one loopback upstream (in this process), a bare ReverseProxy
// that adds one header (a subprocess: this program re-executed, with a tuned
// transport and a 32 KiB buffer pool — the floor NOTES.md describes), and
// agentkeys itself: `agentkeys up` as a subprocess over a fresh local vault in
// a temporary directory (unlocked with an AGENTKEYS_MASTER_KEY-style key),
// built from this module unless -bin names a binary; with -inproc, or when the
// build fails, this program re-executed serving localvault + proxy.New behind
// http.Server with proxy.LoopbackOnly, the same code `agentkeys up` runs.
//
// For each target and concurrency it runs keep-alive clients for a fixed
// duration and prints req/s, p50, p99 and the proxy process's CPU per
// request, then the ratios against the targets of issue 3 (agentkeys ≥ 0.8×
// the bare proxy's throughput at c=64; ≤ 0.5 ms added p50 over direct at
// c=1), and the proxy's peak RSS while it streams a 1 GiB response (< 64 MiB).
// Everything is on 127.0.0.1 and stops by itself.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-bare":
			serveBare(os.Args[2], os.Args[3])
			return
		case "serve-agentkeys":
			serveAgentkeys(os.Args[2])
			return
		case "serve-memory":
			serveMemory(os.Args[2], os.Args[3])
			return
		}
	}
	dur := flag.Duration("d", 4*time.Second, "measuring time per target and concurrency")
	concs := flag.String("c", "1,64", "concurrency levels")
	streamSize := flag.Int64("stream", 1<<30, "size of the streamed response for the RSS measurement")
	bin := flag.String("bin", "", "agentkeys binary to run `up` with (default: build ./cmd/agentkeys)")
	inproc := flag.Bool("inproc", false, "serve agentkeys from this program (localvault + proxy.New) instead of `agentkeys up`")
	memory := flag.Bool("memory", true, "also measure proxy.New over an in-memory vault (no SQLite, no audit writes): the proxy code's own cost")
	flag.Parse()
	if err := run(*dur, *concs, *streamSize, *bin, *inproc, *memory); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	url  string
	hdr  http.Header
	pid  int // the proxy process measured for CPU and RSS; 0 for direct
}

func run(dur time.Duration, concList string, streamSize int64, bin string, inproc, memory bool) error {
	var concs []int
	for _, s := range strings.Split(concList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -c %q", concList)
		}
		concs = append(concs, n)
	}
	tmp, err := os.MkdirTemp("", "agentkeys-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Upstream: a small JSON answer, or /big?n=N bytes.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	body := []byte(`{"id":"4ef9a2","object":"email","status":"queued","created_at":"2026-11-26T00:00:00Z"}`)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				k := min(n, int64(len(chunk)))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	go up.Serve(upLn)
	defer up.Close()
	upURL := "http://" + upLn.Addr().String()

	// A fresh local vault with one credential and one agent.
	key := make([]byte, 32)
	rand.Read(key)
	masterKey := base64.StdEncoding.EncodeToString(key)
	home := filepath.Join(tmp, "home")
	token, err := setupVault(home, masterKey, upLn.Addr().String())
	if err != nil {
		return fmt.Errorf("set up vault: %w", err)
	}
	env := append(os.Environ(), "AGENTKEYS_HOME="+home, "AGENTKEYS_MASTER_KEY="+masterKey)

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

	akPort, err := freePort()
	if err != nil {
		return err
	}
	how := "agentkeys up (subprocess)"
	if !inproc && bin == "" {
		bin = filepath.Join(tmp, "agentkeys")
		fmt.Fprintln(os.Stderr, "building ./cmd/agentkeys …")
		build := exec.Command("go", "build", "-o", bin, "./cmd/agentkeys")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build failed; serving agentkeys in-process instead")
			inproc = true
		}
	}
	var akCmd *exec.Cmd
	if inproc {
		how = "localvault + proxy.New behind http.Server (this program, re-executed)"
		akCmd = exec.Command(self, "serve-agentkeys", akPort)
	} else {
		akCmd = exec.Command(bin, "up", "--listen", akPort)
	}
	ak, err := startProc(akCmd, env)
	if err != nil {
		return err
	}
	defer ak.stop()
	procs := []struct {
		proc *proc
		addr string
	}{{bare, barePort}, {ak, akPort}}
	var memPort string
	var mem *proc
	if memory {
		if memPort, err = freePort(); err != nil {
			return err
		}
		if mem, err = startProc(exec.Command(self, "serve-memory", memPort, upLn.Addr().String()), nil); err != nil {
			return err
		}
		defer mem.stop()
		procs = append(procs, struct {
			proc *proc
			addr string
		}{mem, memPort})
	}
	for _, p := range procs {
		if err := waitListening(p.addr, p.proc); err != nil {
			return err
		}
	}

	targets := []target{
		{name: "direct", url: upURL + "/emails"},
		{name: "bare ReverseProxy", url: "http://" + barePort + "/emails", pid: bare.cmd.Process.Pid},
		{name: "agentkeys", url: "http://" + akPort + "/v1/proxy", pid: ak.cmd.Process.Pid, hdr: http.Header{
			"Authorization":           {"Bearer " + token},
			agentkeys.HeaderTargetURL: {upURL + "/emails"},
		}},
	}
	if memory {
		targets = append(targets, target{name: "proxy, memory vault", url: "http://" + memPort + "/v1/proxy", pid: mem.cmd.Process.Pid, hdr: http.Header{
			"Authorization":           {"Bearer " + memToken},
			agentkeys.HeaderTargetURL: {upURL + "/emails"},
		}})
	}
	// Check every target answers correctly before measuring.
	for _, t := range targets {
		if err := once(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	fmt.Printf("agentkeys proxy benchmark — %s, %d CPUs (%s), %s\n", cpuModel(), runtime.NumCPU(), runtime.GOARCH, runtime.Version())
	fmt.Printf("agentkeys served by: %s\n", how)
	fmt.Printf("keep-alive clients, %s per target and concurrency (in 4 interleaved rounds), loopback upstream answering %d bytes of JSON\n\n", dur, len(body))

	// Streaming first, so the proxy's VmHWM is the streaming peak.
	var akPeak float64
	fmt.Printf("streaming a %d MiB response through the proxy:\n", streamSize>>20)
	for _, t := range targets[1:3] {
		st := t
		if t.name == "agentkeys" {
			st.hdr = http.Header{"Authorization": t.hdr["Authorization"], agentkeys.HeaderTargetURL: {fmt.Sprintf("%s/big?n=%d", upURL, streamSize)}}
		} else {
			st.url = fmt.Sprintf("http://%s/big?n=%d", barePort, streamSize)
		}
		res, err := stream(st, streamSize)
		if err != nil {
			return fmt.Errorf("stream through %s: %w", t.name, err)
		}
		fmt.Printf("  %-18s %7.0f MiB/s   peak RSS %5.1f MiB (sampled)   VmHWM %5.1f MiB\n", t.name, res.mibps, res.peakRSS, res.hwm)
		if t.name == "agentkeys" {
			akPeak = res.hwm
		}
	}
	fmt.Println()

	results := map[string]map[int]result{}
	fmt.Printf("%-20s %5s %10s %9s %9s %12s\n", "target", "conc", "req/s", "p50 ms", "p99 ms", "proxy CPU/req")
	// Targets take turns in short rounds, so a neighbour's burst of load on
	// a shared machine hits them all alike.
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
			fmt.Printf("%-20s %5d %10.0f %9.3f %9.3f %12s\n", l.t.name, c, r.rps, ms(r.p50), ms(r.p99), cpu)
		}
	}
	fmt.Println()
	fmt.Println("ratios:")
	for _, c := range concs {
		ak, b, d := results["agentkeys"][c], results["bare ReverseProxy"][c], results["direct"][c]
		line := fmt.Sprintf("  c=%-3d agentkeys/bare throughput %.2f×, agentkeys/direct %.2f×, bare/direct %.2f×; p50 added over direct: agentkeys %+.3f ms, bare %+.3f ms",
			c, ak.rps/b.rps, ak.rps/d.rps, b.rps/d.rps, ms(ak.p50-d.p50), ms(b.p50-d.p50))
		fmt.Println(line)
		if m, ok := results["proxy, memory vault"][c]; ok {
			fmt.Printf("        proxy code alone (memory vault)/bare %.2f×; the local vault's share (auth, audit rows) is the rest\n", m.rps/b.rps)
		}
	}
	if ak, b := results["agentkeys"][64], results["bare ReverseProxy"][64]; b.rps > 0 {
		fmt.Printf("  target: agentkeys ≥ 0.8× bare at c=64: %.2f× %s\n", ak.rps/b.rps, verdict(ak.rps/b.rps >= 0.8))
	}
	if ak, d := results["agentkeys"][1], results["direct"][1]; d.rps > 0 {
		added := ms(ak.p50 - d.p50)
		fmt.Printf("  target: added p50 over direct at c=1 ≤ 0.5 ms: %.3f ms %s\n", added, verdict(added <= 0.5))
	}
	fmt.Printf("  target: agentkeys peak RSS while streaming %d MiB < 64 MiB: %.1f MiB %s\n", streamSize>>20, akPeak, verdict(akPeak < 64))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// setupVault creates a vault with one API_KEY credential allowed to reach
// the upstream and one agent holding a grant; it returns the proxy token.
func setupVault(home, masterKey, upstreamHost string) (string, error) {
	ctx := context.Background()
	cfg := localvault.Config{Home: home, MasterKey: masterKey, Keychain: noKeychain{}}
	if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{}); err != nil {
		return "", err
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer v.Close()
	cred, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Bench API", Type: agentkeys.APIKey,
		AllowedHosts: []string{upstreamHost}, Secret: agentkeys.Secret{Value: "re_bench_secret_value"}})
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

// noKeychain keeps the benchmark away from the OS keychain: the vault is
// unlocked by the master key.
type noKeychain struct{}

func (noKeychain) Get(string, string) (string, error) { return "", localvault.ErrKeyNotFound }
func (noKeychain) Set(string, string, string) error {
	return errors.New("no keychain in the benchmark")
}
func (noKeychain) Delete(string, string) error { return localvault.ErrKeyNotFound }

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

// memToken is the proxy token the in-memory vault accepts.
var memToken = "pxr_" + strings.Repeat("b", 43)

// memVault is an agentkeys.ProxyBackend held in memory with audit writes
// that cost nothing: what the proxy code costs without SQLite.
type memVault struct {
	route  agentkeys.Route
	secret agentkeys.Secret
	rows   atomic.Int64
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

func serveMemory(addr, upstreamHost string) {
	v := &memVault{
		route:  agentkeys.Route{WorkspaceID: "ws_bench", AgentID: "agent_bench", AgentName: "bench", Credential: &agentkeys.Credential{ID: "cred_bench", Name: "Bench API", Type: agentkeys.APIKey, AllowedHosts: []string{upstreamHost}}},
		secret: agentkeys.Secret{Value: "re_bench_secret_value"},
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", proxy.LoopbackOnly(proxy.New(v, proxy.Config{})))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	profile(srv)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "memory proxy:", err)
		os.Exit(1)
	}
}

// profile writes a CPU profile of this proxy process to $BENCH_CPUPROFILE
// (with the process's role appended), stopped when the benchmark ends the
// process (SIGTERM).
func profile(srv *http.Server) {
	file := os.Getenv("BENCH_CPUPROFILE")
	if file == "" {
		return
	}
	f, err := os.Create(file + "." + os.Args[1])
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		pprof.StopCPUProfile()
		f.Close()
		srv.Close()
	}()
}

type pool struct{}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (pool) Get() []byte  { return *(bufs.Get().(*[]byte)) }
func (pool) Put(b []byte) { bufs.Put(&b) }

// serveAgentkeys is what `agentkeys up` runs: the local vault, proxy.New,
// LoopbackOnly, an http.Server on loopback.
func serveAgentkeys(addr string) {
	ctx := context.Background()
	v, err := localvault.Open(ctx, localvault.Config{Home: os.Getenv("AGENTKEYS_HOME"), MasterKey: os.Getenv("AGENTKEYS_MASTER_KEY"), Keychain: noKeychain{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open vault:", err)
		os.Exit(1)
	}
	defer v.Close()
	h := proxy.New(v, proxy.Config{})
	v.UseProxy(h)
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", proxy.LoopbackOnly(h))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	profile(srv)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "agentkeys proxy:", err)
		os.Exit(1)
	}
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startProc(cmd *exec.Cmd, env []string) (*proc, error) {
	if env != nil {
		cmd.Env = env
	}
	// nil: /dev/null, without a copying goroutine in this process.
	// (`agentkeys up` logs one line per request to stderr.)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitListening(addr string, p *proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s", p.cmd.Path, addr)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %s", p.cmd.Path, addr)
}

func newClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: conc + 8, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
}

func newReq(t target) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, t.url, nil)
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
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return nil
}

type result struct {
	rps       float64
	p50, p99  time.Duration
	cpuPerReq float64 // µs of the proxy process's CPU per request
}

// loader drives conc keep-alive clients against one target and
// accumulates what it measures over several rounds.
type loader struct {
	t        target
	conc     int
	client   *http.Client
	lat      []time.Duration
	n        int64
	elapsed  time.Duration
	cpu      time.Duration
	failed   atomic.Int64
	firstErr atomic.Value
}

func newLoader(t target, conc int) *loader {
	return &loader{t: t, conc: conc, client: newClient(conc)}
}

// round runs the clients for d; with record false it only warms up.
func (l *loader) round(d time.Duration, record bool) {
	lat := make([][]time.Duration, l.conc)
	var n atomic.Int64
	cpu0 := procCPU(l.t.pid)
	t0 := time.Now()
	stop := t0.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < l.conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(stop) {
				req := newReq(l.t)
				start := time.Now()
				resp, err := l.client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[i] = append(lat[i], time.Since(start))
				n.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if record {
		l.elapsed += time.Since(t0)
		l.cpu += procCPU(l.t.pid) - cpu0
		l.n += n.Load()
		l.lat = append(l.lat, slices.Concat(lat...)...)
	}
}

func (l *loader) result() (result, error) {
	defer l.client.CloseIdleConnections()
	if f := l.failed.Load(); f > 0 {
		return result{}, fmt.Errorf("%d requests failed (first: %v)", f, l.firstErr.Load())
	}
	if len(l.lat) == 0 {
		return result{}, errors.New("no requests completed")
	}
	slices.Sort(l.lat)
	r := result{
		rps: float64(l.n) / l.elapsed.Seconds(),
		p50: l.lat[len(l.lat)/2],
		p99: l.lat[len(l.lat)*99/100],
	}
	if l.t.pid != 0 {
		r.cpuPerReq = float64(l.cpu.Microseconds()) / float64(l.n)
	}
	return r, nil
}

// procCPU is the user+system CPU time a process has used.
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
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// procMem returns VmRSS and VmHWM (peak RSS) of a process, in MiB.
func procMem(pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var kb float64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%f", &kb)
			rss = kb / 1024
		case strings.HasPrefix(line, "VmHWM:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%f", &kb)
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

type streamResult struct {
	mibps, peakRSS, hwm float64
}

// stream downloads size bytes through the proxy, sampling its RSS.
func stream(t target, size int64) (streamResult, error) {
	done := make(chan struct{})
	var peak float64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _ := procMem(t.pid); rss > peak {
				peak = rss
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	resp, err := newClient(1).Do(newReq(t))
	if err != nil {
		close(done)
		return streamResult{}, err
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 256<<10))
	resp.Body.Close()
	elapsed := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return streamResult{}, err
	}
	if n != size {
		return streamResult{}, fmt.Errorf("got %d bytes, want %d", n, size)
	}
	_, hwm := procMem(t.pid)
	return streamResult{mibps: float64(n) / (1 << 20) / elapsed.Seconds(), peakRSS: peak, hwm: hwm}, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOOS
}
