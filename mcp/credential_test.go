package mcp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	akmcp "github.com/agentkeys/agentkeys/mcp"
)

func TestCreateCredential(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	tests := []struct {
		name      string
		args      map[string]any
		wantType  string
		wantHosts []string
		wantFrom  string
	}{
		{"api key with hosts", map[string]any{"name": "Example", "type": "API_KEY", "value": "k1", "allowedHosts": []string{"API.Example.com", "*.example.org"}},
			"API_KEY", []string{"api.example.com", "*.example.org"}, "allowedHosts"},
		{"service preset", map[string]any{"name": "Mail", "type": "api_key", "value": "k2", "service": "Resend"},
			"API_KEY", []string{"api.resend.com"}, "service preset resend"},
		{"preset from name", map[string]any{"name": "Stripe Live", "value": "k3"},
			"API_KEY", []string{"api.stripe.com", "files.stripe.com"}, "service preset stripe (recognised from the name)"},
		{"basic auth inferred", map[string]any{"name": "Jira", "username": "me", "password": "pw", "allowedHosts": []string{"acme.atlassian.net"}},
			"BASIC_AUTH", []string{"acme.atlassian.net"}, "allowedHosts"},
		{"custom header", map[string]any{"name": "Anthropic", "type": "CUSTOM_HEADER", "headers": map[string]any{"x-api-key": "k4", "anthropic-version": "2023-06-01"}},
			"CUSTOM_HEADER", []string{"api.anthropic.com"}, "service preset anthropic (recognised from the name)"},
		{"query param", map[string]any{"name": "Maps", "type": "QUERY_PARAM", "param": "key", "value": "k5", "allowedHosts": []string{"maps.googleapis.com"}},
			"QUERY_PARAM", []string{"maps.googleapis.com"}, "allowedHosts"},
		{"cookie", map[string]any{"name": "Dash", "type": "COOKIE", "value": "sid=k6; csrf=x", "allowedHosts": []string{"dash.example.com"}},
			"COOKIE", []string{"dash.example.com"}, "allowedHosts"},
		{"oauth", map[string]any{"name": "Box", "type": "OAUTH", "value": "k7", "allowedHosts": []string{"api.box.com"}},
			"OAUTH", []string{"api.box.com"}, "allowedHosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.ok("create_credential", tt.args)
			c := out["credential"].(map[string]any)
			if c["name"] != tt.args["name"] || c["type"] != tt.wantType || !strings.HasPrefix(c["id"].(string), "cred_") {
				t.Errorf("credential = %v", c)
			}
			var hosts []string
			for _, h := range c["allowedHosts"].([]any) {
				hosts = append(hosts, h.(string))
			}
			if !slices.Equal(hosts, tt.wantHosts) {
				t.Errorf("allowedHosts = %v, want %v", hosts, tt.wantHosts)
			}
			if out["hostsFrom"] != tt.wantFrom {
				t.Errorf("hostsFrom = %v, want %q", out["hostsFrom"], tt.wantFrom)
			}
			if _, ok := c["createdAt"].(string); !ok {
				t.Errorf("no createdAt: %v", c)
			}
		})
	}
	list := e.ok("list_credentials", nil)
	if got := names(t, list, "credentials"); len(got) != len(tests) {
		t.Errorf("list = %v, want %d credentials", got, len(tests))
	}
	if list["count"] != float64(len(tests)) {
		t.Errorf("count = %v", list["count"])
	}
	for _, v := range []string{"k1", "k2", "k3", "pw", "k4", "k5", "sid=k6", "k7"} {
		e.assertNeverSeen("\"" + v + "\"")
	}
}

