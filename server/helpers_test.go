package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/internal/pgtest"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
)

// dbKind is a database the server tests run on.
type dbKind struct {
	name string
	// url returns a DatabaseURL for a fresh database ("" = SQLite).
	url func(t *testing.T) string
}

func dbKinds() []dbKind {
	return []dbKind{
		{"SQLite", func(t *testing.T) string { return "" }},
		{"PostgreSQL", func(t *testing.T) string { return pgtest.Schema(t) }},
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testkit.SyncBuffer

// testServer is a server on a real store behind httptest.
type testServer struct {
	t     *testing.T
	store *store.Store
	srv   *server.Server
	http  *httptest.Server
	logs  *syncBuffer
	url   string
}

type serverOpts struct {
	databaseURL   string // "" = SQLite in dataDir
	dataDir       string
	key           agentkeys.Key
	signupClosed  bool
	allowLoopback bool
	mailer        server.Mailer
	now           func() time.Time
	publicURL     string
	slowBody      time.Duration  // Config.SlowBodyTimeout
	webhooks      webhook.Config // delivery tuning (webhook_test.go)
	// configure, when set, adjusts the store's configuration (plans).
	configure func(*store.Config)
	billing   *server.BillingConfig
}

func newTestServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	if o.key == (agentkeys.Key{}) {
		o.key = mustKey(t)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	logs := &syncBuffer{}
	log := slog.New(server.WithRequestID(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cfg := store.Config{DatabaseURL: o.databaseURL, DataDir: o.dataDir, ServerKey: o.key, Logger: log, Now: o.now}
	if o.configure != nil {
		o.configure(&cfg)
	}
	st, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	signup := server.SignupOpen
	if o.signupClosed {
		signup = server.SignupClosed
	}
	srv, err := server.New(server.Config{Store: st, Signup: signup, AllowLoopbackTargets: o.allowLoopback, Logger: log, Mailer: o.mailer, Now: o.now, PublicURL: o.publicURL, SlowBodyTimeout: o.slowBody, Webhooks: o.webhooks, Billing: o.billing})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	return &testServer{t: t, store: st, srv: srv, http: hs, logs: logs, url: hs.URL}
}

func mustKey(t *testing.T) agentkeys.Key {
	t.Helper()
	k, err := agentkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// answer is one HTTP answer, body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a *answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// do sends one request; body may be nil, a string (sent as is) or a value
// (sent as JSON).
func (s *testServer) do(method, path, key string, body any) *answer {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the answer has the status, and for errors the seed's
// body with the code.
func (a *answer) want(t *testing.T, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d: %s", a.status, status, a.body)
	}
	if code == "" {
		return
	}
	var e struct {
		Error  string `json:"error"`
		Code   string `json:"code"`
		Status int    `json:"status"`
	}
	a.decode(t, &e)
	if e.Code != code || e.Status != status || e.Error == "" || a.header.Get(agentkeys.HeaderError) != code {
		t.Fatalf("error body = %s (X-Agentkeys-Error %q), want code %s status %d", a.body, a.header.Get(agentkeys.HeaderError), code, status)
	}
}

// signup creates a workspace over the API and returns its id and key.
func (s *testServer) signup(name string) (id, key string) {
	s.t.Helper()
	a := s.do("POST", "/api/v1/signup", "", map[string]string{
		"email": strings.ToLower(name) + "@example.com", "password": "correct horse battery", "workspace": name})
	a.want(s.t, http.StatusCreated, "")
	var out struct {
		Workspace struct{ ID, Name string } `json:"workspace"`
		APIKey    string                    `json:"apiKey"`
	}
	a.decode(s.t, &out)
	if out.Workspace.ID == "" || out.Workspace.Name != name || !agentkeys.IsWorkspaceKey(out.APIKey) {
		s.t.Fatalf("signup answer = %s", a.body)
	}
	return out.Workspace.ID, out.APIKey
}

// createCredential makes an API_KEY credential over the API.
func (s *testServer) createCredential(key, name, value string, hosts ...string) *agentkeys.Credential {
	s.t.Helper()
	a := s.do("POST", "/api/v1/credentials", key, map[string]any{"name": name, "type": "API_KEY", "value": value, "allowedHosts": hosts})
	a.want(s.t, http.StatusCreated, "")
	var c agentkeys.Credential
	a.decode(s.t, &c)
	return &c
}

func (s *testServer) createAgent(key, name string) *agentkeys.Agent {
	s.t.Helper()
	a := s.do("POST", "/api/v1/agents", key, map[string]any{"name": name})
	a.want(s.t, http.StatusCreated, "")
	var ag agentkeys.Agent
	a.decode(s.t, &ag)
	return &ag
}

func (s *testServer) assign(key, agentID, credID string) *agentkeys.Grant {
	s.t.Helper()
	a := s.do("POST", "/api/v1/agents/"+agentID+"/credentials", key, map[string]any{"credentialId": credID})
	a.want(s.t, http.StatusCreated, "")
	var g agentkeys.Grant
	a.decode(s.t, &g)
	if !agentkeys.IsProxyToken(g.ProxyToken) || g.AgentID != agentID || g.CredentialID != credID || g.CreatedAt.IsZero() {
		s.t.Fatalf("grant = %s", a.body)
	}
	return &g
}

// proxyGet sends GET through the hosted proxy.
func proxyGet(t *testing.T, base, token, credName, target string) *answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/proxy", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(agentkeys.HeaderTargetURL, target)
	if credName != "" {
		req.Header.Set(agentkeys.HeaderCredentialName, credName)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// upstream is an API on loopback that records the Authorization it got.
type upstream struct{ *testkit.Upstream }

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	return &upstream{testkit.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream ok")
	})}
}

func (u *upstream) host() string { return u.Host() }

// received is the Authorization header of every request, oldest first.
func (u *upstream) received() []string {
	var out []string
	for _, r := range u.All() {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

func storeWorkspace(email, name string) store.NewWorkspace {
	return store.NewWorkspace{Email: email, Name: name}
}
