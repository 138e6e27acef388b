// Command bench measures agentkeys' proxies side by side, in one run, on
// loopback:
//
//	go run ./bench [-d 4s] [-c 1,64] [-stream 1073741824] [-n 10000] [-pg URL] [-bin path/to/agentkeys] [-inproc]
//
// It starts one loopback upstream (in this process) answering 86 bytes of
// JSON, or /big?n=N bytes, and these servers, each a subprocess:
//
//   - bare ReverseProxy: httputil.ReverseProxy adding one header, with a
//     tuned transport and a 32 KiB buffer pool — the floor (issue 3);
//   - agentkeys up: the CLI built from this module (or -bin) over a fresh
//     local vault unlocked by a random AGENTKEYS_MASTER_KEY; with -inproc, or
//     when the build fails, this program serving the same code (localvault,
//     proxy.New, proxy.LoopbackOnly);
//   - proxy, memory vault: proxy.New over a vault held in memory whose audit
//     costs nothing — the proxy code's own cost;
//   - "up, base-URL mode" and "memory, base-URL mode": the same two
//     processes asked in base-URL mode (/to/<host>/<path>, the token as
//     Authorization: Bearer), against their /v1/proxy (issue 15);
//   - hosted, SQLite and hosted, PostgreSQL: `agentkeys serve` (REST API and
//     /v1/proxy, audit journaled then imported, a JSON log line per request,
//     --allow-loopback-targets) from the same binary; with -inproc, this
//     program serving the server package on server/store (logs discarded).
//     PostgreSQL is -pg, default $AGENTKEYS_TEST_DATABASE_URL or
//     postgres://postgres@127.0.0.1:5432/test?sslmode=disable, in a schema
//     of its own dropped at the end (-pg "" skips it).
//
// Besides those, "direct" calls the upstream itself. It streams a 1 GiB
// response through the bare proxy and agentkeys up and reports their peak
// RSS; then, for each concurrency, runs keep-alive clients against every
// target in interleaved rounds and prints req/s, p50, p99, CPU per request
// (the serving process, every postgres process, the whole machine) and the
// throughput against the bare proxy; then the targets of issues 3 and 6;
// then times GET /api/v1/credentials on each hosted server after filling
// its workspace with -n credentials through the API. Everything stops by
// itself: -timeout (default 10m) ends a run that hangs, cleaning up.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/bench/internal/load"
	"github.com/agentkeys/agentkeys/bench/internal/pgschema"
)

const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// The target names, as printed.
const (
	direct   = "direct"
	bare     = "bare ReverseProxy"
	up       = "agentkeys up"
	upBase   = "up, base-URL mode"
	memory   = "proxy, memory vault"
	memBase  = "memory, base-URL mode"
	sqliteH  = "hosted, SQLite"
	postgres = "hosted, PostgreSQL"
	// The same hop to an https upstream (a test CA trusted through SSL_CERT_FILE).
	directTLS = "direct, https"
	bareTLS   = "bare, https"
	upTLS     = "agentkeys up, https"
	// limitedSuffix names the hosted rows of a workspace with a request
	// limit (plans on); the rows without it are plans off (unlimited).
	limitedSuffix = " +limit"
)

type options struct {
	dur        time.Duration
	concs      []int
	streamSize int64
	nCreds     int
	sse        int
	pg         string
	bin        string
	inproc     bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serveMain(os.Args[2:])
		return
	}
	pgDefault := os.Getenv("AGENTKEYS_TEST_DATABASE_URL")
	if pgDefault == "" {
		pgDefault = defaultPG
	}
	var o options
	flag.DurationVar(&o.dur, "d", 4*time.Second, "measuring time per target and concurrency (split into 4 interleaved rounds)")
	concs := flag.String("c", "1,64", "concurrency levels, comma-separated")
	flag.Int64Var(&o.streamSize, "stream", 1<<30, "bytes streamed through the proxies for the RSS measurement (0: skip)")
	flag.IntVar(&o.sse, "sse", 200, "requests for the time to the first server-sent event (0: skip)")
	flag.IntVar(&o.nCreds, "n", 10000, "credentials in each hosted workspace for the list benchmark (0: skip)")
	flag.StringVar(&o.pg, "pg", pgDefault, `PostgreSQL server for the hosted-on-PostgreSQL rows ("": skip)`)
	flag.StringVar(&o.bin, "bin", "", "agentkeys binary to run `up` with (default: build ./cmd/agentkeys)")
	flag.BoolVar(&o.inproc, "inproc", false, "serve the local proxy and the hosted servers from this program instead of `agentkeys up` and `agentkeys serve`")
	timeout := flag.Duration("timeout", 10*time.Minute, "end the whole run (cleaning up) after this long")
	flag.Parse()
	for _, s := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad -c %q\n", *concs)
			os.Exit(2)
		}
		o.concs = append(o.concs, c)
	}

	var b bench
	// SIGINT, SIGTERM or the timeout: clean up (stop the servers, drop the
	// schema, remove the temporary directory) and exit.
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "bench: %v: stopping\n", s)
		case <-time.After(*timeout):
			fmt.Fprintf(os.Stderr, "bench: still running after -timeout %s: stopping\n", *timeout)
		}
		b.cleanup()
		os.Exit(2)
	}()
	err := b.run(o)
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run: what it started, to undo in reverse order.
type bench struct {
	mu    sync.Mutex
	undo  []func()
	ended bool
}

