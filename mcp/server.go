// Package mcp is the Model Context Protocol server of agentkeys: it exposes an
// agentkeys.Vault — credentials, agents and the proxy — as eight MCP tools, so
// Claude Desktop, Cursor, Claude Code, VS Code and other MCP clients can manage
// and use credentials without ever seeing a credential value.
//
// The tools are the seed's: list_credentials, create_credential,
// delete_credential, list_agents, create_agent, delete_agent,
// assign_credential and proxy_request. Every tool result carries structured
// content (matching the tool's output schema) and a text fallback. Failures
// are tool results with isError set and a message that says what to do next;
// they are never protocol errors, and no message ever carries a credential
// value. The server is built on github.com/mark3labs/mcp-go and speaks over
// stdio (ServeStdio): protocol on stdout only, logs on the Logger.
package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentkeys/agentkeys"
)

// Tool names, exactly as the seed documents them.
const (
	ToolListCredentials  = "list_credentials"
	ToolCreateCredential = "create_credential"
	ToolDeleteCredential = "delete_credential"
	ToolUpdateCredential = "update_credential"
	ToolListAgents       = "list_agents"
	ToolCreateAgent      = "create_agent"
	ToolDeleteAgent      = "delete_agent"
	ToolAssignCredential = "assign_credential"
	ToolProxyRequest     = "proxy_request"
)

// ToolNames lists every tool, in the seed's order (tools/list shows them
// sorted by name).
var ToolNames = []string{
	ToolListCredentials, ToolCreateCredential, ToolDeleteCredential, ToolUpdateCredential,
	ToolListAgents, ToolCreateAgent, ToolDeleteAgent,
	ToolAssignCredential, ToolProxyRequest,
}

// ReadOnlyToolNames are the tools a read-only server exposes: the two list
// tools and proxy_request (agents that use credentials but may not manage
// them).
var ReadOnlyToolNames = []string{ToolListCredentials, ToolListAgents, ToolProxyRequest}

// DefaultMaxResponseBytes is how much of an upstream response body
// proxy_request returns (100 KiB); the rest is cut off and the result says
// truncated: true.
const DefaultMaxResponseBytes = 100 << 10

// DefaultRequestTimeout bounds one proxy_request call, from sending the
// request to reading the (possibly truncated) body.
const DefaultRequestTimeout = 2 * time.Minute

// Options configure a Server.
type Options struct {
	// ReadOnly exposes only list_credentials, list_agents and proxy_request.
	ReadOnly bool
	// Tools, when not empty, exposes only the named tools. Names must be
	// among ToolNames (and among ReadOnlyToolNames when ReadOnly is set).
	Tools []string
	// Version is the server version reported to clients ("dev" if empty).
	Version string
	// Logger receives one line per tool call (tool, outcome, error code,
	// duration; never arguments or results). nil discards.
	Logger *slog.Logger
	// MaxResponseBytes caps the response body proxy_request returns;
	// 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int
	// RequestTimeout bounds one proxy_request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// Server is the agentkeys MCP server over one Vault.
type Server struct {
	vault    agentkeys.Vault
	log      *slog.Logger
	mcp      *server.MCPServer
	exposed  []string
	maxBody  int
	deadline time.Duration
}

// New builds the server over v with the tools opts selects. It returns an
// EINVALID *agentkeys.Error naming the valid tools when opts.Tools names an
// unknown tool, or a management tool together with ReadOnly.
func New(v agentkeys.Vault, opts Options) (*Server, error) {
	if v == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "mcp: no vault")
	}
	exposed, err := selectTools(opts.ReadOnly, opts.Tools)
	if err != nil {
		return nil, err
	}
	s := &Server{
		vault:    v,
		log:      opts.Logger,
		exposed:  exposed,
		maxBody:  opts.MaxResponseBytes,
		deadline: opts.RequestTimeout,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxResponseBytes
	}
	if s.deadline <= 0 {
		s.deadline = DefaultRequestTimeout
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s.mcp = server.NewMCPServer("agentkeys", version,
		server.WithToolCapabilities(false),
		server.WithTitle("AgentKeys"),
		server.WithInstructions(instructionsFor(exposed)),
		server.WithOutputSchemaValidation(),
	)
	defs := s.tools()
	for _, name := range exposed {
		d := defs[name]
		s.mcp.AddTool(d.tool, s.wrap(name, d.handler))
	}
	return s, nil
}