func TestCreateCredential_Refused(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	e.ok("create_credential", map[string]any{"name": "Taken", "value": "v0", "allowedHosts": []string{"api.example.com"}})
	const canary = "CANARY-create-refused-0451"
	hosts := []string{"api.example.com"}
	tests := []struct {
		name string
		args map[string]any
		want []string
	}{
		{"missing name", map[string]any{"value": canary, "allowedHosts": hosts}, []string{"missing name"}},
		{"blank name", map[string]any{"name": "  ", "value": canary, "allowedHosts": hosts}, []string{"missing name"}},
		{"name too long", map[string]any{"name": strings.Repeat("n", 101), "value": canary, "allowedHosts": hosts}, []string{"longer than 100"}},
		{"unknown type", map[string]any{"name": "A", "type": "TOKEN", "value": canary, "allowedHosts": hosts}, []string{`unknown credential type "TOKEN"`, "API_KEY"}},
		{"no hosts", map[string]any{"name": "Internal thing", "value": canary}, []string{"has no allowed hosts", "service"}},
		{"unknown service", map[string]any{"name": "A", "value": canary, "service": "nosuch"}, []string{`unknown service "nosuch"`, "resend"}},
		{"url as host", map[string]any{"name": "A", "value": canary, "allowedHosts": []string{"https://api.example.com/v1"}}, []string{"not a URL"}},
		{"too broad wildcard", map[string]any{"name": "A", "value": canary, "allowedHosts": []string{"*.com"}}, []string{"too broad"}},
		{"missing value", map[string]any{"name": "A", "type": "API_KEY", "allowedHosts": hosts}, []string{"missing value"}},
		{"value with newline", map[string]any{"name": "A", "value": canary + "\n", "allowedHosts": hosts}, []string{"line break"}},
		{"field of another type", map[string]any{"name": "A", "type": "API_KEY", "value": canary, "password": canary, "allowedHosts": hosts}, []string{"password is not used by API_KEY", "value"}},
		{"basic auth missing password", map[string]any{"name": "A", "type": "BASIC_AUTH", "username": "u", "allowedHosts": hosts}, []string{"missing password"}},
		{"basic auth colon", map[string]any{"name": "A", "username": "u:x", "password": canary, "allowedHosts": hosts}, []string{"may not contain ':'"}},
		{"cookie format", map[string]any{"name": "A", "type": "COOKIE", "value": "=" + canary, "allowedHosts": hosts}, []string{"cookie value must look like"}},
		{"query param no name", map[string]any{"name": "A", "type": "QUERY_PARAM", "value": canary, "allowedHosts": hosts}, []string{"missing param", "query parameter"}},
		{"custom header none", map[string]any{"name": "A", "type": "CUSTOM_HEADER", "allowedHosts": hosts}, []string{"missing headers", "X-Api-Key"}},
		{"custom header forbidden", map[string]any{"name": "A", "headers": map[string]any{"Host": canary}, "allowedHosts": hosts}, []string{"Host cannot be injected"}},
		{"duplicate name", map[string]any{"name": "taken", "value": canary, "allowedHosts": hosts}, []string{"already exists"}},
		{"unknown argument", map[string]any{"name": "A", "secret": canary, "allowedHosts": hosts}, []string{`unknown argument "secret"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := "code BAD_REQUEST"
			if tt.name == "duplicate name" {
				code = "code CONFLICT"
			}
			e.fail("create_credential", tt.args, append(tt.want, code)...)
		})
	}
	creds, err := e.vault.ListCredentials(context.Background())
	if err != nil || len(creds) != 1 {
		t.Fatalf("refused creates wrote something: %d credentials, %v", len(creds), err)
	}
	e.assertNeverSeen(canary)
}

func TestDeleteCredential(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	a := e.ok("create_credential", map[string]any{"name": "One", "value": "v1", "allowedHosts": []string{"api.example.com"}})
	e.ok("create_credential", map[string]any{"name": "Two", "value": "v2", "allowedHosts": []string{"api.example.com"}})
	id := a["credential"].(map[string]any)["id"].(string)

	out := e.ok("delete_credential", map[string]any{"credential": id})
	if out["deleted"] != true || out["id"] != id || out["name"] != "One" {
		t.Errorf("delete by id = %v", out)
	}
	out = e.ok("delete_credential", map[string]any{"credential": "two"}) // by name, any case
	if out["name"] != "Two" {
		t.Errorf("delete by name = %v", out)
	}
	if got := names(t, e.ok("list_credentials", nil), "credentials"); len(got) != 0 {
		t.Errorf("left after delete: %v", got)
	}
	e.fail("delete_credential", map[string]any{"credential": id}, "no credential with id or name", "list_credentials", "code NOT_FOUND")
	e.fail("delete_credential", map[string]any{}, "missing credential", "code BAD_REQUEST")
	e.fail("delete_credential", map[string]any{"credential": " "}, "missing credential", "code BAD_REQUEST")
}

func TestUpdateCredential(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	const oldValue, newValue = "sk-update-old-value-canary", "sk-update-new-value-canary"
	e.ok("create_credential", map[string]any{"name": "One", "value": oldValue, "allowedHosts": []string{"api.example.com"}})
	ctx := context.Background()
	ag, err := e.vault.CreateAgent(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := e.vault.FindCredential(ctx, "One")
	g, err := e.vault.AssignCredential(ctx, ag.ID, cred.ID)
	if err != nil {
		t.Fatal(err)
	}

	out := e.ok("update_credential", map[string]any{"credential": "one", "name": "Uno", "value": newValue,
		"allowedHosts": []string{"api.example.com", "*.example.org"}})
	c := out["credential"].(map[string]any)
	if c["name"] != "Uno" || fmt.Sprint(c["allowedHosts"]) != "[api.example.com *.example.org]" || fmt.Sprint(out["changed"]) != "[name allowedHosts value]" {
		t.Errorf("update = %v", out)
	}
	// The agent's token still opens the credential, now with the new value.
	route, err := e.vault.Authorize(ctx, g.ProxyToken, "")
	if err != nil {
		t.Fatalf("token after update: %v", err)
	}
	sec, err := e.vault.OpenSecret(ctx, route)
	if err != nil || sec.Value != newValue {
		t.Fatalf("value after update: %v", err)
	}

	e.fail("update_credential", map[string]any{"credential": "Uno"}, "nothing to update", "code BAD_REQUEST")
	e.fail("update_credential", map[string]any{"credential": "Uno", "username": "u", "password": "p"}, "not used by API_KEY", "code BAD_REQUEST")
	e.fail("update_credential", map[string]any{"credential": "ghost", "value": "x"}, "no credential with id or name", "code NOT_FOUND")
	e.fail("update_credential", map[string]any{"credential": "Uno", "allowedHosts": []string{}}, "at least one allowed host", "code BAD_REQUEST")
	e.assertNeverSeen(oldValue)
	e.assertNeverSeen(newValue)
}

// TestCreateCredential_RefusesTerminalControls: an agent cannot store a
// name that would rewrite the terminal of whoever lists credentials later:
// controls, bidi and invisible characters are refused and nothing is written.
func TestCreateCredential_RefusesTerminalControls(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	for _, name := range []string{"a\x1b]0;pwn\x07", "a\u009b2J", "invoice\u202Efdp.exe", "a\u2067b\u2069", "re\u200Bsend", "a\uFEFF"} {
		e.fail("create_credential", map[string]any{"name": name, "type": "API_KEY", "value": "k", "allowedHosts": []string{"api.example.com"}}, "invisible or control character")
		e.fail("create_agent", map[string]any{"name": name}, "invisible or control character")
	}
	if list := e.ok("list_credentials", nil); len(list["credentials"].([]any)) != 0 {
		t.Fatalf("refused names were written: %v", list)
	}
}
