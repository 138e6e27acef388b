// Command dashboard measures the web dashboard with a full workspace, in
// one run, on loopback:
//
//	go run ./bench/dashboard [-n 10000] [-agents 100] [-audit 5000] [-k 40] [-page-time 10s] [-pg URL] [-timeout 15m]
//
// For SQLite (a fresh data directory) and PostgreSQL (-pg, default
// $AGENTKEYS_TEST_DATABASE_URL, in a schema of its own dropped at the end;
// skipped when empty) it opens server/store, creates a workspace whose
// owner has a password, fills it through the store — -n credentials,
// -agents agents holding three credentials each, -audit audit rows — and
// serves the server package (REST API and dashboard) on 127.0.0.1 in this
// process. It logs in through the dashboard's form, then finds the pages
// the way a browser would: breadth first from /credentials, every
// same-origin GET link (<a href>) of every page, never /logout or an
// asset, one page per shape (one credential's edit page stands for all;
// see shape). Each page is fetched -k times after two warm-ups, one at a
// time (fewer, but at least 3, for a page whose samples take over
// -page-time in all: a slow page does not hold the run up); the table shows the server's time (the handler, body written)
// p50 and p99, the HTML's size, and the first-load weight (the HTML and
// every stylesheet, script and icon it links, uncompressed), with
// "met"/"MISSED" against the targets: under 50 ms (p50) and
// under 150 KiB. It exits 1 if a target is missed or a page fails, 2 on a
// setup error. -timeout (default 15m) ends a run that hangs, cleaning up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/bench/internal/load"
	"github.com/agentkeys/agentkeys/bench/internal/pgschema"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// The targets.
const (
	maxServerTime = 50 * time.Millisecond
	maxWeight     = 150 << 10
	maxPages      = 60 // a crawl finding more has a link making pages without end
	password      = "correct horse battery"
)

func main() {
	n := flag.Int("n", 10000, "credentials in the workspace")
	agents := flag.Int("agents", 100, "agents, each holding three credentials")
	audits := flag.Int("audit", 5000, "audit rows")
	k := flag.Int("k", 40, "timed GETs of each page")
	pageTime := flag.Duration("page-time", 10*time.Second, "stop timing a page after this long (and 3 GETs)")
	pg := flag.String("pg", os.Getenv("AGENTKEYS_TEST_DATABASE_URL"), "PostgreSQL URL (a schema of its own is made and dropped); empty skips PostgreSQL")
	timeout := flag.Duration("timeout", 15*time.Minute, "end the run after this long")
	flag.Parse()

	// Interrupted or timed out, the run stops and still removes its data
	// directory and PostgreSQL schema.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sig, *timeout)
	defer cancel()
	fmt.Printf("dashboard pages with %d credentials, %d agents, %d audit rows; %d GETs a page, one at a time, on loopback\n", *n, *agents, *audits, *k)
	fmt.Printf("targets: p50 server time < %v; first-load weight < %d bytes (150 KiB)\n", maxServerTime, maxWeight)
	backends := []string{"SQLite"}
	if *pg != "" {
		backends = append(backends, "PostgreSQL")
	}
	missed := false
	for _, b := range backends {
		rows, err := run(ctx, b, *pg, *n, *agents, *audits, *k, *pageTime)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dashboard bench, %s: %v\n", b, err)
			stop()
			cancel()
			os.Exit(2) // run removed what it made
		}
		missed = printTable(b, rows) || missed
	}
	if missed {
		os.Exit(1)
	}
}

// row is one page's figures.
type row struct {
	page        string
	samples     int
	p50, p99    time.Duration
	html, first int
	err         string
}

// printTable writes rows as a table and reports whether a target was missed.
func printTable(backend string, rows []row) bool {
	fmt.Printf("\n%s\n%-36s %4s %9s %9s %10s %12s  %s\n", backend, "page", "n", "p50 ms", "p99 ms", "HTML B", "first-load B", "verdict")
	missed := false
	for _, r := range rows {
		if r.err != "" {
			fmt.Printf("%-36s %s\n", r.page, r.err)
			missed = true
			continue
		}
		ok := r.p50 < maxServerTime && r.first < maxWeight
		missed = missed || !ok
		verdict := "met"
		if !ok {
			verdict = "MISSED"
			if r.p50 >= maxServerTime {
				verdict += " (time)"
			}
			if r.first >= maxWeight {
				verdict += " (weight)"
			}
		}
		fmt.Printf("%-36s %4d %9.2f %9.2f %10d %12d  %s\n", r.page, r.samples, load.MS(r.p50), load.MS(r.p99), r.html, r.first, verdict)
	}
	return missed
}

