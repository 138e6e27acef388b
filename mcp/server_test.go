package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentkeys/agentkeys"
	akmcp "github.com/agentkeys/agentkeys/mcp"
)

// wantHints are the annotations every tool must declare explicitly.
var wantHints = map[string]struct{ readOnly, destructive, idempotent, openWorld bool }{
	"list_credentials":  {true, false, true, false},
	"list_agents":       {true, false, true, false},
	"create_credential": {false, false, false, false},
	"create_agent":      {false, false, false, false},
	"assign_credential": {false, true, false, false}, // re-assigning revokes the old token
	"delete_credential": {false, true, true, false},
	"update_credential": {false, true, true, false},
	"delete_agent":      {false, true, true, false},
	"proxy_request":     {false, true, false, true},
}

// wantRequired are each tool's required arguments.
var wantRequired = map[string][]string{
	"list_credentials":  nil,
	"list_agents":       nil,
	"create_credential": {"name"},
	"create_agent":      {"name"},
	"assign_credential": {"agent", "credential"},
	"delete_credential": {"credential"},
	"update_credential": {"credential"},
	"delete_agent":      {"agent"},
	"proxy_request":     {"url"},
}

func listTools(t *testing.T, e *env) []mcp.Tool {
	t.Helper()
	res, err := e.client.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	return res.Tools
}

func toolNames(tools []mcp.Tool) []string {
	var out []string
	for _, tl := range tools {
		out = append(out, tl.Name)
	}
	slices.Sort(out)
	return out
}

func TestTools_ListAndAnnotations(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	tools := listTools(t, e)
	want := slices.Clone(akmcp.ToolNames)
	slices.Sort(want)
	if got := toolNames(tools); !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	for _, tl := range tools {
		t.Run(tl.Name, func(t *testing.T) {
			h := wantHints[tl.Name]
			a := tl.Annotations
			if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("not every hint is set: %+v", a)
			}
			got := [4]bool{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
			if want := [4]bool{h.readOnly, h.destructive, h.idempotent, h.openWorld}; got != want {
				t.Errorf("hints readOnly,destructive,idempotent,openWorld = %v, want %v", got, want)
			}
			if len(tl.Description) < 60 {
				t.Errorf("description too thin for an LLM: %q", tl.Description)
			}
			if tl.Title == "" {
				t.Error("no title")
			}
			if tl.InputSchema.Type != "object" {
				t.Errorf("input schema type %q", tl.InputSchema.Type)
			}
			req := slices.Clone(tl.InputSchema.Required)
			slices.Sort(req)
			if !slices.Equal(req, wantRequired[tl.Name]) {
				t.Errorf("required = %v, want %v", req, wantRequired[tl.Name])
			}
			for _, r := range req {
				if _, ok := tl.InputSchema.Properties[r]; !ok {
					t.Errorf("required %q is not a property", r)
				}
			}
			var out struct {
				Type       string         `json:"type"`
				Properties map[string]any `json:"properties"`
			}
			raw := tl.RawOutputSchema
			if raw == nil {
				b, _ := json.Marshal(tl.OutputSchema)
				raw = b
			}
			if err := json.Unmarshal(raw, &out); err != nil || out.Type != "object" || len(out.Properties) == 0 {
				t.Errorf("output schema missing or not an object: %s", raw)
			}
		})
	}
}

func TestTools_Selection(t *testing.T) {
	tests := []struct {
		name string
		opts akmcp.Options
		want []string
	}{
		{"all", akmcp.Options{}, akmcp.ToolNames},
		{"read-only", akmcp.Options{ReadOnly: true}, []string{"list_agents", "list_credentials", "proxy_request"}},
		{"chosen", akmcp.Options{Tools: []string{"proxy_request", " list_credentials", ""}}, []string{"list_credentials", "proxy_request"}},
		{"read-only and chosen", akmcp.Options{ReadOnly: true, Tools: []string{"list_agents"}}, []string{"list_agents"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := toolNames(listTools(t, e)); !slices.Equal(got, want) {
				t.Fatalf("tools = %v, want %v", got, want)
			}
			got := e.server.Tools()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Server.Tools() = %v, want %v", got, want)
			}
		})
	}
}