// instructionsFor is the server's guidance to the model, naming only the
// tools it has.
func instructionsFor(tools []string) string {
	has := func(n string) bool { return slices.Contains(tools, n) }
	out := "AgentKeys keeps API keys, cookies and passwords in an encrypted vault and injects them into HTTP requests, so you never see or handle the secret values."
	if has(ToolProxyRequest) {
		out += " To call an API with a stored credential, use proxy_request with credentialName (or a proxyToken) and the full https URL; each credential may only be sent to its allowed hosts."
		if has(ToolListCredentials) {
			out += " list_credentials shows the credentials and their allowed hosts."
		}
	}
	if has(ToolAssignCredential) {
		out += " assign_credential gives an agent (another program) a proxy token for one credential."
	}
	return out
}

// SelectTools resolves the tools a server exposes (see Options.ReadOnly and
// Options.Tools), in ToolNames order. Returns EINVALID naming the valid tools
// for an unknown name, a management tool with readOnly, or an empty choice.
func SelectTools(readOnly bool, names []string) ([]string, error) {
	return selectTools(readOnly, names)
}

func selectTools(readOnly bool, names []string) ([]string, error) {
	allowed := ToolNames
	if readOnly {
		allowed = ReadOnlyToolNames
	}
	if len(names) == 0 {
		return slices.Clone(allowed), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(ToolNames, n) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "unknown MCP tool %q: use one or more of %s", n, strings.Join(ToolNames, ", "))
		}
		if !slices.Contains(allowed, n) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "tool %q changes the vault and is not available with --read-only (read-only tools: %s)", n, strings.Join(ReadOnlyToolNames, ", "))
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no MCP tools selected: give one or more of %s", strings.Join(allowed, ", "))
	}
	var out []string
	for _, n := range ToolNames {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Tools returns the names of the tools this server exposes, in ToolNames
// order.
func (s *Server) Tools() []string { return slices.Clone(s.exposed) }

// MCPServer returns the underlying mcp-go server, for in-process clients
// (client.NewInProcessClient) and other transports.
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// ServeStdio serves one client over newline-delimited JSON-RPC on in and out
// until in reaches EOF or ctx is cancelled. Only protocol messages are written
// to out; transport errors go to the Logger.
//
// A client may close stdin right after its last request (`… | agentkeys mcp`):
// the requests already read are still answered before ServeStdio returns.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	std := server.NewStdioServer(s.mcp)
	std.SetErrorLogger(slog.NewLogLogger(s.log.Handler(), slog.LevelWarn))
	t := newTracker(ctx, s.deadline+30*time.Second)
	pr, pw := io.Pipe()
	go t.pump(in, pw)
	err := std.Listen(ctx, pr, &trackedWriter{w: out, t: t})
	pr.Close()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// tracker counts requests read and responses written, so EOF on stdin can
// wait for the answers (mcp-go cancels requests in flight at EOF).
type tracker struct {
	ctx     context.Context
	maxWait time.Duration // at EOF, wait at most this long for answers
	mu      sync.Mutex
	pending map[string]bool
	idle    chan struct{} // closed and replaced when pending drops to zero
}

func newTracker(ctx context.Context, maxWait time.Duration) *tracker {
	return &tracker{ctx: ctx, maxWait: maxWait, pending: map[string]bool{}, idle: make(chan struct{})}
}

// rpcEnvelope is just enough of a JSON-RPC message to pair requests with
// responses.
type rpcEnvelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// pump copies in to pw line by line, noting requests; at EOF it waits until
// every request read has been answered (or ctx ends), then closes pw.
func (t *tracker) pump(in io.Reader, pw *io.PipeWriter) {
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var env rpcEnvelope
			if json.Unmarshal(line, &env) == nil && len(env.ID) > 0 && env.Method != "" {
				t.mu.Lock()
				t.pending[idKey(env.ID)] = true
				t.mu.Unlock()
			}
			if _, werr := pw.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				t.wait()
				pw.Close()
			} else {
				pw.CloseWithError(err)
			}
			return
		}
	}
}

