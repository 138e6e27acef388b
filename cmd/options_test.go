package cmd_test

import (
	"context"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys/cmd"
)

// parse runs c with args; its runF has captured the options by then.
func parse(t *testing.T, c *cobra.Command, args ...string) error {
	t.Helper()
	c.SetArgs(args)
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	return c.ExecuteContext(context.Background())
}

func testFactory(t *testing.T) *cmd.Factory {
	ios, _, _, _ := cmd.Test()
	return cmd.NewFactory(ios, newEnv(t).getenv)
}

func TestOptions_CredentialsAdd(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want cmd.CredentialsAddOptions
	}{
		{"api key", []string{"--name", "Resend Production", "--type", "API_KEY", "--value", "re_123"},
			cmd.CredentialsAddOptions{Name: "Resend Production", Type: "API_KEY", Value: "re_123", ValueSet: true}},
		{"stdin", []string{"--name", "Stripe", "--value", "-"},
			cmd.CredentialsAddOptions{Name: "Stripe", Value: "-", ValueSet: true}},
		{"basic", []string{"--name", "Jira", "--type", "BASIC_AUTH", "--username", "me", "--allow-host", "acme.atlassian.net"},
			cmd.CredentialsAddOptions{Name: "Jira", Type: "BASIC_AUTH", Username: "me", AllowHosts: []string{"acme.atlassian.net"}}},
		{"headers and hosts repeat", []string{"--name", "A", "--header", "x-a: 1", "--header", "x-b: 2", "--allow-host", "a.example.com", "--allow-host", "*.b.example.com"},
			cmd.CredentialsAddOptions{Name: "A", Headers: []string{"x-a: 1", "x-b: 2"}, AllowHosts: []string{"a.example.com", "*.b.example.com"}}},
		{"query param service json", []string{"--name", "Maps", "--type", "QUERY_PARAM", "--param", "key", "--value", "v", "--service", "google-maps", "--json"},
			cmd.CredentialsAddOptions{Name: "Maps", Type: "QUERY_PARAM", Param: "key", Value: "v", ValueSet: true, Service: "google-maps", JSON: true}},
		{"empty value is set", []string{"--name", "A", "--value", ""},
			cmd.CredentialsAddOptions{Name: "A", ValueSet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *cmd.CredentialsAddOptions
			c := cmd.NewCmdCredentialsAdd(testFactory(t), func(_ context.Context, o *cmd.CredentialsAddOptions) error { got = o; return nil })
			if err := parse(t, c, tt.args...); err != nil {
				t.Fatal(err)
			}
			got.IO, got.Vault = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestOptions_Agents(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		var got *cmd.AgentsCreateOptions
		c := cmd.NewCmdAgentsCreate(testFactory(t), func(_ context.Context, o *cmd.AgentsCreateOptions) error { got = o; return nil })
		if err := parse(t, c, "--name", "data-pipeline", "--credential", "cred_1", "--json"); err != nil {
			t.Fatal(err)
		}
		if got.Name != "data-pipeline" || got.Credential != "cred_1" || !got.JSON {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("assign", func(t *testing.T) {
		var got *cmd.AgentsAssignOptions
		c := cmd.NewCmdAgentsAssign(testFactory(t), func(_ context.Context, o *cmd.AgentsAssignOptions) error { got = o; return nil })
		if err := parse(t, c, "bot", "--credential", "Resend"); err != nil {
			t.Fatal(err)
		}
		if got.Agent != "bot" || got.Credential != "Resend" {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("assign without credential", func(t *testing.T) {
		called := false
		c := cmd.NewCmdAgentsAssign(testFactory(t), func(context.Context, *cmd.AgentsAssignOptions) error { called = true; return nil })
		err := parse(t, c, "bot")
		if cmd.ExitCode(err) != cmd.ExitUsage || called {
			t.Errorf("err %v (exit %d), called %v", err, cmd.ExitCode(err), called)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		var got *cmd.AgentsRevokeOptions
		c := cmd.NewCmdAgentsRevoke(testFactory(t), func(_ context.Context, o *cmd.AgentsRevokeOptions) error { got = o; return nil })
		if err := parse(t, c, "agent_1", "--credential", "cred_1"); err != nil {
			t.Fatal(err)
		}
		if got.Agent != "agent_1" || got.Credential != "cred_1" {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("list", func(t *testing.T) {
		var got *cmd.AgentsListOptions
		c := cmd.NewCmdAgentsList(testFactory(t), func(_ context.Context, o *cmd.AgentsListOptions) error { got = o; return nil })
		if err := parse(t, c, "--json"); err != nil {
			t.Fatal(err)
		}
		if !got.JSON {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("remove", func(t *testing.T) {
		var got *cmd.AgentsRemoveOptions
		c := cmd.NewCmdAgentsRemove(testFactory(t), func(_ context.Context, o *cmd.AgentsRemoveOptions) error { got = o; return nil })
		if err := parse(t, c, "bot"); err != nil {
			t.Fatal(err)
		}
		if got.Ref != "bot" {
			t.Errorf("got %+v", got)
		}
	})
}

func TestOptions_CredentialsListRemove(t *testing.T) {
	var l *cmd.CredentialsListOptions
	if err := parse(t, cmd.NewCmdCredentialsList(testFactory(t), func(_ context.Context, o *cmd.CredentialsListOptions) error { l = o; return nil }), "--json"); err != nil || !l.JSON {
		t.Fatalf("list: %v %+v", err, l)
	}
	var r *cmd.CredentialsRemoveOptions
	if err := parse(t, cmd.NewCmdCredentialsRemove(testFactory(t), func(_ context.Context, o *cmd.CredentialsRemoveOptions) error { r = o; return nil }), "Resend Production"); err != nil || r.Ref != "Resend Production" {
		t.Fatalf("remove: %v %+v", err, r)
	}
	err := parse(t, cmd.NewCmdCredentialsRemove(testFactory(t), func(context.Context, *cmd.CredentialsRemoveOptions) error { return nil }))
	if cmd.ExitCode(err) != cmd.ExitUsage {
		t.Errorf("remove without argument: %v", err)
	}
}

func TestOptions_InitStatus(t *testing.T) {
	var i *cmd.InitOptions
	if err := parse(t, cmd.NewCmdInit(testFactory(t), func(_ context.Context, o *cmd.InitOptions) error { i = o; return nil }), "--passphrase", "--json"); err != nil || !i.Passphrase || !i.JSON {
		t.Fatalf("init: %v %+v", err, i)
	}
	var s *cmd.StatusOptions
	if err := parse(t, cmd.NewCmdStatus(testFactory(t), func(_ context.Context, o *cmd.StatusOptions) error { s = o; return nil }), "--json"); err != nil || !s.JSON {
		t.Fatalf("status: %v %+v", err, s)
	}
}

func TestOptions_Proxy(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want cmd.ProxyOptions
	}{
		{"get", []string{"pxr_abc", "https://api.github.com/user/repos"},
			cmd.ProxyOptions{Token: "pxr_abc", URL: "https://api.github.com/user/repos"}},
		{"post data headers", []string{"pxr_abc", "https://api.resend.com/emails", "--method", "POST", "--data", `{"a":1}`, "-H", "X-A: 1", "-H", "X-B: 2", "--fail", "--include"},
			cmd.ProxyOptions{Token: "pxr_abc", URL: "https://api.resend.com/emails", Method: "POST", Data: `{"a":1}`, DataSet: true, Headers: []string{"X-A: 1", "X-B: 2"}, Fail: true, Include: true}},
		{"data file short flags", []string{"pxr_abc", "https://x.example.com/", "-X", "PUT", "-d", "@body.json", "-i"},
			cmd.ProxyOptions{Token: "pxr_abc", URL: "https://x.example.com/", Method: "PUT", Data: "@body.json", DataSet: true, Include: true}},
		{"owner by credential", []string{"--credential", "Resend", "https://api.resend.com/domains"},
			cmd.ProxyOptions{URL: "https://api.resend.com/domains", Credential: "Resend"}},
		{"workspace key", []string{"ak_ws_abc", "https://api.resend.com/domains", "--credential", "Resend"},
			cmd.ProxyOptions{Token: "ak_ws_abc", URL: "https://api.resend.com/domains", Credential: "Resend"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *cmd.ProxyOptions
			c := cmd.NewCmdProxy(testFactory(t), func(_ context.Context, o *cmd.ProxyOptions) error { got = o; return nil })
			if err := parse(t, c, tt.args...); err != nil {
				t.Fatal(err)
			}
			got.IO, got.Vault = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
	bad := map[string][]string{
		"no args":                {},
		"three args":             {"pxr_a", "https://x.example.com", "extra"},
		"not a token":            {"hello", "https://x.example.com"},
		"ws key without name":    {"ak_ws_abc", "https://x.example.com"},
		"token with credential":  {"pxr_abc", "https://x.example.com", "--credential", "A"},
		"bad url":                {"pxr_abc", "ftp://x.example.com"},
		"bad method":             {"pxr_abc", "https://x.example.com", "-X", "GE T"},
		"bad header":             {"pxr_abc", "https://x.example.com", "-H", "nocolon"},
		"url without token/cred": {"https://x.example.com"},
	}
	for name, args := range bad {
		t.Run("bad/"+name, func(t *testing.T) {
			called := false
			c := cmd.NewCmdProxy(testFactory(t), func(context.Context, *cmd.ProxyOptions) error { called = true; return nil })
			err := parse(t, c, args...)
			if cmd.ExitCode(err) != cmd.ExitUsage || called {
				t.Errorf("err %v (exit %d), runF called %v", err, cmd.ExitCode(err), called)
			}
		})
	}
}

func TestOptions_UpAudit(t *testing.T) {
	var u *cmd.UpOptions
	if err := parse(t, cmd.NewCmdUp(testFactory(t), func(_ context.Context, o *cmd.UpOptions) error { u = o; return nil })); err != nil || u.Listen != cmd.DefaultListen || u.ShutdownTimeout != 30*time.Second {
		t.Fatalf("up defaults: %v %+v", err, u)
	}
	if err := parse(t, cmd.NewCmdUp(testFactory(t), func(_ context.Context, o *cmd.UpOptions) error { u = o; return nil }), "--listen", "127.0.0.1:9999", "--shutdown-timeout", "5s"); err != nil || u.Listen != "127.0.0.1:9999" || u.ShutdownTimeout != 5*time.Second {
		t.Fatalf("up: %v %+v", err, u)
	}
	for _, bad := range [][]string{{"--listen", "nonsense"}, {"--listen", "127.0.0.1:99999"}, {"--shutdown-timeout", "0s"}} {
		err := parse(t, cmd.NewCmdUp(testFactory(t), func(context.Context, *cmd.UpOptions) error { return nil }), bad...)
		if cmd.ExitCode(err) != cmd.ExitUsage {
			t.Errorf("up %v: %v", bad, err)
		}
	}
	var a *cmd.AuditOptions
	if err := parse(t, cmd.NewCmdAudit(testFactory(t), func(_ context.Context, o *cmd.AuditOptions) error { a = o; return nil }), "--json", "--follow", "--agent", "bot", "--credential", "Resend", "--limit", "7"); err != nil {
		t.Fatal(err)
	}
	if !a.JSON || !a.Follow || a.Agent != "bot" || a.Credential != "Resend" || a.Limit != 7 {
		t.Errorf("audit: %+v", a)
	}
	if err := parse(t, cmd.NewCmdAudit(testFactory(t), func(_ context.Context, o *cmd.AuditOptions) error { a = o; return nil })); err != nil || a.Limit != 50 {
		t.Errorf("audit default limit: %v %+v", err, a)
	}
	for _, bad := range []string{"0", "1001", "-1"} {
		err := parse(t, cmd.NewCmdAudit(testFactory(t), func(context.Context, *cmd.AuditOptions) error { return nil }), "--limit", bad)
		if cmd.ExitCode(err) != cmd.ExitUsage {
			t.Errorf("audit --limit %s: %v", bad, err)
		}
	}
}
