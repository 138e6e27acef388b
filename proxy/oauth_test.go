package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

func init() { oauthflow.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} }

// connectOAuth saves the server's app in v, runs the real PKCE loopback
// flow against it (Approve playing the browser) and stores the connection
// as credential name. expired: the stored access token is marked as
// expired, so the next proxied request must refresh it.
func connectOAuth(t *testing.T, v *testkit.Vault, o *testkit.OAuthServer, name string, expired bool) *agentkeys.Credential {
	t.Helper()
	ctx := context.Background()
	if err := v.SaveOAuthApp(ctx, o.App()); err != nil {
		t.Fatalf("save app: %v", err)
	}
	app, err := v.OAuthApp(ctx, agentkeys.CustomOAuthProvider)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oauthflow.Loopback(ctx, app, oauthflow.LoopbackOptions{Open: o.Approve, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("loopback flow: %v", err)
	}
	s := oauthflow.Secret(tok, app.Provider, app.Scopes, "")
	if s.Value == "" || s.RefreshToken == "" || s.ExpiresAt.IsZero() {
		t.Fatalf("token lacks access token, refresh token or expiry")
	}
	if expired {
		s.ExpiresAt = time.Now().Add(-time.Minute).UTC().Round(time.Second)
	}
	c, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: name, Type: agentkeys.OAuth, AllowedHosts: app.AllowedHosts, Secret: *s})
	if err != nil {
		t.Fatalf("create credential: %v", err)
	}
	return c
}

