package cmd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/cmd"
)

// canaryEncodings are the forms a leaked secret could take: raw, hex, URL
// escaped, and base64 (standard and URL alphabets) at each of the three
// alignments it could have inside a longer encoded string.
func canaryEncodings(c string) []string {
	out := []string{c, hex.EncodeToString([]byte(c)), strings.ToUpper(hex.EncodeToString([]byte(c))), url.QueryEscape(c)}
	for off := 0; off < 3; off++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(append(bytes.Repeat([]byte{0}, off), c...))
			out = append(out, s[4:len(s)-4]) // the characters that depend on c alone
		}
	}
	return out
}

func findCanary(haystack []byte, canaries []string) (string, bool) {
	for _, c := range canaries {
		for _, enc := range canaryEncodings(c) {
			if bytes.Contains(haystack, []byte(enc)) {
				return fmt.Sprintf("%s (as %q)", c, enc), true
			}
		}
	}
	return "", false
}

// TestCanary adds a unique secret through every way `credentials add` takes
// one, then runs every command — the proxy's success, refusal and upstream
// failure included — and checks that no secret appears in any stdout or
// stderr, nor in vault.db, -wal or -shm, raw or encoded.
func TestCanary(t *testing.T) {
	up := newUpstream(t)
	down := httptest.NewServer(nil)
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	e := newEnv(t)
	e.init()

	rnd := make([]byte, 8)
	rand.Read(rnd)
	prefix := "CANARY" + hex.EncodeToString(rnd)
	var canaries []string
	canary := func(form string) string {
		c := prefix + form
		canaries = append(canaries, c)
		return c
	}
	tty := func(answers ...string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(ios *cmd.IOStreams, _ *bytes.Buffer) {
			ios.SetStdinTTY(true)
			ios.PromptSecret = func(string) (string, error) { a := answers[0]; answers = answers[1:]; return a, nil }
		}
	}
	stdin := func(s string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(s) }
	}
	hosts := []string{"--allow-host", up.host(), "--allow-host", downHost}
	forms := []struct {
		name  string
		setup func(*cmd.IOStreams, *bytes.Buffer)
		args  []string
	}{
		{"apikeyflag", nil, []string{"--type", "API_KEY", "--value", canary("apikeyflag")}},
		{"apikeystdin", stdin(canary("apikeystdin") + "\n"), []string{"--value", "-"}},
		{"apikeyprompt", tty(canary("apikeyprompt")), []string{"--type", "API_KEY"}},
		{"basicflag", nil, []string{"--type", "BASIC_AUTH", "--username", "user", "--password", canary("basicflag")}},
		{"basicstdin", stdin(canary("basicstdin")), []string{"--type", "BASIC_AUTH", "--username", "user", "--password", "-"}},
		{"basicprompt", tty("user", canary("basicprompt")), []string{"--type", "BASIC_AUTH"}},
		{"headerflag", nil, []string{"--type", "CUSTOM_HEADER", "--header", "x-api-key: " + canary("headerflag")}},
		{"headervalue", nil, []string{"--header", "x-api-key:", "--value", canary("headervalue")}},
		{"headerprompt", tty(canary("headerprompt")), []string{"--header", "x-api-key:"}},
		{"headerstdin", stdin(canary("headerstdin") + "\n"), []string{"--header", "x-api-key: -", "--header", "x-org: acme"}},
		{"queryparam", nil, []string{"--type", "QUERY_PARAM", "--param", "key", "--value", canary("queryparam")}},
		{"cookie", nil, []string{"--type", "COOKIE", "--value", "sid=" + canary("cookie") + "; theme=dark"}},
		{"oauth", nil, []string{"--type", "OAUTH", "--value", canary("oauth")}},
	}

	// Keep a vault connection open so the -wal and -shm files stay on disk.
	holdIO, _, _, _ := cmd.Test()
	hold := cmd.NewFactory(holdIO, e.getenv)
	hold.Keychain = e.keychain
	if _, err := hold.Vault(context.Background()); err != nil {
		t.Fatal(err)
	}

	var outputs []result
	record := func(r result) result {
		t.Helper()
		outputs = append(outputs, r)
		return r
	}
	for _, f := range forms {
		args := append([]string{"credentials", "add", "--name", "cred-" + f.name}, f.args...)
		r := record(e.runWith(f.setup, append(args, hosts...)...))
		if r.code != 0 {
			t.Fatalf("add %s: %d %q", f.name, r.code, r.stderr)
		}
	}
	for _, f := range forms {
		r := record(e.run("agents", "create", "--name", "agent-"+f.name, "--credential", "cred-"+f.name))
		tok := strings.TrimSpace(r.stdout)
		if r.code != 0 {
			t.Fatalf("agent %s: %d %q", f.name, r.code, r.stderr)
		}
		for _, args := range [][]string{
			{"proxy", tok, up.URL + "/ok?q=1", "-i"},                             // success
			{"proxy", tok, "https://evil.example.com/", "-i"},                    // destination refused
			{"proxy", tok, "http://" + downHost + "/"},                           // upstream unreachable
			{"proxy", "--credential", "cred-" + f.name, up.URL + "/owner", "-i"}, // owner path
		} {
			record(e.run(args...))
		}
		record(e.run("agents", "assign", "agent-"+f.name, "--credential", "cred-"+f.name, "--json"))
		// show opens a CUSTOM_HEADER's or QUERY_PARAM's value for its names.
		record(e.run("credentials", "show", "cred-"+f.name))
		record(e.run("credentials", "show", "cred-"+f.name, "--json"))
	}
	for _, args := range [][]string{
		{"credentials", "list"}, {"credentials", "list", "--json"}, {"agents", "list"}, {"agents", "list", "--json"},
		{"status"}, {"status", "--json"}, {"audit"}, {"audit", "--json", "--limit", "1000"},
		{"credentials", "add", "--name", "cred-apikeyflag", "--value", canaries[0], "--allow-host", up.host()}, // duplicate
		{"credentials", "add", "--name", "bad", "--value", canaries[0], "--allow-host", "*"},                   // bad host
	} {
		record(e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.SetStdoutTTY(args[len(args)-1] == "list") }, args...))
	}

	// The upstream did get the secrets (the test would prove nothing otherwise).
	var seen bytes.Buffer
	for _, r := range up.All() {
		fmt.Fprintf(&seen, "%v %s %s\n", r.Header, r.RawQuery, r.Body)
	}
	for _, c := range canaries {
		if _, ok := findCanary(seen.Bytes(), []string{c}); !ok {
			t.Errorf("the upstream never received %s", c)
		}
	}
	for _, r := range outputs {
		if c, ok := findCanary([]byte(r.stdout+r.stderr), canaries); ok {
			t.Errorf("secret %s printed:\nstdout %q\nstderr %q", c, r.stdout, r.stderr)
		}
	}
	checkFiles := func(when string) {
		t.Helper()
		n := 0
		for _, name := range []string{"vault.db", "vault.db-wal", "vault.db-shm", "config.json"} {
			b, err := os.ReadFile(filepath.Join(e.home, name))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			if c, ok := findCanary(b, canaries); ok {
				t.Errorf("%s: secret %s found in %s", when, c, name)
			}
		}
		if n < 2 {
			t.Errorf("%s: only %d vault files to check", when, n)
		}
	}
	if _, err := os.Stat(filepath.Join(e.home, "vault.db-wal")); err != nil {
		t.Errorf("no -wal file while the vault is open: %v", err)
	}
	checkFiles("vault open")
	hold.Close()
	checkFiles("vault closed")
}