func (t *tracker) wait() {
	timeout := time.NewTimer(t.maxWait)
	defer timeout.Stop()
	for {
		t.mu.Lock()
		n, idle := len(t.pending), t.idle
		t.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-idle:
		case <-t.ctx.Done():
			return
		case <-timeout.C:
			return
		}
	}
}

func (t *tracker) answered(msg []byte) {
	var env rpcEnvelope
	if json.Unmarshal(bytes.TrimSpace(msg), &env) != nil || len(env.ID) == 0 || env.Method != "" {
		return
	}
	key := idKey(env.ID)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[key] {
		delete(t.pending, key)
		if len(t.pending) == 0 {
			close(t.idle)
			t.idle = make(chan struct{})
		}
	}
}

// idKey is a JSON-RPC id in one spelling ("1" and 1.0, "\u0041" and "A"
// may be echoed differently than they were sent).
func idKey(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// trackedWriter passes protocol messages to w and notes the responses. mcp-go
// writes each message with one Write call.
type trackedWriter struct {
	w io.Writer
	t *tracker
}

func (tw *trackedWriter) Write(p []byte) (int, error) {
	n, err := tw.w.Write(p)
	tw.t.answered(p)
	return n, err
}

// toolDef is one tool and its handler.
type toolDef struct {
	tool    mcp.Tool
	handler handlerFunc
}

// handlerFunc runs one tool call. raw is the arguments object ("{}" when
// the client sent none). It returns a successful result, or an error whose
// message (for *agentkeys.Error) is shown to the client.
type handlerFunc func(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error)

// wrap turns a handlerFunc into an mcp-go handler that never returns a
// protocol error and never panics: failures become isError results.
func (s *Server) wrap(name string, h handlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, _ error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				// The panic value could hold anything; log where, not what.
				s.log.Error("mcp tool panicked", "tool", name, "stack", string(debug.Stack()))
				res = errorResult(agentkeys.Errorf(agentkeys.EINTERNAL, "internal error in %s: this is a bug in agentkeys; please report it", name))
			}
		}()
		raw, err := rawArguments(req)
		if err == nil {
			res, err = h(ctx, raw)
		}
		if err != nil {
			code := agentkeys.ErrorCode(err)
			attrs := []any{"tool", name, "code", code, "duration", time.Since(start)}
			if code == agentkeys.EINTERNAL && name != ToolProxyRequest {
				// Internal errors are not shown to the client; keep them for the
				// operator. (Proxy errors are not logged in full: a *url.Error
				// prints the whole URL, query-parameter secrets included.)
				attrs = append(attrs, "err", err.Error())
			}
			s.log.Warn("mcp tool failed", attrs...)
			return errorResult(err), nil
		}
		s.log.Info("mcp tool", "tool", name, "duration", time.Since(start))
		return res, nil
	}
}

// rawArguments returns the call's arguments as a JSON object.
func rawArguments(req mcp.CallToolRequest) (json.RawMessage, error) {
	var raw json.RawMessage
	if len(req.Params.RawArguments) > 0 {
		raw = req.Params.RawArguments
	} else if req.Params.Arguments != nil {
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "arguments could not be read: send them as a JSON object")
		}
		raw = b
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if t[0] != '{' {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "arguments must be a JSON object")
	}
	return t, nil
}

