package cmd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/cmd"
)

// TestBadInput: every refusal gives one "error: …" line on stderr, nothing
// on stdout, the documented exit code, and writes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Dup", "--value", "v1", "--allow-host", "api.example.com")
	e.must("agents", "create", "--name", "bot")
	e.must("agents", "create", "--name", "bot2", "--credential", "Dup")

	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // exact line; a trailing "*" means prefix
	}{
		{"duplicate credential name", "", []string{"credentials", "add", "--name", "dup", "--value", "x", "--allow-host", "api.example.com"},
			cmd.ExitConflict, `error: a credential named "dup" already exists: pick another name or remove it first`},
		{"unknown type", "", []string{"credentials", "add", "--name", "N", "--type", "PASSWORD", "--value", "x", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: unknown credential type "PASSWORD": use one of API_KEY, COOKIE, BASIC_AUTH, CUSTOM_HEADER, QUERY_PARAM, OAUTH`},
		{"missing name", "", []string{"credentials", "add", "--value", "x", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing credential name: give one with --name`},
		{"missing value without terminal", "", []string{"credentials", "add", "--name", "N", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing value: give it with --value (or --value - to read stdin) (no terminal to prompt on)`},
		{"empty value", "", []string{"credentials", "add", "--name", "N", "--value", "", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing value: --value is empty`},
		{"empty stdin", "", []string{"credentials", "add", "--name", "N", "--value", "-", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing value: stdin was empty`},
		{"value with a line break", "abc\ndef\n", []string{"credentials", "add", "--name", "N", "--value", "-", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: value contains a line break or NUL byte, which HTTP headers cannot carry`},
		{"missing password without terminal", "", []string{"credentials", "add", "--name", "N", "--type", "BASIC_AUTH", "--username", "u", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing password: give it with --password (no terminal to prompt on)`},
		{"no allowed hosts", "", []string{"credentials", "add", "--name", "Mystery", "--value", "x"},
			cmd.ExitUsage, `error: credential "Mystery" has no allowed hosts: give the hosts it may be sent to (--allow-host api.example.com, repeatable; *.example.com for subdomains) or a known service (--service NAME, one of *`},
		{"wildcard too broad", "", []string{"credentials", "add", "--name", "N", "--value", "x", "--allow-host", "*.com"},
			cmd.ExitUsage, `error: allowed host "*.com" is too broad: a wildcard needs a domain with at least two labels, as in *.example.com`},
		{"bare star", "", []string{"credentials", "add", "--name", "N", "--value", "x", "--allow-host", "*"},
			cmd.ExitUsage, `error: allowed host "*": a wildcard may only be a whole first label, as in *.example.com`},
		{"url as host", "", []string{"credentials", "add", "--name", "N", "--value", "x", "--allow-host", "https://api.example.com/v1"},
			cmd.ExitUsage, `error: allowed host "https://api.example.com/v1" must be a host name such as api.example.com, not a URL or path`},
		{"unknown service", "", []string{"credentials", "add", "--name", "N", "--value", "x", "--service", "nope"},
			cmd.ExitUsage, `error: unknown service "nope": use one of *`},
		{"allow-host and service", "", []string{"credentials", "add", "--name", "N", "--value", "x", "--service", "stripe", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: give either --allow-host or --service, not both`},
		{"forbidden header", "", []string{"credentials", "add", "--name", "N", "--header", "Host: x", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: header Host cannot be injected: it belongs to the connection, not the request`},
		{"two headers from stdin", "v1\n", []string{"credentials", "add", "--name", "N", "--header", "x-a: -", "--header", "x-b: -", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: stdin holds one value: read one header from it ("Name: -"), give the others as "Name: value"`},
		{"header and --value from stdin", "v1\n", []string{"credentials", "add", "--name", "N", "--header", "x-a: -", "--header", "x-b:", "--value", "-", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: stdin holds one value: read one header from it ("Name: -"), give the others as "Name: value"`},
		{"header from empty stdin", "", []string{"credentials", "add", "--name", "N", "--header", "x-a: -", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: missing value of header x-a: stdin was empty`},
		{"header without colon", "", []string{"credentials", "add", "--name", "N", "--header", "x-api-key", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: header must look like "Name: value"`},
		{"flag for another type", "", []string{"credentials", "add", "--name", "N", "--type", "API_KEY", "--value", "x", "--username", "u", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: --username is for BASIC_AUTH credentials, not API_KEY`},
		{"query param without --param", "", []string{"credentials", "add", "--name", "N", "--type", "QUERY_PARAM", "--value", "x", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: a QUERY_PARAM credential needs --param NAME, the query parameter to set`},
		{"bad cookie", "", []string{"credentials", "add", "--name", "N", "--type", "COOKIE", "--value", "=x", "--allow-host", "api.example.com"},
			cmd.ExitUsage, `error: cookie value must look like "name=value; name2=value2" (paste the Cookie header from DevTools)`},
		{"remove unknown credential", "", []string{"credentials", "remove", "cred_nope"},
			cmd.ExitNotFound, `error: no credential with id or name "cred_nope": see *`},
		{"duplicate agent", "", []string{"agents", "create", "--name", "BOT"},
			cmd.ExitConflict, `error: an agent named "BOT" already exists*`},
		{"agent with unknown credential", "", []string{"agents", "create", "--name", "new-bot", "--credential", "nope"},
			cmd.ExitNotFound, `error: no credential with id or name "nope": see *`},
		{"assign to unknown agent", "", []string{"agents", "assign", "ghost", "--credential", "Dup"},
			cmd.ExitNotFound, `error: no agent with id or name "ghost"*`},
		{"assign unknown credential", "", []string{"agents", "assign", "bot", "--credential", "ghost"},
			cmd.ExitNotFound, `error: no credential with id or name "ghost": see *`},
		{"assign without credential", "", []string{"agents", "assign", "bot"},
			cmd.ExitUsage, `error: missing credential: give it with --credential ID-OR-NAME`},
		{"revoke what was never assigned", "", []string{"agents", "revoke", "bot", "--credential", "Dup"},
			cmd.ExitNotFound, `error: *`},
		{"remove unknown agent", "", []string{"agents", "remove", "ghost"},
			cmd.ExitNotFound, `error: no agent with id or name "ghost"*`},
		{"unknown flag", "", []string{"credentials", "list", "--bogus"},
			cmd.ExitUsage, "error: unknown flag: --bogus (run `agentkeys credentials list --help`)"},
		{"unknown command", "", []string{"frobnicate"},
			cmd.ExitUsage, "error: unknown command \"frobnicate\": run `agentkeys --help` to see the commands"},
		{"unknown subcommand", "", []string{"credentials", "frob"},
			cmd.ExitUsage, "error: unknown command \"frob\" for \"agentkeys credentials\": run `agentkeys credentials --help`"},
		{"extra argument", "", []string{"credentials", "list", "extra"},
			cmd.ExitUsage, "error: agentkeys credentials list takes no arguments (got \"extra\"): run `agentkeys credentials list --help`"},
		{"audit limit", "", []string{"audit", "--limit", "0"},
			cmd.ExitUsage, `error: --limit must be between 1 and 1000`},
		{"init twice", "", []string{"init"},
			cmd.ExitConflict, `error: a vault already exists at *`},
		{"proxy with a bad token", "", []string{"proxy", "pxr_0000000000000000000000000000000000", "https://api.example.com/"},
			cmd.ExitUnauthorized, `error: *`},
		{"proxy to a host off the allowlist", "", []string{"proxy", "--credential", "Dup", "https://evil.example.net/"},
			cmd.ExitUnauthorized, `error: destination evil.example.net is not on this credential's allowed hosts (api.example.com); to allow it: agentkeys credentials update "Dup" --add-host evil.example.net`},
		{"proxy to an unknown credential", "", []string{"proxy", "--credential", "ghost", "https://api.example.com/"},
			cmd.ExitNotFound, `error: *`},
		{"proxy with a bad header name", "", []string{"proxy", "--credential", "Dup", "https://api.example.com/", "-H", "bad name: 1"},
			cmd.ExitUsage, `error: header name "bad name" is not a valid HTTP header name`},
	}
	before := e.state()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(tt.stdin) }, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			line := strings.TrimSuffix(r.stderr, "\n")
			if want, ok := strings.CutSuffix(tt.stderr, "*"); ok {
				if !strings.HasPrefix(line, want) {
					t.Errorf("stderr %q\nwant prefix %q", line, want)
				}
			} else if line != tt.stderr {
				t.Errorf("stderr %q\nwant        %q", line, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if after := e.state(); after != before {
				t.Errorf("something was written:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestBadInput_Vault: no vault, and a wrong key.
func TestBadInput_Vault(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"status"}, {"credentials", "list"}, {"agents", "list"}, {"audit"}} {
		r := e.run(args...)
		if r.code != cmd.ExitNotFound || !strings.HasSuffix(r.stderr, ": run `agentkeys init`\n") || r.stdout != "" {
			t.Errorf("%v without a vault: %d %q", args, r.code, r.stderr)
		}
	}
	e.init()
	e.must("credentials", "add", "--name", "Resend", "--value", "re_1")
	before := e.state()
	good := e.vars["AGENTKEYS_MASTER_KEY"]
	e.vars["AGENTKEYS_MASTER_KEY"] = newEnv(t).vars["AGENTKEYS_MASTER_KEY"]
	r := e.run("credentials", "add", "--name", "Other", "--value", "x", "--service", "stripe")
	if r.code != cmd.ExitUnavailable || !strings.HasPrefix(r.stderr, "error: wrong vault key: AGENTKEYS_MASTER_KEY does not open the vault") {
		t.Errorf("wrong key: %d %q", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_MASTER_KEY"] = "not base64!"
	if r := e.run("status"); r.code != cmd.ExitUsage {
		t.Errorf("malformed key: %d %q", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_MASTER_KEY"] = good
	if after := e.state(); after != before {
		t.Errorf("written with a wrong key:\n%s\n%s", before, after)
	}
}
