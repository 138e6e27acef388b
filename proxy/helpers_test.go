package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// memBackend is an in-memory agentkeys.ProxyBackend: a real implementation
// of the interface with maps and a mutex, recording audit rows.
type memBackend struct {
	mu           sync.Mutex
	wsID         string
	wsKey        string
	creds        map[string]*agentkeys.Credential // by lower-case name
	secrets      map[string]agentkeys.Secret      // by credential id
	grants       map[string]*agentkeys.Route      // by token hash
	rows         map[string]*agentkeys.AuditEvent // by event id
	order        []string
	failBegin    bool
	failOpen     error // OpenSecret fails with it when set
	openedSecret int
	ended        int
}

var _ agentkeys.ProxyBackend = (*memBackend)(nil)

func newMemBackend() *memBackend {
	return &memBackend{
		wsID:    "ws_test",
		wsKey:   agentkeys.NewWorkspaceKey(),
		creds:   map[string]*agentkeys.Credential{},
		secrets: map[string]agentkeys.Secret{},
		grants:  map[string]*agentkeys.Route{},
		rows:    map[string]*agentkeys.AuditEvent{},
	}
}

// addCredential stores a credential; hosts are normalised as a vault would.
func (b *memBackend) addCredential(tb testing.TB, name string, t agentkeys.CredentialType, hosts []string, s agentkeys.Secret) *agentkeys.Credential {
	tb.Helper()
	in := &agentkeys.CredentialInput{Name: name, Type: t, AllowedHosts: hosts, Secret: s}
	if err := in.Normalize(); err != nil {
		tb.Fatalf("credential %s: %v", name, err)
	}
	c := &agentkeys.Credential{ID: agentkeys.NewID("cred"), Name: in.Name, Type: in.Type, AllowedHosts: in.AllowedHosts}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creds[strings.ToLower(c.Name)] = c
	b.secrets[c.ID] = in.Secret
	return c
}

// assign returns a fresh pxr_ token for agentName × the credential.
func (b *memBackend) assign(c *agentkeys.Credential, agentName string) string {
	tok := agentkeys.NewProxyToken()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.grants[agentkeys.HashToken(tok)] = &agentkeys.Route{WorkspaceID: b.wsID, AgentID: agentkeys.NewID("agent"), AgentName: agentName, Credential: c}
	return tok
}

func (b *memBackend) revoke(tok string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.grants, agentkeys.HashToken(tok))
}

func (b *memBackend) Authorize(_ context.Context, token, name string) (*agentkeys.Route, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case strings.HasPrefix(token, agentkeys.ProxyTokenPrefix):
		if r, ok := b.grants[agentkeys.HashToken(token)]; ok {
			cp := *r
			return &cp, nil
		}
	case strings.HasPrefix(token, agentkeys.WorkspaceKeyPrefix):
		if !agentkeys.EqualHash(agentkeys.HashToken(token), agentkeys.HashToken(b.wsKey)) {
			break
		}
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "name the credential with X-Credential-Name")
		}
		c, ok := b.creds[strings.ToLower(name)]
		if !ok {
			return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential named %q", name)
		}
		return &agentkeys.Route{WorkspaceID: b.wsID, Credential: c}, nil
	}
	return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "invalid or revoked token")
}

func (b *memBackend) RouteByName(_ context.Context, name string) (*agentkeys.Route, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.creds[strings.ToLower(name)]
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential named %q", name)
	}
	return &agentkeys.Route{WorkspaceID: b.wsID, Credential: c}, nil
}

func (b *memBackend) OpenSecret(_ context.Context, r *agentkeys.Route) (*agentkeys.Secret, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openedSecret++
	if b.failOpen != nil {
		return nil, b.failOpen
	}
	s, ok := b.secrets[r.Credential.ID]
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "credential deleted")
	}
	return &s, nil
}

func (b *memBackend) BeginAudit(_ context.Context, e *agentkeys.AuditEvent) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failBegin {
		return errors.New("disk full")
	}
	cp := *e
	if _, ok := b.rows[e.ID]; !ok {
		b.order = append(b.order, e.ID)
	}
	b.rows[e.ID] = &cp
	return nil
}

func (b *memBackend) EndAudit(_ context.Context, e *agentkeys.AuditEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended++
	cp := *e
	if _, ok := b.rows[e.ID]; !ok {
		b.order = append(b.order, e.ID)
	}
	b.rows[e.ID] = &cp
}

// auditRows returns copies of the rows, oldest first.
func (b *memBackend) auditRows() []agentkeys.AuditEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]agentkeys.AuditEvent, 0, len(b.order))
	for _, id := range b.order {
		out = append(out, *b.rows[id])
	}
	return out
}