func TestTools_ReadOnlyHidesManagementTools(t *testing.T) {
	e := newEnv(t, akmcp.Options{ReadOnly: true})
	req := mcp.CallToolRequest{}
	req.Params.Name = "create_credential"
	req.Params.Arguments = map[string]any{"name": "x", "value": "v", "allowedHosts": []string{"api.example.com"}}
	if _, err := e.client.CallTool(context.Background(), req); err == nil {
		t.Fatal("create_credential is callable on a read-only server")
	}
	creds, err := e.vault.ListCredentials(context.Background())
	if err != nil || len(creds) != 0 {
		t.Fatalf("read-only server wrote: %v %v", creds, err)
	}
}

func TestNew_BadTools(t *testing.T) {
	v := mustOpenVault(t)
	tests := []struct {
		name string
		opts akmcp.Options
		want []string
	}{
		{"unknown", akmcp.Options{Tools: []string{"list_credentials", "read_secret"}}, []string{`unknown MCP tool "read_secret"`, "list_credentials, create_credential"}},
		{"management with read-only", akmcp.Options{ReadOnly: true, Tools: []string{"delete_agent"}}, []string{`"delete_agent"`, "--read-only", "list_credentials, list_agents, proxy_request"}},
		{"empty", akmcp.Options{Tools: []string{" ", ""}}, []string{"no MCP tools selected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := akmcp.New(v, tt.opts)
			if err == nil {
				t.Fatalf("New succeeded with %v", srv.Tools())
			}
			if agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Errorf("code %s, want %s", agentkeys.ErrorCode(err), agentkeys.EINVALID)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := akmcp.SelectTools(false, []string{"nope"}); err == nil {
		t.Error("SelectTools accepted an unknown tool")
	}
}

// brokenVault fails every call: with an error whose text holds a secret, or
// by panicking (its embedded nil interface).
type brokenVault struct {
	agentkeys.Vault
	err error
}

func (b brokenVault) ListCredentials(context.Context) ([]*agentkeys.Credential, error) {
	return nil, b.err
}

func TestTools_InternalErrorsAndPanicsAreToolResults(t *testing.T) {
	const secret = "sk-internal-canary-123"
	for _, tt := range []struct {
		name  string
		vault agentkeys.Vault
		tool  string
		want  string
	}{
		{"error", brokenVault{err: errors.New("sqlite: row " + secret)}, "list_credentials", "internal error"},
		{"panic", brokenVault{}, "list_agents", "internal error in list_agents"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			srv, err := akmcp.New(tt.vault, akmcp.Options{Logger: newTestLogger(logs)})
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, client: startClient(t, srv), logs: &syncBuffer{}}
			msg := e.fail(tt.tool, nil, tt.want, "code INTERNAL")
			if strings.Contains(msg, secret) {
				t.Errorf("internal error text reached the client: %s", msg)
			}
			// The server still answers after the failure.
			e.fail(tt.tool, nil, tt.want)
		})
	}
}

func TestTools_BadArguments(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	tests := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"list_credentials", map[string]any{"filter": "x"}, `unknown argument "filter"`},
		{"create_agent", map[string]any{"name": 7}, `argument "name" must be a string, not a JSON number`},
		{"create_agent", map[string]any{"name": "a", "credentials": "c"}, `argument "credentials" must be an array, not a JSON string`},
		{"create_credential", map[string]any{"name": "x", "headers": []string{"a"}}, `argument "headers" must be an object`},
		{"proxy_request", map[string]any{"url": "https://x.example", "credentialName": true}, `argument "credentialName" must be a string`},
		// Inside an object or array argument, the message is about its values.
		{"create_credential", map[string]any{"name": "x", "headers": map[string]any{"X-Api-Key": 1}}, `every value in "headers" must be a string, not a JSON number`},
		{"create_credential", map[string]any{"name": "x", "allowedHosts": []any{"a.example.com", true}}, `every item of "allowedHosts" must be a string, not a JSON bool`},
		{"proxy_request", map[string]any{"url": "https://x.example", "headers": map[string]any{"Accept": []string{"a"}}}, `every value in "headers" must be a string, not a JSON array`},
	}
	for _, tt := range tests {
		t.Run(tt.tool+"/"+tt.want, func(t *testing.T) {
			e.fail(tt.tool, tt.args, tt.want, "code BAD_REQUEST")
		})
	}
}