func (b *bench) onCleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.undo = append(b.undo, f)
}

func (b *bench) cleanup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
}

// start runs the server cmd(addr) makes for a free loopback addr, logging
// to logDir, and stops it at cleanup.
func (b *bench) start(name string, cmd func(addr string) *exec.Cmd, env []string, logDir string) (*load.Proc, error) {
	addr, err := load.FreePort()
	if err != nil {
		return nil, err
	}
	log := filepath.Join(logDir, strings.NewReplacer(" ", "-", ",", "").Replace(name)+".log")
	p, err := load.Start(name, addr, cmd(addr), env, log)
	if err != nil {
		return nil, err
	}
	b.onCleanup(p.Stop)
	return p, nil
}

func (b *bench) run(o options) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "agentkeys-bench-")
	if err != nil {
		return err
	}
	b.onCleanup(func() { os.RemoveAll(tmp) })

	// The upstream: a small JSON answer, or /big?n=N bytes.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	body := []byte(`{"id":"4ef9a2","object":"email","status":"queued","created_at":"2026-11-26T00:00:00Z"}`)
	upSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			// One event at once, a second one later: time to first event.
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"delta\":\"first\"}\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
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
	go upSrv.Serve(upLn)
	b.onCleanup(func() { upSrv.Close() })
	upHost := upLn.Addr().String()
	upURL := "http://" + upHost

	// The same upstream over TLS, with a certificate from a throwaway CA that
	// every process here trusts through SSL_CERT_FILE (set before any TLS use
	// and inherited by the children).
	caFile := filepath.Join(tmp, "ca.pem")
	tlsConf, err := testCA(caFile)
	if err != nil {
		return fmt.Errorf("test CA: %w", err)
	}
	os.Setenv("SSL_CERT_FILE", caFile)
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tlsSrv := &http.Server{Handler: upSrv.Handler, TLSConfig: tlsConf}
	go tlsSrv.ServeTLS(tlsLn, "", "")
	b.onCleanup(func() { tlsSrv.Close() })
	tlsHost := tlsLn.Addr().String()
	tlsURL := "https://" + tlsHost
	allowed := upHost + "," + tlsHost // the bench credential's allowlist

	// One random key: the local vault's master key and the hosted store's
	// server key. Children get it in their environment.
	key := make([]byte, 32)
	rand.Read(key)
	home := filepath.Join(tmp, "home")
	os.Setenv("AGENTKEYS_MASTER_KEY", base64.StdEncoding.EncodeToString(key))
	os.Setenv("AGENTKEYS_HOME", home)
	os.Setenv("AGENTKEYS_SERVER_KEY", base64.StdEncoding.EncodeToString(key))
	// The hosted server on PostgreSQL keeps its audit journal here.
	os.Setenv("BENCH_PG_DATA_DIR", filepath.Join(tmp, "postgres-data"))
	env := os.Environ()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// serve is this program re-executed as the server role: serve ROLE ADDR [ARG].
	serve := func(role string, arg ...string) func(string) *exec.Cmd {
		return func(addr string) *exec.Cmd {
			return exec.Command(self, append([]string{"serve", role, addr}, arg...)...)
		}
	}

	localToken, err := setupLocal(ctx, home, allowed)
	if err != nil {
		return fmt.Errorf("local vault: %w", err)
	}
	how := "agentkeys up (the CLI built from this module, a subprocess)"
	if !o.inproc && o.bin == "" {
		o.bin = filepath.Join(tmp, "agentkeys")
		fmt.Fprintln(os.Stderr, "building ./cmd/agentkeys …")
		build := exec.Command("go", "build", "-o", o.bin, "./cmd/agentkeys")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build failed; serving the local proxy in-process instead")
			o.inproc = true
		}
	} else if o.bin != "" {
		how = "agentkeys up (" + o.bin + ", a subprocess)"
	}
	upCmd := func(addr string) *exec.Cmd { return exec.Command(o.bin, "up", "--listen", addr) }
	if o.inproc {
		how = "localvault + proxy.New + LoopbackOnly behind http.Server (this program re-executed)"
		upCmd = serve("local")
	}

	bareP, err := b.start(bare, serve("bare", upURL), env, tmp)
	if err != nil {
		return err
	}
	bareTLSP, err := b.start(bareTLS, serve("bare", tlsURL), env, tmp)
	if err != nil {
		return err
	}
	upP, err := b.start(up, upCmd, env, tmp)
	if err != nil {
		return err
	}
	memP, err := b.start(memory, serve("memory", allowed), env, tmp)
	if err != nil {
		return err
	}
	servers := []*hosted{{name: sqliteH, dbArg: "sqlite:" + filepath.Join(tmp, "sqlite")}}
	if o.pg != "" {
		dbURL, drop, err := pgschema.Create(ctx, o.pg, "bench_")
		if err != nil {
			return fmt.Errorf("PostgreSQL at %s (-pg \"\" skips it): %w", redact(o.pg), err)
		}
		b.onCleanup(drop)
		servers = append(servers, &hosted{name: postgres, dbArg: dbURL})
	}
	for _, h := range servers {
		if err := h.setup(ctx, allowed); err != nil {
			return fmt.Errorf("%s: set up: %w", h.name, err)
		}
		cmd := serve("hosted", h.dbArg)
		if !o.inproc {
			cmd = serveCmd(o.bin, h.dbArg)
		}
		if h.proc, err = b.start(h.name, cmd, env, tmp); err != nil {
			return err
		}
	}

	proxied := func(p *load.Proc, token, target string) load.Target {
		return load.Target{URL: "http://" + p.Addr + "/v1/proxy", Pid: p.Pid(), Hdr: http.Header{
			"Authorization": {"Bearer " + token}, agentkeys.HeaderTargetURL: {target}}}
	}
	// Base-URL mode (issue 15): the target host in the path, the token where
	// an SDK puts its API key.
	baseURL := func(p *load.Proc, token string) load.Target {
		return load.Target{URL: "http://" + p.Addr + "/to/" + upHost + "/emails", Pid: p.Pid(), Hdr: http.Header{
			"Authorization": {"Bearer " + token}}}
	}
	named := func(name string, t load.Target) load.Target { t.Name = name; return t }
	targets := []load.Target{
		{Name: direct, URL: upURL + "/emails"},
		{Name: bare, URL: "http://" + bareP.Addr + "/emails", Pid: bareP.Pid()},
		named(up, proxied(upP, localToken, upURL+"/emails")),
		named(upBase, baseURL(upP, localToken)),
		named(memory, proxied(memP, memToken, upURL+"/emails")),
		named(memBase, baseURL(memP, memToken)),
		{Name: directTLS, URL: tlsURL + "/emails"},
		{Name: bareTLS, URL: "http://" + bareTLSP.Addr + "/emails", Pid: bareTLSP.Pid()},
		named(upTLS, proxied(upP, localToken, tlsURL+"/emails")),
	}
	for _, h := range servers {
		targets = append(targets, named(h.name, proxied(h.proc, h.token, upURL+"/emails")),
			named(h.name+limitedSuffix, proxied(h.proc, h.limitedToken, upURL+"/emails")))
	}
	for _, t := range targets { // each answers correctly before anything is measured
		if _, err := load.Get(load.NewClient(1), t.Request()); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}

	fmt.Printf("agentkeys benchmark — %s, %d CPUs (%s), %s, %s\n", load.CPUModel(), runtime.NumCPU(), runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("local proxy: %s\n", how)
	if o.inproc {
		fmt.Println("hosted: server.New on server/store behind its listener, logs discarded (this program re-executed)")
	} else {
		fmt.Println("hosted: agentkeys serve --allow-loopback-targets (the same binary, a subprocess; a JSON log line per request)")
	}
	fmt.Printf("keep-alive clients, %s per target and concurrency in 4 interleaved rounds; loopback upstream answering %d bytes of JSON\n\n", o.dur, len(body))

	// Streaming first, so VmHWM is the streaming peak.
	var upPeak float64
	if o.streamSize > 0 {
		big := fmt.Sprintf("%s/big?n=%d", upURL, o.streamSize)
		streams := []load.Target{
			{Name: bare, URL: fmt.Sprintf("http://%s/big?n=%d", bareP.Addr, o.streamSize), Pid: bareP.Pid()},
			named(up, proxied(upP, localToken, big)),
		}
		fmt.Printf("streaming a %d MiB response:\n", o.streamSize>>20)
		for _, t := range streams {
			r, err := load.Stream(t, o.streamSize)
			if err != nil {
				return fmt.Errorf("stream through %s: %w", t.Name, err)
			}
			fmt.Printf("  %-20s %6.0f MiB/s   peak RSS %5.1f MiB (sampled)   VmHWM %5.1f MiB\n", t.Name, r.MiBps, r.PeakRSS, r.HWM)
			upPeak = r.HWM
		}
		fmt.Println()
	}

	if o.sse > 0 {
		fmt.Printf("server-sent events, time to the first event (%d requests one at a time, the upstream sends it at once):\n", o.sse)
		sse := []load.Target{
			{Name: direct, URL: upURL + "/sse"},
			{Name: bare, URL: "http://" + bareP.Addr + "/sse", Pid: bareP.Pid()},
			named(up, proxied(upP, localToken, upURL+"/sse")),
		}
		var directP50 time.Duration
		for _, t := range sse {
			p50, err := firstEvent(t, o.sse)
			if err != nil {
				return fmt.Errorf("sse through %s: %w", t.Name, err)
			}
			if t.Name == direct {
				directP50 = p50
			}
			fmt.Printf("  %-20s p50 %7.3f ms   added over direct %7.3f ms\n", t.Name, load.MS(p50), load.MS(p50-directP50))
		}
		fmt.Println()
	}

	results := map[string]map[int]load.Result{}
	fmt.Printf("%-20s %4s %8s %7s %7s %10s %10s %10s %6s\n", "target", "conc", "req/s", "p50 ms", "p99 ms", "proc µs/r", "pg µs/r", "all µs/r", "×bare")
	for _, c := range o.concs {
		rs, err := load.Measure(targets, c, o.dur, 4)
		if err != nil {
			return err
		}
		for i, t := range targets {
			if results[t.Name] == nil {
				results[t.Name] = map[int]load.Result{}
			}
			results[t.Name][c] = rs[i]
		}
		for i, t := range targets {
			r := rs[i]
			proc := "-"
			if t.Pid != 0 {
				proc = fmt.Sprintf("%.0f", r.ProcCPU)
			}
			fmt.Printf("%-20s %4d %8.0f %7.3f %7.3f %10s %10.0f %10.0f %6.2f\n", t.Name, c, r.RPS, load.MS(r.P50), load.MS(r.P99),
				proc, r.PostgresCPU, r.MachineCPU, r.RPS/results[bare][c].RPS)
		}
	}
	fmt.Println("(proc: the serving process; pg: every postgres process; all: the whole machine, load generator included)")

	fmt.Println("\ntargets:")
	ratio := func(name string, c int) (float64, bool) {
		r, okR := results[name][c]
		b, okB := results[bare][c]
		return r.RPS / b.RPS, okR && okB
	}
	if x, ok := ratio(up, 64); ok {
		fmt.Printf("  issue 3: agentkeys up ≥ 0.8× bare at c=64: %.2f× %s\n", x, load.Verdict(x >= 0.8))
	} else {
		fmt.Println("  issue 3: agentkeys up ≥ 0.8× bare at c=64: not measured (-c has no 64)")
	}
	if a, d := results[up][1], results[direct][1]; d.RPS > 0 {
		added := load.MS(a.P50 - d.P50)
		fmt.Printf("  issue 3: p50 added over direct at c=1 ≤ 0.5 ms: %.3f ms %s\n", added, load.Verdict(added <= 0.5))
	} else {
		fmt.Println("  issue 3: p50 added over direct at c=1: not measured (-c has no 1)")
	}
	if o.streamSize > 0 {
		fmt.Printf("  issue 3: agentkeys up peak RSS streaming %d MiB < 64 MiB: %.1f MiB %s\n", o.streamSize>>20, upPeak, load.Verdict(upPeak < 64))
	}
	for _, pair := range [][2]string{{upBase, up}, {memBase, memory}} {
		b, okB := results[pair[0]][64]
		v, okV := results[pair[1]][64]
		if !okB || !okV {
			fmt.Printf("  issue 15: %s within 3%% of /v1/proxy at c=64: not measured (-c has no 64)\n", pair[0])
			continue
		}
		x := b.RPS / v.RPS
		fmt.Printf("  issue 15: %s within 3%% of /v1/proxy at c=64: %.3f× (CPU per request %.0f vs %.0f µs) %s\n",
			pair[0], x, b.ProcCPU, v.ProcCPU, load.Verdict(x >= 0.97))
	}
	if x, ok := ratio(postgres, 64); ok {
		fmt.Printf("  issue 6: hosted on PostgreSQL ≥ 0.6× bare at c=64: %.2f× %s\n", x, load.Verdict(x >= 0.6))
	} else {
		fmt.Println("  issue 6: hosted on PostgreSQL ≥ 0.6× bare at c=64: not measured")
	}
	if x, ok := ratio(sqliteH, 64); ok {
		fmt.Printf("  (hosted on SQLite at c=64: %.2f× bare)\n", x)
	}
	for _, c := range o.concs {
		if u, b := results[upTLS][c], results[bareTLS][c]; b.RPS > 0 {
			fmt.Printf("  (https upstream, c=%d: agentkeys up %.2f× the bare proxy to the same upstream)\n", c, u.RPS/b.RPS)
		}
	}
	for _, h := range servers {
		on, okOn := results[h.name+limitedSuffix][64]
		off, okOff := results[h.name][64]
		if !okOn || !okOff {
			continue
		}
		x := on.RPS / off.RPS
		fmt.Printf("  issue 18: %s, plans on (a request limit) ≥ 0.97× plans off at c=64: %.3f× (CPU per request %.0f vs %.0f µs) %s\n",
			h.name, x, on.ProcCPU, off.ProcCPU, load.Verdict(x >= 0.97))
	}

	if o.nCreds > 0 {
		fmt.Printf("\nGET /api/v1/credentials with %d credentials (over HTTP, whole body read, 15 calls after 2 warm-up):\n", o.nCreds)
		for _, h := range servers {
			took, err := h.fill(o.nCreds)
			if err != nil {
				return fmt.Errorf("%s: fill: %w", h.name, err)
			}
			lats, size, err := h.listTimes(15)
			if err != nil {
				return fmt.Errorf("%s: list: %w", h.name, err)
			}
			lo, p50, hi, err := load.Percentiles(lats)
			if err != nil {
				return err
			}
			fmt.Printf("  %-20s p50 %6.1f ms   min %6.1f   max %6.1f   %4.1f MiB   (filled through the API in %s)   issue 6: < 100 ms %s\n",
				h.name, load.MS(p50), load.MS(lo), load.MS(hi), float64(size)/(1<<20), took.Round(100*time.Millisecond), load.Verdict(p50 < 100*time.Millisecond))
		}
	}
	return nil
}

