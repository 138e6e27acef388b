package cmd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// oauthEnv is a vault with the test authorization server's app, and the
// credential "Tracker" connected through the built binary: the real
// PKCE loopback flow, with Approve playing the browser.
func oauthEnv(t *testing.T) (*testEnv, *testkit.OAuthServer, string) {
	t.Helper()
	agentkeysBinary(t)
	o := testkit.NewOAuthServer(t, time.Hour)
	e := newEnv(t)
	e.init()
	app := o.App()
	var outputs strings.Builder
	outputs.WriteString(e.mustBin(o.ClientSecret+"\n", "oauth", "apps", "add", "custom", "--client-id", app.ClientID,
		"--auth-url", app.AuthURL, "--token-url", app.TokenURL, "--allow-host", app.AllowedHosts[0], "--scope", "read", "--client-secret", "-"))

	outputs.WriteString(e.connect(t, o, "Tracker", "Connected"))
	return e, o, outputs.String()
}

// connect runs `credentials connect custom --name NAME` through the binary
// and approves it; verb is what it must print ("Connected"/"Reconnected").
func (e *testEnv) connect(t *testing.T, o *testkit.OAuthServer, name, verb string) string {
	t.Helper()
	bin := agentkeysBinary(t)
	var outputs strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "credentials", "connect", "custom", "--name", name, "--no-browser", "--timeout", "20s")
	c.Env = e.environ()
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	approved := false
	for sc.Scan() {
		line := sc.Text()
		outputs.WriteString(line + "\n")
		if u := strings.TrimSpace(line); strings.HasPrefix(u, o.URL+"/authorize?") {
			if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "state=") ||
				!regexp.MustCompile(`redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback`).MatchString(u) {
				t.Errorf("authorization URL lacks PKCE S256, state or a 127.0.0.1 redirect: %s", u)
			}
			if err := o.Approve(u); err != nil {
				t.Fatalf("approve: %v", err)
			}
			approved = true
		}
	}
	if err := c.Wait(); err != nil || !approved {
		t.Fatalf("connect: %v (approved %v)\nstdout %s\nstderr %s", err, approved, stdout.String(), outputs.String())
	}
	if !strings.Contains(stdout.String(), verb+" custom as credential "+name) {
		t.Fatalf("connect printed %q", stdout.String())
	}
	outputs.WriteString(stdout.String())
	return outputs.String()
}