// decodeArgs decodes raw into dst strictly: unknown argument names and wrong
// JSON types are EINVALID errors naming the argument (never its value).
func decodeArgs(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			field := typeErr.Field
			if field == "" {
				return agentkeys.Errorf(agentkeys.EINVALID, "arguments must be a JSON object")
			}
			field, _, _ = strings.Cut(field, ".")
			want := jsonKind(typeErr.Type.Kind().String())
			switch elementOf(dst, field, typeErr.Type) {
			case reflect.Map:
				return agentkeys.Errorf(agentkeys.EINVALID, "every value in %q must be %s, not a JSON %s", field, want, typeErr.Value)
			case reflect.Slice:
				return agentkeys.Errorf(agentkeys.EINVALID, "every item of %q must be %s, not a JSON %s", field, want, typeErr.Value)
			}
			return agentkeys.Errorf(agentkeys.EINVALID, "argument %q must be %s, not a JSON %s", field, want, typeErr.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.TrimPrefix(err.Error(), "json: unknown field ")
			return agentkeys.Errorf(agentkeys.EINVALID, "unknown argument %s: see the tool's input schema for the arguments it takes", name)
		default:
			return agentkeys.Errorf(agentkeys.EINVALID, "arguments are not a valid JSON object")
		}
	}
	return nil
}

// elementOf reports whether t is the element type of the map or slice
// argument named name (its JSON name) in the struct dst points to: Map or
// Slice when it is, Invalid otherwise.
func elementOf(dst any, name string, t reflect.Type) reflect.Kind {
	st := reflect.TypeOf(dst)
	for st != nil && st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st == nil || st.Kind() != reflect.Struct {
		return reflect.Invalid
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != name {
			continue
		}
		ft := f.Type
		if k := ft.Kind(); (k == reflect.Map || k == reflect.Slice) && ft.Elem() == t {
			return k
		}
		return reflect.Invalid
	}
	return reflect.Invalid
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64", "float64":
		return "a number"
	}
	return "of another type"
}

// errorResult is an isError tool result for err: the message of an
// *agentkeys.Error (written never to contain a secret) plus its code, or a
// generic message for any other error (whose text may hold internals).
func errorResult(err error) *mcp.CallToolResult {
	code := agentkeys.ErrorCode(err)
	msg := agentkeys.ErrorMessage(err)
	if code == agentkeys.EINTERNAL && msg == "internal error" {
		msg = "internal error: the vault could not complete the request; the agentkeys log on stderr has details"
	}
	return mcp.NewToolResultError(fmt.Sprintf("%s (code %s)", msg, code))
}

// okResult is a successful result: structured content plus a text fallback
// (a one-line summary and the same data as JSON).
func okResult(summary string, structured any) *mcp.CallToolResult {
	b, err := json.MarshalIndent(structured, "", "  ")
	if err != nil {
		return mcp.NewToolResultStructured(structured, summary)
	}
	return mcp.NewToolResultStructured(structured, summary+"\n"+string(b))
}

// annotations sets every hint explicitly (mcp-go defaults to destructive and
// open-world).
func annotations(title string, readOnly, destructive, idempotent, openWorld bool) mcp.ToolOption {
	return mcp.WithToolAnnotation(mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(readOnly),
		DestructiveHint: mcp.ToBoolPtr(destructive),
		IdempotentHint:  mcp.ToBoolPtr(idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(openWorld),
	})
}

// tools builds every tool definition, by name.
func (s *Server) tools() map[string]toolDef {
	return map[string]toolDef{
		ToolListCredentials:  s.listCredentialsTool(),
		ToolCreateCredential: s.createCredentialTool(),
		ToolDeleteCredential: s.deleteCredentialTool(),
		ToolUpdateCredential: s.updateCredentialTool(),
		ToolListAgents:       s.listAgentsTool(),
		ToolCreateAgent:      s.createAgentTool(),
		ToolDeleteAgent:      s.deleteAgentTool(),
		ToolAssignCredential: s.assignCredentialTool(),
		ToolProxyRequest:     s.proxyRequestTool(),
	}
}
