package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

// The server flow: start with A's key, the browser goes through the
// provider to the callback, the credential lands in A (not B), the state
// works once, and the hosted proxy refreshes the expired token.
func TestOAuth_ServerFlow(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			o := testkit.NewOAuthServer(t, time.Hour)
			if err := s.store.SetOAuthApps([]*agentkeys.OAuthApp{o.App()}); err != nil {
				t.Fatal(err)
			}
			idA, keyA := s.signup("Alpha")
			_, keyB := s.signup("Beta")

			s.do("POST", "/api/v1/oauth/nope/start", keyA, map[string]any{"name": "X"}).want(t, 400, agentkeys.EINVALID)
			s.do("POST", "/api/v1/oauth/github/start", keyA, map[string]any{"name": "X"}).want(t, 404, agentkeys.ENOTFOUND)
			s.do("POST", "/api/v1/oauth/custom/start", "", map[string]any{"name": "X"}).want(t, 401, agentkeys.EUNAUTHORIZED)

			a := s.do("POST", "/api/v1/oauth/custom/start", keyA, map[string]any{"name": "Tracker", "scopes": []string{"read"}})
			a.want(t, 200, "")
			var start struct{ AuthorizeURL string }
			a.decode(t, &start)
			if !strings.Contains(start.AuthorizeURL, "code_challenge_method=S256") ||
				!strings.Contains(start.AuthorizeURL, "redirect_uri="+strings.ReplaceAll(strings.ReplaceAll(s.url, ":", "%3A"), "/", "%2F")+"%2Fapi%2Fv1%2Foauth%2Fcallback") {
				t.Fatalf("authorize URL %s", start.AuthorizeURL)
			}
			// The browser: the provider redirects to the callback.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := noFollow.Get(start.AuthorizeURL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			callback := res.Header.Get("Location")
			if !strings.HasPrefix(callback, s.url+"/api/v1/oauth/callback?") {
				t.Fatalf("provider redirected to %q", callback)
			}
			res, err = http.Get(callback)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("callback = %d", res.StatusCode)
			}
			if !strings.Contains(string(page), `<a href="/credentials">Credentials</a>`) {
				t.Errorf("the callback page does not link back to the dashboard's credentials:\n%s", page)
			}
			// Single use.
			res, err = http.Get(callback)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Fatalf("second callback = %d, want 401", res.StatusCode)
			}
			// A forged state.
			s.do("GET", "/api/v1/oauth/callback?state=forged&code=x", "", nil).want(t, 401, agentkeys.EUNAUTHORIZED)

			if list := s.do("GET", "/api/v1/credentials", keyB, nil); strings.Contains(string(list.body), "Tracker") {
				t.Fatal("the connection landed in B's workspace")
			}
			c := s.do("GET", "/api/v1/credentials/Tracker", keyA, nil)
			c.want(t, 200, "")
			var cred agentkeys.Credential
			c.decode(t, &cred)
			if cred.Type != agentkeys.OAuth {
				t.Fatalf("credential %s", c.body)
			}

			// The hosted proxy refreshes an expired token.
			ws := s.store.Workspace(idA)
			r, err := ws.RouteByName(context.Background(), "Tracker")
			if err != nil {
				t.Fatal(err)
			}
			sec, err := s.store.OpenSecret(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			sec.ExpiresAt = time.Now().Add(-time.Minute)
			if _, err := ws.UpdateCredential(context.Background(), cred.ID, &agentkeys.CredentialUpdate{Secret: sec}); err != nil {
				t.Fatal(err)
			}
			agent := s.createAgent(keyA, "bot")
			g := s.assign(keyA, agent.ID, cred.ID)
			if p := proxyGet(t, s.url, g.ProxyToken, "", o.URL+"/api/me"); p.status != 200 || !strings.Contains(string(p.body), "user-1") {
				t.Fatalf("hosted proxy: %d %s", p.status, p.body)
			}
			if n := o.RefreshCalls.Load(); n != 1 {
				t.Fatalf("refresh calls = %d", n)
			}
			// Revoked: 401 CREDENTIAL_ERROR through the hosted proxy.
			o.Revoked.Store(true)
			sec, _ = s.store.OpenSecret(context.Background(), r)
			sec.ExpiresAt = time.Now().Add(-time.Minute)
			ws.UpdateCredential(context.Background(), cred.ID, &agentkeys.CredentialUpdate{Secret: sec})
			proxyGet(t, s.url, g.ProxyToken, "", o.URL+"/api/me").want(t, 401, agentkeys.ECREDENTIAL)
			if !strings.Contains(s.logs.String(), `"msg":"credential.error"`) || !strings.Contains(s.logs.String(), cred.ID) {
				t.Error("no credential.error event in the server's log")
			}
			for _, leak := range []string{sec.Value, sec.RefreshToken, o.ClientSecret} {
				if strings.Contains(s.logs.String(), leak) {
					t.Error("a token or the client secret is in the server's log")
				}
			}
		})
	}
}