// oauthGet calls the resource server through the proxy. A proxy-made
// error is returned as its status, code and message.
func oauthGet(t *testing.T, h *proxy.Handler, o *testkit.OAuthServer, name string) (status int, code, body string) {
	t.Helper()
	res, err := h.Do(context.Background(), &agentkeys.ProxyRequest{CredentialName: name, URL: o.URL + "/api/me"})
	if err != nil {
		code := agentkeys.ErrorCode(err)
		return agentkeys.StatusForCode(code), code, agentkeys.ErrorMessage(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, "", string(b)
}

func storedSecret(t *testing.T, v *localvault.Vault, name string) *agentkeys.Secret {
	t.Helper()
	r, err := v.RouteByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.OpenSecret(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOAuth_RefreshBeforeExpiryRotatesAndSaves(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	connectOAuth(t, v, o, "Tracker", true)
	old := storedSecret(t, v.Vault, "Tracker")

	status, _, body := oauthGet(t, v.Handler, o, "Tracker")
	if status != 200 || !strings.Contains(body, "user-1") {
		t.Fatalf("status %d body %s, want 200 from the resource server", status, body)
	}
	if n := o.RefreshCalls.Load(); n != 1 {
		t.Fatalf("refresh calls = %d, want 1", n)
	}
	now := storedSecret(t, v.Vault, "Tracker")
	if now.Value == old.Value || now.RefreshToken == old.RefreshToken || !now.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("the rotated pair and new expiry were not saved")
	}
	if now.OAuthApp != agentkeys.CustomOAuthProvider {
		t.Fatalf("app = %q", now.OAuthApp)
	}
	// The listing shows the new expiry (and never a token).
	c, err := v.FindCredential(context.Background(), "Tracker")
	if err != nil || c.OAuth == nil || c.OAuth.Status != agentkeys.OAuthConnected || c.OAuth.AccessTokenExpiresAt == nil ||
		!c.OAuth.AccessTokenExpiresAt.Equal(now.ExpiresAt) {
		t.Fatalf("listed OAuth state %+v, want connected with the new expiry %v", c.OAuth, now.ExpiresAt)
	}
	// Fresh now: no further refresh.
	if status, _, _ := oauthGet(t, v.Handler, o, "Tracker"); status != 200 || o.RefreshCalls.Load() != 1 {
		t.Fatalf("second request: status %d, refresh calls %d", status, o.RefreshCalls.Load())
	}
	// The stored pair survives a reopen (another process sees it).
	v2 := v.Reopen(t)
	if status, _, _ := oauthGet(t, v2.Handler, o, "Tracker"); status != 200 || o.RefreshCalls.Load() != 1 {
		t.Fatalf("after reopen: status %d, refresh calls %d", status, o.RefreshCalls.Load())
	}
}

func TestOAuth_SingleFlight64Concurrent(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	connectOAuth(t, v, o, "Tracker", true)
	o.RefreshDelay.Store(int64(200 * time.Millisecond))
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	for range 64 {
		wg.Go(func() {
			res, err := v.Handler.Do(context.Background(), &agentkeys.ProxyRequest{CredentialName: "Tracker", URL: o.URL + "/api/me"})
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a request answered %d, want 200", c)
		}
	}
	if n := o.RefreshCalls.Load(); n != 1 {
		t.Fatalf("token endpoint refresh calls = %d, want exactly 1", n)
	}
}

// Two handles on one vault file are two caches, two key rings and two
// proxies, as two processes would have: the row lease lets one refresh.
func TestOAuth_SingleRefreshAcrossVaultHandles(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	connectOAuth(t, v, o, "Tracker", true)
	other, err := localvault.Open(context.Background(), v.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	h2 := proxy.New(other, proxy.Config{})
	o.RefreshDelay.Store(int64(300 * time.Millisecond))
	var wg sync.WaitGroup
	codes := make(chan int, 32)
	for i := range 32 {
		h := v.Handler
		if i%2 == 1 {
			h = h2
		}
		wg.Go(func() {
			res, err := h.Do(context.Background(), &agentkeys.ProxyRequest{CredentialName: "Tracker", URL: o.URL + "/api/me"})
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a request answered %d, want 200", c)
		}
	}
	if n := o.RefreshCalls.Load(); n != 1 {
		t.Fatalf("token endpoint refresh calls = %d, want exactly 1", n)
	}
}

func TestOAuth_RevokedIsCredentialError(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	c := connectOAuth(t, v, o, "Tracker", true)
	o.Revoked.Store(true)
	for i := range 2 {
		status, code, body := oauthGet(t, v.Handler, o, "Tracker")
		if status != 401 || code != agentkeys.ECREDENTIAL || !strings.Contains(body, "agentkeys credentials connect") {
			t.Fatalf("request %d: status %d %s body %s, want 401 CREDENTIAL_ERROR saying how to reconnect", i, status, code, body)
		}
	}
	if n := o.RefreshCalls.Load(); n != 1 {
		t.Fatalf("refresh calls = %d: a credential in error must not be refreshed again", n)
	}
	if listed, _ := v.FindCredential(context.Background(), "Tracker"); listed.OAuth == nil || listed.OAuth.Status != agentkeys.OAuthError {
		t.Fatalf("listed OAuth state %+v, want error", listed.OAuth)
	}
	evs, err := v.ListAudit(context.Background(), agentkeys.AuditFilter{CredentialID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Code != agentkeys.ECREDENTIAL || evs[0].Status != 401 {
		t.Fatalf("audit: %d rows, first %+v", len(evs), evs[0])
	}
}

func TestOAuth_TokenEndpointDownIs502AndNotBroken(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	connectOAuth(t, v, o, "Tracker", true)
	o.Down.Store(true)
	status, code, body := oauthGet(t, v.Handler, o, "Tracker")
	if status != 502 || code != agentkeys.EUPSTREAM {
		t.Fatalf("status %d %s body %s, want 502 UPSTREAM_UNREACHABLE", status, code, body)
	}
	o.Down.Store(false)
	if status, _, body := oauthGet(t, v.Handler, o, "Tracker"); status != 200 {
		t.Fatalf("after the endpoint is back: status %d body %s, want 200 (the credential must not be marked broken)", status, body)
	}
}

// A token without expiry that the upstream refuses is refreshed before
// the next request.
func TestOAuth_Upstream401TriggersRefresh(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	c := connectOAuth(t, v, o, "Tracker", false)
	s := storedSecret(t, v.Vault, "Tracker")
	s.Value, s.ExpiresAt = "not-a-valid-access-token", time.Time{}
	if _, err := v.UpdateCredential(context.Background(), c.ID, &agentkeys.CredentialUpdate{Secret: s}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := oauthGet(t, v.Handler, o, "Tracker"); status != 401 || o.RefreshCalls.Load() != 0 {
		t.Fatalf("first request: status %d, refresh calls %d; want the upstream's 401 and no refresh", status, o.RefreshCalls.Load())
	}
	if status, _, body := oauthGet(t, v.Handler, o, "Tracker"); status != 200 || o.RefreshCalls.Load() != 1 {
		t.Fatalf("second request: status %d body %s, refresh calls %d; want a refresh and 200", status, body, o.RefreshCalls.Load())
	}
}

// Canary: no access token, refresh token or client secret in answers,
// audit rows or the vault's files.
func TestOAuth_TokensNeverLeak(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	c := connectOAuth(t, v, o, "Tracker", true)
	before := storedSecret(t, v.Vault, "Tracker")
	_, _, body := oauthGet(t, v.Handler, o, "Tracker")
	after := storedSecret(t, v.Vault, "Tracker")
	o.Revoked.Store(true)
	s := storedSecret(t, v.Vault, "Tracker")
	s.ExpiresAt = time.Now().Add(-time.Hour)
	if _, err := v.UpdateCredential(context.Background(), c.ID, &agentkeys.CredentialUpdate{Secret: s}); err != nil {
		t.Fatal(err)
	}
	_, _, body2 := oauthGet(t, v.Handler, o, "Tracker")
	apps, _ := v.ListOAuthApps(context.Background())
	appsJSON, _ := json.Marshal(apps)
	evs, _ := v.ListAudit(context.Background(), agentkeys.AuditFilter{})
	audit, _ := json.Marshal(evs)
	v.Close()
	haystack := body + body2 + string(appsJSON) + string(audit)
	entries, _ := os.ReadDir(v.Config.Home)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(v.Config.Home, e.Name())); err == nil {
			haystack += string(b)
		}
	}
	for what, canary := range map[string]string{"access token": before.Value, "refresh token": before.RefreshToken,
		"new access token": after.Value, "new refresh token": after.RefreshToken, "client secret": o.ClientSecret} {
		if strings.Contains(haystack, canary) {
			t.Errorf("the %s appears in an answer, the audit log or the vault's files", what)
		}
	}
}
