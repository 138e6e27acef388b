package proxy_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

// helperEnv switches the test binary into a helper process that changes a
// vault from outside the proxy's process (see TestMain).
const helperEnv = "AGENTKEYS_PROXY_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper opens the vault named by the environment and revokes a grant
// ("revoke") or deletes a credential ("delete"), as the CLI would.
func runHelper(mode string) error {
	ctx := context.Background()
	v, err := localvault.Open(ctx, localvault.Config{Home: os.Getenv("HELPER_HOME"), MasterKey: os.Getenv("HELPER_KEY"), Keychain: noKeychain{}})
	if err != nil {
		return err
	}
	defer v.Close()
	switch mode {
	case "revoke":
		return v.RevokeCredential(ctx, os.Getenv("HELPER_AGENT"), os.Getenv("HELPER_CRED"))
	case "delete":
		return v.DeleteCredential(ctx, os.Getenv("HELPER_CRED"))
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// noKeychain is a KeyStore that holds nothing: tests use a master key and
// never reach the real keychain.
type noKeychain struct{}

func (noKeychain) Get(string, string) (string, error) { return "", localvault.ErrKeyNotFound }
func (noKeychain) Set(string, string, string) error   { return errors.New("no keychain in tests") }
func (noKeychain) Delete(string, string) error        { return localvault.ErrKeyNotFound }

type realVault struct {
	home, key string
	v         *localvault.Vault
	h         *proxy.Handler
	wsKey     string
}

func newRealVault(t *testing.T) *realVault {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	rv := &realVault{home: t.TempDir(), key: base64.StdEncoding.EncodeToString(k)}
	cfg := localvault.Config{Home: rv.home, MasterKey: rv.key, Keychain: noKeychain{}}
	ctx := context.Background()
	res, err := localvault.Init(ctx, cfg, localvault.InitOptions{})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	rv.wsKey = res.WorkspaceKey
	if rv.v, err = localvault.Open(ctx, cfg); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { rv.v.Close() })
	rv.h = proxy.New(rv.v, proxy.Config{})
	return rv
}

// inOtherProcess runs the test binary in helper mode against the vault.
func (rv *realVault) inOtherProcess(t *testing.T, mode, agentID, credID string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_HOME="+rv.home, "HELPER_KEY="+rv.key,
		"HELPER_AGENT="+agentID, "HELPER_CRED="+credID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper process %s: %v\n%s", mode, err, out)
	}
}

