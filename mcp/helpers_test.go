package mcp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentkeys/agentkeys/internal/testkit"
	akmcp "github.com/agentkeys/agentkeys/mcp"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = testkit.SyncBuffer

// mustOpenVault creates a vault in a temp dir, unlocked by a random master
// key, joined to the real proxy.
func mustOpenVault(tb testing.TB) *testkit.Vault {
	tb.Helper()
	return testkit.OpenVault(tb, testkit.VaultOptions{})
}

// env is one MCP server over a fresh vault, with an in-process mcp-go client.
// Every result the client receives is recorded, so tests can check that a
// canary value never came back.
type env struct {
	t      *testing.T
	vault  *testkit.Vault
	server *akmcp.Server
	client *client.Client
	logs   *syncBuffer

	mu      sync.Mutex
	results []string
}

func newEnv(t *testing.T, opts akmcp.Options) *env {
	t.Helper()
	e := &env{t: t, vault: mustOpenVault(t), logs: &syncBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := akmcp.New(e.vault, opts)
	if err != nil {
		t.Fatalf("mcp.New: %v", err)
	}
	e.server = srv
	e.client = startClient(t, srv)
	return e
}

func startClient(t *testing.T, srv *akmcp.Server) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(srv.MCPServer())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "agentkeys-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// call calls a tool and fails the test on a protocol error: every failure
// must be a tool result.
func (e *env) call(name string, args map[string]any) *mcp.CallToolResult {
	e.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := e.client.CallTool(context.Background(), req)
	if err != nil {
		e.t.Fatalf("%s: protocol error %v (failures must be isError results)", name, err)
	}
	b, _ := json.Marshal(res)
	e.mu.Lock()
	e.results = append(e.results, string(b))
	e.mu.Unlock()
	return res
}

// ok calls a tool that must succeed and returns its structured content.
func (e *env) ok(name string, args map[string]any) map[string]any {
	e.t.Helper()
	res := e.call(name, args)
	if res.IsError {
		e.t.Fatalf("%s(%v): unexpected error: %s", name, redactArgs(args), text(res))
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		e.t.Fatalf("%s: structured content is %T, want an object", name, res.StructuredContent)
	}
	if text(res) == "" {
		e.t.Fatalf("%s: no text fallback", name)
	}
	return m
}

// fail calls a tool that must fail and checks the message holds each want.
func (e *env) fail(name string, args map[string]any, want ...string) string {
	e.t.Helper()
	res := e.call(name, args)
	msg := text(res)
	e.t.Logf("%s → %s", name, msg)
	if !res.IsError {
		e.t.Fatalf("%s: want isError, got success: %s", name, msg)
	}
	if res.StructuredContent != nil {
		e.t.Errorf("%s: error result carries structured content %v", name, res.StructuredContent)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			e.t.Errorf("%s: error %q does not contain %q", name, msg, w)
		}
	}
	return msg
}

// assertNeverSeen fails if secret appears in any result or log line so far.
func (e *env) assertNeverSeen(secret string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.results {
		if strings.Contains(r, secret) {
			e.t.Errorf("a tool result contains the credential value: %s", r)
		}
	}
	if strings.Contains(e.logs.String(), secret) {
		e.t.Errorf("the server log contains the credential value")
	}
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func redactArgs(args map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range args {
		switch k {
		case "value", "password", "headers":
			out[k] = "…"
		default:
			out[k] = v
		}
	}
	return out
}

// upstream is a loopback API that records what it received.
type upstream struct{ *testkit.Upstream }

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	return &upstream{testkit.NewUpstream(t, h)}
}

// host is the upstream's host:port, for allowedHosts.
func (u *upstream) host() string { return u.Host() }

func (u *upstream) last(t *testing.T) (testkit.Received, []byte) {
	t.Helper()
	r := u.Last(t)
	return r, []byte(r.Body)
}

func (u *upstream) count() int { return u.Count() }

// list returns the names of the items under key of a list tool's result.
func names(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	items, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%s is %T, want an array", key, m[key])
	}
	var out []string
	for _, it := range items {
		out = append(out, it.(map[string]any)["name"].(string))
	}
	return out
}

func newTestLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
