// Package load is the benchmark's load generator and measurement: keep-alive
// HTTP clients driving targets in interleaved rounds (latency percentiles,
// throughput, the CPU a serving process, the local PostgreSQL server and the
// whole machine spend per request), a streamed download sampling a
// process's RSS, and the server processes under test (Proc).
package load

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one thing to send GET requests to.
type Target struct {
	Name string
	URL  string
	Hdr  http.Header
	Pid  int // the serving process measured for CPU (0: none, e.g. direct)
}

// Request is a fresh GET of t.
func (t Target) Request() *http.Request {
	req, _ := http.NewRequest(http.MethodGet, t.URL, nil)
	for k, v := range t.Hdr {
		req.Header[k] = v
	}
	return req
}

// NewClient is a keep-alive client holding at most conc connections.
func NewClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
}

// Get sends req once with client and reads the whole body; any status but
// 200 is an error quoting the start of the body.
func Get(client *http.Client, req *http.Request) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return b, err
}

// Result is what a target did at one concurrency.
type Result struct {
	RPS      float64
	P50, P99 time.Duration
	// CPU per request, in µs: the target's serving process, every postgres
	// process, the whole machine (all CPUs, the load generator included).
	ProcCPU, PostgresCPU, MachineCPU float64
}

// Measure drives every target with conc keep-alive clients: a 300 ms
// warm-up each, then rounds rounds in turn of dur/rounds each, so a
// neighbour's burst of load on a shared machine hits them all alike. More
// than 1% failed requests is an error.
func Measure(targets []Target, conc int, dur time.Duration, rounds int) ([]Result, error) {
	loaders := make([]*loader, len(targets))
	for i, t := range targets {
		loaders[i] = &loader{t: t, conc: conc, client: NewClient(conc)}
		loaders[i].round(300*time.Millisecond, false)
	}
	for range rounds {
		for _, l := range loaders {
			l.round(dur/time.Duration(rounds), true)
		}
	}
	res := make([]Result, len(targets))
	for i, l := range loaders {
		r, err := l.result()
		if err != nil {
			return nil, fmt.Errorf("%s c=%d: %w", l.t.Name, conc, err)
		}
		res[i] = r
	}
	return res, nil
}

// loader accumulates what conc clients did against one target over rounds.
type loader struct {
	t                Target
	conc             int
	client           *http.Client
	n, errs          int64
	firstErr         error
	elapsed          time.Duration
	cpu, pg, machine time.Duration
	lats             []time.Duration
}

// round runs the clients for d; with record false it only warms up.
func (l *loader) round(d time.Duration, record bool) {
	var n, errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, l.conc)
	cpu0, pg0, mach0 := ProcCPU(l.t.Pid), PostgresCPU(), MachineCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range l.conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := l.client.Do(l.t.Request())
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				n.Add(1)
				lats[i] = append(lats[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	if !record {
		return
	}
	l.elapsed += time.Since(start)
	l.cpu += ProcCPU(l.t.Pid) - cpu0
	l.pg += PostgresCPU() - pg0
	l.machine += MachineCPU() - mach0
	l.n += n.Load()
	l.errs += errs.Load()
	if err, ok := firstErr.Load().(error); ok && l.firstErr == nil {
		l.firstErr = err
	}
	l.lats = append(l.lats, slices.Concat(lats...)...)
}

func (l *loader) result() (Result, error) {
	defer l.client.CloseIdleConnections()
	if l.n == 0 {
		return Result{}, fmt.Errorf("no request succeeded (first error: %v)", l.firstErr)
	}
	if l.errs > l.n/100 {
		return Result{}, fmt.Errorf("%d of %d requests failed (first: %v)", l.errs, l.n+l.errs, l.firstErr)
	}
	slices.Sort(l.lats)
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(l.n) }
	return Result{
		RPS:         float64(l.n) / l.elapsed.Seconds(),
		P50:         l.lats[len(l.lats)/2],
		P99:         l.lats[len(l.lats)*99/100],
		ProcCPU:     perReq(l.cpu),
		PostgresCPU: perReq(l.pg),
		MachineCPU:  perReq(l.machine),
	}, nil
}

// StreamResult is one streamed download.
type StreamResult struct {
	MiBps   float64
	PeakRSS float64 // MiB, sampled every 10 ms
	HWM     float64 // MiB, the kernel's VmHWM after the download
}

// Stream downloads t, which must answer size bytes, sampling the RSS of
// t.Pid meanwhile.
func Stream(t Target, size int64) (StreamResult, error) {
	done := make(chan struct{})
	var peak float64
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, _ := ProcMem(t.Pid); rss > peak {
				peak = rss
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	n, err := download(t)
	elapsed := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return StreamResult{}, err
	}
	if n != size {
		return StreamResult{}, fmt.Errorf("got %d bytes, want %d", n, size)
	}
	_, hwm, err := ProcMem(t.Pid)
	if err != nil {
		return StreamResult{}, err
	}
	return StreamResult{MiBps: float64(n) / (1 << 20) / elapsed.Seconds(), PeakRSS: peak, HWM: hwm}, nil
}

func download(t Target) (int64, error) {
	client := NewClient(1)
	defer client.CloseIdleConnections()
	resp, err := client.Do(t.Request())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.CopyBuffer(io.Discard, resp.Body, make([]byte, 256<<10))
}

// Percentiles sorts lats and returns its minimum, median and maximum.
func Percentiles(lats []time.Duration) (lo, p50, hi time.Duration, err error) {
	if len(lats) == 0 {
		return 0, 0, 0, errors.New("no samples")
	}
	slices.Sort(lats)
	return lats[0], lats[len(lats)/2], lats[len(lats)-1], nil
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Verdict is "(met)" or "(MISSED)".
func Verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}