// openVault opens e's vault in this process (as another process would).
func (e *testEnv) openVault(t *testing.T) *localvault.Vault {
	t.Helper()
	v, err := localvault.Open(context.Background(), localvault.Config{Home: e.home, MasterKey: e.vars["AGENTKEYS_MASTER_KEY"], Keychain: testkit.NoKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// expire marks Tracker's access token as expired and returns its secret.
func (e *testEnv) expire(t *testing.T) *agentkeys.Secret {
	t.Helper()
	v := e.openVault(t)
	defer v.Close()
	ctx := context.Background()
	r, err := v.RouteByName(ctx, "Tracker")
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.OpenSecret(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	s.ExpiresAt = time.Now().Add(-time.Minute).UTC().Round(time.Second)
	if _, err := v.UpdateCredential(ctx, r.Credential.ID, &agentkeys.CredentialUpdate{Secret: s}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *testEnv) secret(t *testing.T) *agentkeys.Secret {
	t.Helper()
	v := e.openVault(t)
	defer v.Close()
	r, err := v.RouteByName(context.Background(), "Tracker")
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.OpenSecret(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startOAuthUp runs `agentkeys up` and returns its proxy URL; it is killed at
// cleanup.
func (e *testEnv) startOAuthUp(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	up := exec.Command(agentkeysBinary(t), "up", "--listen", "127.0.0.1:0")
	up.Env = e.environ()
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	up.Stderr = io.Discard
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Process.Kill(); up.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export AGENTKEYS_PROXY_URL="); ok {
			go io.Copy(io.Discard, stdout)
			return v, up
		}
	}
	t.Fatal("up printed no AGENTKEYS_PROXY_URL")
	return "", nil
}

func proxyGet(proxyURL, token, target string) (int, string, error) {
	req, _ := http.NewRequest("GET", proxyURL+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(agentkeys.HeaderTargetURL, target)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get(agentkeys.HeaderError) + " " + string(b), nil
}

func TestBinary_OAuthConnectRefreshAndCanary(t *testing.T) {
	e, o, outputs := oauthEnv(t)
	first := e.secret(t)
	if first.Value == "" || first.RefreshToken == "" || first.OAuthApp != "custom" || first.ExpiresAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("the connection did not store access token, refresh token, app and expiry")
	}
	list := e.mustBin("", "credentials", "list", "--json")
	var listed struct{ Credentials []*agentkeys.Credential }
	if err := json.Unmarshal([]byte(list), &listed); err != nil || len(listed.Credentials) != 1 || listed.Credentials[0].Type != agentkeys.OAuth ||
		listed.Credentials[0].OAuth == nil || listed.Credentials[0].OAuth.Status != "connected" || listed.Credentials[0].OAuth.AccessTokenExpiresAt == nil {
		t.Fatalf("list: %s", list)
	}
	apps := e.mustBin("", "oauth", "apps", "list")
	if !strings.Contains(apps, "agentkeys-test") {
		t.Fatalf("apps list: %s", apps)
	}
	refreshed := e.mustBin("", "credentials", "refresh", "Tracker")
	if !regexp.MustCompile(`^✓ Refreshed Tracker: access token expires \d{4}-\d\d-\d\dT`).MatchString(refreshed) || o.RefreshCalls.Load() != 1 {
		t.Fatalf("refresh printed %q, token endpoint refreshes %d", refreshed, o.RefreshCalls.Load())
	}
	second := e.secret(t)
	if second.Value == first.Value || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh did not store the rotated pair")
	}
	// Revoked: refresh fails saying how to reconnect; connecting again under
	// the same name replaces the tokens and the credential works again.
	o.Revoked.Store(true)
	if r := e.runBin("", "credentials", "refresh", "Tracker"); r.code == 0 || !strings.Contains(r.stderr, "reconnect with `agentkeys credentials connect custom --name") {
		t.Fatalf("refresh after revoke: exit %d stderr %s", r.code, r.stderr)
	}
	o.Revoked.Store(false)
	if r := e.runBin("", "credentials", "refresh", "Tracker"); r.code == 0 {
		t.Fatal("a credential in error refreshed without a reconnect")
	}
	outputs += e.connect(t, o, "Tracker", "Reconnected")
	third := e.secret(t)
	if r := e.runBin("", "credentials", "refresh", "Tracker"); r.code != 0 {
		t.Fatalf("refresh after reconnect: %s", r.stderr)
	}
	fourth := e.secret(t)
	// No app: a clear error saying how to register one.
	if r := e.runBin("", "credentials", "connect", "github", "--no-browser"); r.code == 0 || !strings.Contains(r.stderr, "agentkeys oauth apps add github") {
		t.Fatalf("missing app: exit %d stderr %s", r.code, r.stderr)
	}
	// Refresh of a non-OAuth credential is a usage error; connect refuses
	// its name before any flow starts.
	e.mustBin("", "credentials", "add", "--name", "Plain", "--value", "k", "--allow-host", "api.example.com")
	if r := e.runBin("", "credentials", "refresh", "Plain"); r.code != 2 {
		t.Fatalf("refresh of API_KEY: exit %d %s", r.code, r.stderr)
	}
	if r := e.runBin("", "credentials", "connect", "custom", "--name", "Plain", "--no-browser"); r.code != 4 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("connect over an API_KEY: exit %d stderr %s", r.code, r.stderr)
	}
	outputs += list + apps + refreshed + e.mustBin("", "credentials", "show", "Tracker") + e.mustBin("", "audit", "--json")
	entries, _ := os.ReadDir(e.home)
	for _, ent := range entries {
		if b, err := os.ReadFile(filepath.Join(e.home, ent.Name())); err == nil {
			outputs += string(b)
		}
	}
	for what, canary := range map[string]string{"client secret": o.ClientSecret, "access token": first.Value, "refresh token": first.RefreshToken,
		"new access token": second.Value, "new refresh token": second.RefreshToken, "reconnected access token": third.Value,
		"reconnected refresh token": third.RefreshToken, "last access token": fourth.Value, "last refresh token": fourth.RefreshToken} {
		if strings.Contains(outputs, canary) {
			t.Errorf("the %s appears in a command's output or the vault's files", what)
		}
	}
}

// Two `up` processes on one vault, 64 concurrent requests on an expired
// token: exactly one call to the token endpoint.
func TestBinary_OAuthTwoUpsOneRefresh(t *testing.T) {
	e, o, _ := oauthEnv(t)
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Tracker"))
	urlA, _ := e.startOAuthUp(t)
	urlB, _ := e.startOAuthUp(t)
	e.expire(t)
	o.RefreshDelay.Store(int64(300 * time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 64 {
		u := urlA
		if i%2 == 1 {
			u = urlB
		}
		wg.Go(func() {
			status, body, err := proxyGet(u, tok, o.URL+"/api/me")
			if err != nil || status != 200 {
				errs <- body
			}
		})
	}
	wg.Wait()
	close(errs)
	for b := range errs {
		t.Errorf("a request failed: %s", b)
	}
	if n := o.RefreshCalls.Load(); n != 1 {
		t.Fatalf("token endpoint refresh calls = %d, want exactly 1", n)
	}
}

// kill -9 of the process refreshing: the row keeps the old pair and,
// once the lease runs out, another process refreshes with it.
func TestBinary_OAuthKillDuringRefresh(t *testing.T) {
	e, o, _ := oauthEnv(t)
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Tracker"))
	urlA, upA := e.startOAuthUp(t)
	old := e.expire(t)
	o.RefreshDelay.Store(int64(30 * time.Second))
	go proxyGet(urlA, tok, o.URL+"/api/me")
	deadline := time.Now().Add(10 * time.Second)
	for o.RefreshCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if o.RefreshCalls.Load() != 1 {
		t.Fatal("the refresh never reached the token endpoint")
	}
	upA.Process.Kill() // SIGKILL
	upA.Wait()
	if s := e.secret(t); s.Value != old.Value || s.RefreshToken != old.RefreshToken {
		t.Fatal("the stored pair changed although the refresh never finished")
	}
	o.RefreshDelay.Store(0)
	urlB, _ := e.startOAuthUp(t)
	status, body, err := proxyGet(urlB, tok, o.URL+"/api/me")
	if err != nil || status != 200 {
		t.Fatalf("after kill -9: %d %s %v", status, body, err)
	}
	if s := e.secret(t); s.Value == old.Value || s.RefreshToken == old.RefreshToken {
		t.Fatal("the new pair was not stored")
	}
}

// The device authorization grant through the built binary: the user code
// is printed, "entered" elsewhere, and the connection stored.
func TestBinary_OAuthDeviceFlow(t *testing.T) {
	bin := agentkeysBinary(t)
	o := testkit.NewOAuthServer(t, time.Hour)
	e := newEnv(t)
	e.init()
	app := o.App()
	e.mustBin(o.ClientSecret, "oauth", "apps", "add", "custom", "--client-id", app.ClientID, "--auth-url", app.AuthURL,
		"--token-url", app.TokenURL, "--device-url", app.DeviceURL, "--allow-host", app.AllowedHosts[0], "--client-secret", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "credentials", "connect", "custom", "--device", "--name", "Headless", "--timeout", "20s")
	c.Env = e.environ()
	stderr, _ := c.StderrPipe()
	var stdout strings.Builder
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	code := regexp.MustCompile(`enter the code (\S+)`)
	approved := false
	for sc.Scan() {
		if m := code.FindStringSubmatch(sc.Text()); m != nil {
			if err := o.ApproveDevice(m[1]); err != nil {
				t.Fatal(err)
			}
			approved = true
		}
	}
	if err := c.Wait(); err != nil || !approved {
		t.Fatalf("connect --device: %v (approved %v) %s", err, approved, stdout.String())
	}
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Headless"))
	url, _ := e.startOAuthUp(t)
	if status, body, err := proxyGet(url, tok, o.URL+"/api/me"); err != nil || status != 200 || !strings.Contains(body, "user-1") {
		t.Fatalf("through up: %d %s %v", status, body, err)
	}
	// A provider without a device endpoint is refused with what to do.
	if r := e.runBin("", "oauth", "apps", "add", "linear", "--client-id", "lin"); r.code != 0 {
		t.Fatalf("add linear: %s", r.stderr)
	}
	if r := e.runBin("", "credentials", "connect", "linear", "--device"); r.code != 2 || !strings.Contains(r.stderr, "no device authorization endpoint") {
		t.Fatalf("linear --device: exit %d %s", r.code, r.stderr)
	}
}

// serve --oauth-config refuses a bad file before serving.
func TestServe_OAuthConfigRefused(t *testing.T) {
	e := newEnv(t)
	bad := filepath.Join(t.TempDir(), "oauth.json")
	os.WriteFile(bad, []byte(`{"apps":[{"provider":"custom","clientId":"x","clientSecret":"s3cr3t-canary"}]}`), 0o600)
	e.vars["AGENTKEYS_SERVER_KEY"] = e.vars["AGENTKEYS_MASTER_KEY"]
	r := e.run("serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--oauth-config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "app 1 (custom)") || !strings.Contains(r.stderr, "--auth-url") || strings.Contains(r.stderr+r.stdout, "s3cr3t-canary") {
		t.Fatalf("exit %d stderr %s", r.code, r.stderr)
	}
}

// Remote mode: connect starts the flow on the server, the browser comes
// back to the server's callback, and the CLI sees the credential appear.
func TestBinary_OAuthRemoteConnect(t *testing.T) {
	bin := agentkeysBinary(t)
	o := testkit.NewOAuthServer(t, time.Hour)
	k, _ := agentkeys.NewKey()
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: k})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetOAuthApps([]*agentkeys.OAuthApp{o.App()}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	res, err := client.Signup(t.Context(), client.Config{BaseURL: hs.URL}, client.SignupInput{Email: "o@example.com", Password: "correct horse battery", Workspace: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.mustStdin(res.APIKey+"\n", "login", "--server", hs.URL, "--api-key", "-")
	if r := e.run("oauth", "apps", "add", "github", "--client-id", "x"); r.code != 2 || !strings.Contains(r.stderr, "works on the local vault") {
		t.Fatalf("apps add while logged in: exit %d %s", r.code, r.stderr)
	}

	connectTracker(t, bin, e, o.URL+"/authorize?", o.Approve) // approved through the server's callback
	if list := e.must("credentials", "list"); !strings.Contains(list, "Tracker") || !strings.Contains(list, "OAUTH") {
		t.Fatalf("remote list: %s", list)
	}
}

// connectTracker runs the built binary's `credentials connect custom --name
// Tracker --no-browser` for e, approves the authorization URL it prints
// (the one starting with authorize) with approve, and fails t unless it
// connects.
func connectTracker(t *testing.T, bin string, e *testEnv, authorize string, approve func(string) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "credentials", "connect", "custom", "--name", "Tracker", "--no-browser", "--timeout", "20s")
	c.Env = e.environ()
	stderr, _ := c.StderrPipe()
	var stdout strings.Builder
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u := strings.TrimSpace(sc.Text()); strings.HasPrefix(u, authorize) {
			if err := approve(u); err != nil {
				t.Fatalf("approve: %v", err)
			}
		}
	}
	if err := c.Wait(); err != nil || !strings.Contains(stdout.String(), "Connected custom as credential Tracker") {
		t.Fatalf("connect: %v %s", err, stdout.String())
	}
}