// rowByRequestID returns the completed audit row of a request, waiting a
// little: EndAudit runs after the last byte has reached the agent.
func (b *memBackend) rowByRequestID(tb testing.TB, id string) agentkeys.AuditEvent {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range b.auditRows() {
			if r.RequestID == id && r.Decision != agentkeys.DecisionPending {
				return r
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no completed audit row with request id %q (rows: %+v)", id, b.auditRows())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (b *memBackend) secretsOpened() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openedSecret
}

func (b *memBackend) setFailBegin(v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failBegin = v
}

// received is one request as an upstream saw it.
type received struct {
	Method string
	URL    *url.URL
	Host   string
	Header http.Header
	Body   []byte
}

// upstream is a real loopback HTTP server that records what it received
// and counts the connections made to it.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	conns atomic.Int64
}

// newUpstream starts an upstream running h after recording each request
// (the body is read first, so h sees an empty body). h may be nil: 200 "ok".
func newUpstream(tb testing.TB, h http.HandlerFunc) *upstream {
	tb.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(u.record(h))
	u.Server.Config.ConnState = u.connState
	u.Start()
	tb.Cleanup(u.Close)
	return u
}

// newTLSUpstream is newUpstream over TLS with httptest's (untrusted) cert.
func newTLSUpstream(tb testing.TB, h http.HandlerFunc) *upstream {
	tb.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(u.record(h))
	u.Server.Config.ConnState = u.connState
	u.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	u.StartTLS()
	tb.Cleanup(u.Close)
	return u
}

func (u *upstream) connState(_ net.Conn, s http.ConnState) {
	if s == http.StateNew {
		u.conns.Add(1)
	}
}

func (u *upstream) record(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, received{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		if h == nil {
			io.WriteString(w, "ok")
			return
		}
		h(w, r)
	}
}

// hostPort is the upstream's 127.0.0.1:port, for allowlists.
func (u *upstream) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(u.URL, "http://"), "https://")
}

func (u *upstream) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.reqs...)
}

func (u *upstream) last(tb testing.TB) received {
	tb.Helper()
	rs := u.requests()
	if len(rs) == 0 {
		tb.Fatal("upstream received no request")
	}
	return rs[len(rs)-1]
}

// logBuffer collects slog output for canary checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testProxy is the handler behind a real loopback http.Server.
type testProxy struct {
	*httptest.Server
	H    *proxy.Handler
	Logs *logBuffer
}

func newTestProxy(tb testing.TB, b agentkeys.ProxyBackend, cfg proxy.Config) *testProxy {
	tb.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := proxy.New(b, cfg)
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	// The agent sees the proxy's answers as they are: no redirect following.
	srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &testProxy{Server: srv, H: h, Logs: logs}
}

// call is one agent request to /v1/proxy.
type call struct {
	Method string // inbound method; "" GET
	Token  string // sent as Authorization: Bearer <Token> unless "" or Auth is set
	Auth   string // raw Authorization header, when set
	Target string
	Header http.Header
	Body   io.Reader
}

func (p *testProxy) do(tb testing.TB, c call) *http.Response {
	tb.Helper()
	m := c.Method
	if m == "" {
		m = http.MethodGet
	}
	req, err := http.NewRequest(m, p.URL+"/v1/proxy", c.Body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vv := range c.Header {
		for _, v := range vv {
			req.Header.Add(k, v)
		}
	}
	if c.Target != "" {
		req.Header.Add(agentkeys.HeaderTargetURL, c.Target)
	}
	switch {
	case c.Auth != "":
		req.Header.Set("Authorization", c.Auth)
	case c.Token != "":
		req.Header.Add("Authorization", "Bearer "+c.Token)
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		tb.Fatalf("proxy request: %v", err)
	}
	return resp
}

// readAll reads and closes a response body.
func readAll(tb testing.TB, resp *http.Response) []byte {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return b
}

type errorJSON struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Status int    `json:"status"`
}

// wantProxyError checks a proxy-made error answer: status, X-Agentkeys-Error,
// JSON body and request id. It returns the body.
func wantProxyError(tb testing.TB, resp *http.Response, status int, code string) errorJSON {
	tb.Helper()
	body := readAll(tb, resp)
	if resp.StatusCode != status {
		tb.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get(agentkeys.HeaderError); got != code {
		tb.Fatalf("%s = %q, want %q (body %s)", agentkeys.HeaderError, got, code, body)
	}
	if resp.Header.Get(agentkeys.HeaderRequestID) == "" {
		tb.Fatalf("no %s on an error answer", agentkeys.HeaderRequestID)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("Content-Type = %q", ct)
	}
	var e errorJSON
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("error body is not JSON: %s", body)
	}
	if e.Code != code || e.Status != status || e.Error == "" {
		tb.Fatalf("error body = %+v, want code %s status %d and a message", e, code, status)
	}
	return e
}

// recordingTransport answers every request with 200 "ok" without dialling,
// recording the outbound requests (method, URL, header).
type recordingTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	cp := &http.Request{Method: r.Method, URL: r.URL, Header: r.Header.Clone(), Host: r.Host}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, cp)
	rt.mu.Unlock()
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("ok")),
		ContentLength: 2, Request: r,
	}, nil
}

func (rt *recordingTransport) last() *http.Request {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.reqs) == 0 {
		return &http.Request{URL: &url.URL{}}
	}
	return rt.reqs[len(rt.reqs)-1]
}
