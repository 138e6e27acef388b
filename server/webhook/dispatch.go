package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/server/store"
)

// DefaultBackoff is the wait before each retry: 1 min, 5 min, 30 min (then
// the delivery is marked failed: 4 attempts in all).
var DefaultBackoff = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute}

// Config configures a Dispatcher. Zero fields take the documented defaults.
type Config struct {
	Store *store.Store
	// Transport sends deliveries: the server's SSRF-refusing transport
	// (required). Redirects are never followed.
	Transport http.RoundTripper
	// Workers bounds the deliveries in flight (default 8); one endpoint
	// has at most one in flight.
	Workers int
	// Timeout is how long an endpoint has to answer (default 10 s).
	Timeout time.Duration
	// Backoff is the wait before each retry (default DefaultBackoff);
	// each wait gets ±20 % jitter.
	Backoff []time.Duration
	// Poll is how often the outbox is read when nothing wakes the
	// dispatcher (default 1 s); ScanEvery how often expiry is scanned
	// (default 1 min).
	Poll      time.Duration
	ScanEvery time.Duration
	// Lease is how long a claimed delivery stays reserved to this process
	// (default Timeout + 30 s): a process killed while sending leaves it due
	// again after that.
	Lease  time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Dispatcher sends the outbox's due deliveries. Several dispatchers (one
// per replica) may share one store.
type Dispatcher struct {
	cfg    Config
	client *http.Client
	wake   chan struct{}
	sem    chan struct{}
	wg     sync.WaitGroup
}

// New returns a Dispatcher over cfg.Store.
func New(cfg Config) *Dispatcher {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.ScanEvery <= 0 {
		cfg.ScanEvery = time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = cfg.Timeout + 30*time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dispatcher{
		cfg: cfg,
		client: &http.Client{
			Transport: cfg.Transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is a failure, never followed
			},
		},
		wake: make(chan struct{}, 1),
		sem:  make(chan struct{}, cfg.Workers),
	}
}

// Notify wakes the dispatcher: an event was just raised.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run sends due deliveries and scans for expiring credentials until ctx
// ends, then waits for the deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) {
	defer d.wg.Wait()
	poll := time.NewTicker(d.cfg.Poll)
	defer poll.Stop()
	scan := time.NewTicker(d.cfg.ScanEvery)
	defer scan.Stop()
	d.scan(ctx)
	for {
		d.dispatch(ctx)
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-d.wake:
		case <-scan.C:
			d.scan(ctx)
		}
	}
}

func (d *Dispatcher) scan(ctx context.Context) {
	n, err := d.cfg.Store.ScanExpiry(ctx)
	if err != nil && ctx.Err() == nil {
		d.cfg.Logger.Warn("webhooks: expiry scan failed", "error", agentkeys.ErrorMessage(err))
	}
	if n > 0 {
		d.cfg.Logger.Info("webhooks: credential expiry events raised", "count", n)
	}
}

// dispatch claims as many due deliveries as there are free workers and
// sends each in its own goroutine.
func (d *Dispatcher) dispatch(ctx context.Context) {
	free := cap(d.sem) - len(d.sem)
	if free == 0 || ctx.Err() != nil {
		return
	}
	claims, err := d.cfg.Store.ClaimDeliveries(ctx, free, d.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("webhooks: claiming deliveries failed", "error", agentkeys.ErrorMessage(err))
		}
		return
	}
	for _, c := range claims {
		d.sem <- struct{}{}
		d.wg.Add(1)
		go func() {
			defer func() { <-d.sem; d.wg.Done(); d.Notify() }()
			d.deliver(context.WithoutCancel(ctx), c)
		}()
	}
}

// deliver sends one attempt and records it.
func (d *Dispatcher) deliver(ctx context.Context, c *store.Claim) {
	r := d.send(ctx, c)
	if err := d.cfg.Store.FinishAttempt(ctx, c, r, d.jittered()); err != nil {
		d.cfg.Logger.Warn("webhooks: recording an attempt failed; the delivery is retried when its lease runs out",
			"delivery", c.DeliveryID, "error", agentkeys.ErrorMessage(err))
	}
	d.cfg.Logger.Info("webhook delivery", "delivery", c.DeliveryID, "event", c.EventID, "webhook", c.WebhookID,
		"attempt", c.Attempt, "status", r.StatusCode, "ok", r.OK, "duration_ms", r.Duration.Milliseconds(), "error", r.Error)
}

// jittered is the backoff with ±20 % jitter on each wait.
func (d *Dispatcher) jittered() []time.Duration {
	out := make([]time.Duration, len(d.cfg.Backoff))
	for i, b := range d.cfg.Backoff {
		out[i] = time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
	}
	return out
}

// send makes one attempt: a 2xx within the timeout is success.
func (d *Dispatcher) send(ctx context.Context, c *store.Claim) store.AttemptResult {
	start := d.cfg.Now()
	r := store.AttemptResult{At: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		r.Error = "bad endpoint url"
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agentkeys-webhooks/1")
	req.Header.Set(HeaderDeliveryAttempt, fmt.Sprint(c.Attempt))
	Sign(req.Header, c.Secret, c.EventID, start, c.Body)
	t0 := time.Now()
	resp, err := d.client.Do(req)
	r.Duration = time.Since(t0)
	if err != nil {
		r.Error = describe(err, d.cfg.Timeout)
		return r
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r.StatusCode = resp.StatusCode
	r.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	if !r.OK {
		r.Error = fmt.Sprintf("the endpoint answered HTTP %d", resp.StatusCode)
	}
	return r
}

// describe is a delivery error for the attempts list: what happened, with
// no internals beyond the refused address.
func describe(err error, timeout time.Duration) string {
	var ae *proxy.AddressError
	switch {
	case errors.As(err, &ae):
		return "refused: " + ae.Error()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return "could not reach the endpoint: " + err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