// run measures every page on one backend.
func run(ctx context.Context, backend, pgURL string, n, agents, audits, k int, pageTime time.Duration) ([]row, error) {
	tmp, err := os.MkdirTemp("", "agentkeys-dashboard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	key, err := agentkeys.NewKey()
	if err != nil {
		return nil, err
	}
	cfg := store.Config{ServerKey: key, DataDir: tmp}
	if backend == "PostgreSQL" {
		u, drop, err := pgschema.Create(ctx, pgURL, "bench_dash_")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL schema: %w", err)
		}
		defer drop()
		cfg.DatabaseURL = u
	}
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	t0 := time.Now()
	email, err := fill(ctx, st, n, agents, audits)
	if err != nil {
		return nil, fmt.Errorf("fill the workspace: %w", err)
	}
	fmt.Printf("\n%s: workspace filled through the store in %.1f s\n", backend, time.Since(t0).Seconds())

	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	var last atomic.Int64 // the handler's time of the last request, ns
	timed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		srv.Handler().ServeHTTP(w, r)
		last.Store(int64(time.Since(start)))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: timed, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	c := &client{base: "http://" + ln.Addr().String()}
	if err := c.login(ctx, email); err != nil {
		return nil, err
	}
	pages, err := c.crawl(ctx)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, p := range pages {
		r := row{page: p.shape}
		var lats []time.Duration
		start := time.Now()
		for i := 0; i < k+2 && (len(lats) < 3 || time.Since(start) < pageTime); i++ {
			b, status, err := c.get(ctx, p.url)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("HTTP %d", status)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("the run ended (-timeout or a signal): %w", ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
				err = fmt.Errorf("no answer within %v", c.c.Timeout)
			}
			if err != nil {
				r.err = err.Error() + " (MISSED)"
				break
			}
			if i >= 2 {
				lats = append(lats, time.Duration(last.Load()))
			}
			r.html = len(b)
		}
		if r.err == "" {
			slices.Sort(lats)
			r.samples, r.p50, r.p99 = len(lats), lats[len(lats)/2], lats[min(len(lats)-1, len(lats)*99/100)]
			r.first = r.html + p.assets
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// fill creates a workspace with a password-holding owner and fills it
// through the store: n credentials (8 writers), agents agents holding
// three credentials each, audits audit rows (queued, then imported by
// ListAudit). It returns the owner's email.
func fill(ctx context.Context, st *store.Store, n, agents, audits int) (string, error) {
	const email = "bench@example.com"
	ws, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: email, Password: password, RequirePassword: true, Name: "Bench"})
	if err != nil {
		return "", err
	}
	v := st.Workspace(ws.ID)
	creds := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: fmt.Sprintf("cred-%05d", i), Type: agentkeys.APIKey,
					AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: fmt.Sprintf("bench-value-%d", i)}})
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				creds[i] = c.ID
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return "", firstErr
	}
	var agentIDs []string
	for i := range agents {
		a, err := v.CreateAgent(ctx, fmt.Sprintf("agent-%03d", i))
		if err != nil {
			return "", err
		}
		agentIDs = append(agentIDs, a.ID)
		for j := range min(3, n) {
			if _, err := v.AssignCredential(ctx, a.ID, creds[(i*3+j)%n]); err != nil {
				return "", err
			}
		}
	}
	decisions := []string{agentkeys.DecisionAllowed, agentkeys.DecisionDenied}
	for i := range audits {
		e := &agentkeys.AuditEvent{Method: "POST", Host: "api.example.com", Path: "/emails", Status: 200, Decision: decisions[i%len(decisions)]}
		if len(agentIDs) > 0 {
			e.AgentID = agentIDs[i%len(agentIDs)]
		}
		if n > 0 {
			e.CredentialID = creds[i%n]
		}
		v.EndAudit(ctx, e)
	}
	// A read imports what the journal holds.
	if _, err := v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1}); err != nil {
		return "", err
	}
	return email, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// client is a cookie-keeping HTTP client of the dashboard on loopback.