func TestLocalVault_RevocationFromAnotherProcess(t *testing.T) {
	up := newUpstream(t, nil)
	rv := newRealVault(t)
	ctx := context.Background()
	cred, err := rv.v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Local API", Type: agentkeys.APIKey,
		AllowedHosts: []string{up.hostPort()}, Secret: agentkeys.Secret{Value: "sk_local"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := rv.v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Other API", Type: agentkeys.APIKey,
		AllowedHosts: []string{up.hostPort()}, Secret: agentkeys.Secret{Value: "sk_other"}})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := rv.v.CreateAgent(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	g1, err := rv.v.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := rv.v.AssignCredential(ctx, agent.ID, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestProxy(t, rv.v, proxy.Config{})

	get := func(tok string) *http.Response { return srv.do(t, call{Token: tok, Target: up.URL + "/x"}) }
	for _, tok := range []string{g1.ProxyToken, g2.ProxyToken} {
		if resp := get(tok); resp.StatusCode != 200 {
			t.Fatalf("before revocation: %d %s", resp.StatusCode, readAll(t, resp))
		} else {
			readAll(t, resp)
		}
	}

	rv.inOtherProcess(t, "revoke", agent.ID, cred.ID)
	wantProxyError(t, get(g1.ProxyToken), http.StatusUnauthorized, agentkeys.EUNAUTHORIZED)
	if resp := get(g2.ProxyToken); resp.StatusCode != 200 {
		t.Fatalf("the other grant stopped working: %d", resp.StatusCode)
	} else {
		readAll(t, resp)
	}

	rv.inOtherProcess(t, "delete", "", other.ID)
	wantProxyError(t, get(g2.ProxyToken), http.StatusUnauthorized, agentkeys.EUNAUTHORIZED)
	if n := len(up.requests()); n != 3 {
		t.Fatalf("upstream got %d requests, want 3", n)
	}
}

func TestLocalVault_AuditAndVaultProxy(t *testing.T) {
	up := newUpstream(t, nil)
	rv := newRealVault(t)
	ctx := context.Background()
	canary := "cnry" + strings.Repeat("7", 20)
	cred, err := rv.v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Maps", Type: agentkeys.QueryParam,
		AllowedHosts: []string{up.hostPort()}, Secret: agentkeys.Secret{Param: "key", Value: canary}})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := rv.v.CreateAgent(ctx, "bot")
	g, err := rv.v.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestProxy(t, rv.v, proxy.Config{})

	ok := srv.do(t, call{Token: g.ProxyToken, Target: up.URL + "/geocode?address=x"})
	readAll(t, ok)
	denied := srv.do(t, call{Token: g.ProxyToken, Target: "https://evil.example/?address=x"})
	readAll(t, denied)
	byName := srv.do(t, call{Token: rv.wsKey, Target: up.URL + "/geocode", Header: http.Header{agentkeys.HeaderCredentialName: {"maps"}}})
	readAll(t, byName)
	if ok.StatusCode != 200 || denied.StatusCode != 403 || byName.StatusCode != 200 {
		t.Fatalf("statuses %d %d %d", ok.StatusCode, denied.StatusCode, byName.StatusCode)
	}
	if got := up.last(t).URL.Query().Get("key"); got != canary {
		t.Fatalf("upstream key = %q", got)
	}

	// Vault.Proxy goes through the same handler (owner authority).
	resp, err := rv.h.Do(ctx, &agentkeys.ProxyRequest{CredentialName: "Maps", URL: up.URL + "/owner"})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := rv.h.Do(ctx, &agentkeys.ProxyRequest{CredentialName: "Maps", URL: "https://evil.example/"}); agentkeys.ErrorCode(err) != agentkeys.EDESTINATION {
		t.Fatalf("Vault.Proxy to evil host: %v", err)
	}

	rv.v.Close() // flushes queued outcomes
	v2, err := localvault.Open(ctx, localvault.Config{Home: rv.home, MasterKey: rv.key, Keychain: noKeychain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	rows, err := v2.ListAudit(ctx, agentkeys.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byReq := map[string]*agentkeys.AuditEvent{}
	for _, r := range rows {
		byReq[r.RequestID] = r
	}
	check := func(resp *http.Response, decision string, status int, path string) {
		t.Helper()
		r := byReq[resp.Header.Get(agentkeys.HeaderRequestID)]
		if r == nil {
			t.Fatalf("no audit row for %s", resp.Header.Get(agentkeys.HeaderRequestID))
		}
		if r.Decision != decision || r.Status != status || r.Path != path || r.CredentialID != cred.ID {
			t.Fatalf("audit row = %+v", r)
		}
	}
	check(ok, agentkeys.DecisionAllowed, 200, "/geocode")
	check(denied, agentkeys.DecisionDenied, 403, "/")
	check(byName, agentkeys.DecisionAllowed, 200, "/geocode")
	if len(rows) != 5 {
		t.Fatalf("%d audit rows, want 5", len(rows))
	}
	all, _ := json.Marshal(rows)
	if strings.Contains(string(all), canary) || strings.Contains(string(all), "address=x") {
		t.Fatalf("audit rows hold the canary or a query string: %s", all)
	}
	// And the database file itself never holds the value in the clear.
	for _, f := range []string{"vault.db", "vault.db-wal"} {
		b, err := os.ReadFile(rv.home + "/" + f)
		if err == nil && strings.Contains(string(b), canary) {
			t.Fatalf("%s holds the canary in the clear", f)
		}
	}
}