// firstEvent requests t n times, one at a time, and returns the median
// time from sending the request to reading the end of the first event.
func firstEvent(t load.Target, n int) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	lats := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		req := t.Request()
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				resp.Body.Close()
				return 0, fmt.Errorf("no event: %w", err)
			}
			if line == "\n" {
				break
			}
		}
		lats = append(lats, time.Since(start))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, p50, _, err := load.Percentiles(lats)
	return p50, err
}

// serveCmd runs `agentkeys serve` (bin) on the hosted store named by dbArg
// ("sqlite:<dir>", or a PostgreSQL URL with its data directory in
// $BENCH_PG_DATA_DIR), with the key in AGENTKEYS_SERVER_KEY.
func serveCmd(bin, dbArg string) func(addr string) *exec.Cmd {
	return func(addr string) *exec.Cmd {
		args := []string{"serve", "--listen", addr, "--allow-loopback-targets"}
		if dir, ok := strings.CutPrefix(dbArg, "sqlite:"); ok {
			args = append(args, "--data-dir", dir)
		} else {
			args = append(args, "--database-url", dbArg, "--data-dir", os.Getenv("BENCH_PG_DATA_DIR"))
		}
		return exec.Command(bin, args...)
	}
}

// redact drops the password from a database URL for messages.
func redact(s string) string {
	if i, j := strings.Index(s, "://"), strings.LastIndex(s, "@"); i >= 0 && j > i {
		if k := strings.Index(s[i+3:j], ":"); k >= 0 {
			return s[:i+3+k] + ":xxx" + s[j:]
		}
	}
	return s
}