type client struct {
	base string
	c    *http.Client
}

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	hrefRE  = regexp.MustCompile(`<a\b[^>]*\bhref="([^"]*)"`)
	assetRE = regexp.MustCompile(`<(?:link|script|img)\b[^>]*\b(?:href|src)="(/assets/[^"]*)"`)
)

func (c *client) get(ctx context.Context, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// login signs email in through the dashboard's form.
func (c *client) login(ctx context.Context, email string) error {
	jar, _ := cookiejar.New(nil)
	c.c = &http.Client{Jar: jar, Timeout: time.Minute}
	b, _, err := c.get(ctx, c.base+"/login")
	if err != nil {
		return err
	}
	m := csrfRE.FindSubmatch(b)
	if m == nil {
		return errors.New("the log-in page has no CSRF token")
	}
	form := url.Values{"email": {email}, "password": {password}, "csrf": {string(m[1])}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Request.URL.Path, "/login") {
		return fmt.Errorf("log in: HTTP %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return nil
}

// page is one page the crawl found: its URL, shape, and the size of the
// assets it links.
type page struct {
	url, shape string
	assets     int
}

// crawl finds the dashboard's pages: breadth first from /credentials,
// following every same-origin <a href> — not /logout, not /assets/ — and
// visiting one URL per shape. A page answering other than 200 is an error.
func (c *client) crawl(ctx context.Context) ([]page, error) {
	base, _ := url.Parse(c.base)
	start, _ := url.Parse(c.base + "/credentials")
	queue := []*url.URL{start}
	done := map[string]bool{}
	assetSize := map[string]int{}
	var pages []page
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if done[shape(u)] {
			continue
		}
		done[shape(u)] = true
		if len(done) > maxPages {
			return nil, fmt.Errorf("the crawl found more than %d pages; is a link making new ones without end?", maxPages)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		resp, err := c.c.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		at := resp.Request.URL // after redirects
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", at.RequestURI(), resp.StatusCode)
		}
		sh := shape(at)
		if sh != shape(u) {
			if done[sh] {
				continue
			}
			done[sh] = true
		}
		p := page{url: at.String(), shape: sh}
		for _, m := range assetRE.FindAllSubmatch(b, -1) {
			a := html.UnescapeString(string(m[1]))
			if _, ok := assetSize[a]; !ok {
				ab, status, err := c.get(ctx, c.base+a)
				if err != nil || status != http.StatusOK {
					return nil, fmt.Errorf("%s: asset %s: HTTP %d %v", sh, a, status, err)
				}
				assetSize[a] = len(ab)
			}
			p.assets += assetSize[a]
		}
		pages = append(pages, p)
		for _, m := range hrefRE.FindAllSubmatch(b, -1) {
			next, err := at.Parse(html.UnescapeString(string(m[1])))
			if err != nil || next.Host != base.Host || next.Scheme != base.Scheme || next.Path == "/logout" || strings.HasPrefix(next.Path, "/assets/") {
				continue
			}
			next.Fragment = ""
			if !done[shape(next)] {
				queue = append(queue, next)
			}
		}
	}
	sort.SliceStable(pages, func(i, j int) bool { return pages[i].shape < pages[j].shape })
	return pages, nil
}

var idLike = regexp.MustCompile(`\d`)
var word = regexp.MustCompile(`^[A-Za-z_-]{1,32}$`)

// shape names a page for the crawl (as e2e.mjs does): the path with
// ID-like segments (a digit, 8 characters or more) as {id}, and the
// query's keys with their values kept only when they are words
// (type=COOKIE), not numbers, cursors or tokens.
func shape(u *url.URL) string {
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		if len(s) >= 8 && idLike.MatchString(s) {
			segs[i] = "{id}"
		}
	}
	var q []string
	for k, vs := range u.Query() {
		for _, v := range vs {
			if !word.MatchString(v) {
				v = "*"
			}
			q = append(q, k+"="+v)
		}
	}
	sort.Strings(q)
	s := strings.Join(segs, "/")
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}
