package agentkeys_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

func TestOAuthCatalog(t *testing.T) {
	want := []string{"github", "google", "slack", "notion", "linear", "atlassian", "microsoft", "custom"}
	if got := agentkeys.OAuthProviderNames(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("providers = %v", got)
	}
	for _, p := range agentkeys.OAuthProviders {
		if !strings.HasPrefix(p.AuthURL, "https://") || !strings.HasPrefix(p.TokenURL, "https://") || len(p.Hosts) == 0 || p.RegisterURL == "" {
			t.Errorf("%s: incomplete entry", p.Name)
		}
		if _, err := agentkeys.ParseAllowedHosts(p.Hosts); err != nil {
			t.Errorf("%s: hosts: %v", p.Name, err)
		}
	}
	p, err := agentkeys.LookupOAuthProvider(" GitHub ")
	if err != nil || p.Name != "github" {
		t.Fatalf("lookup: %v %v", p, err)
	}
	p.Hosts[0] = "evil.example.com" // a copy: the catalog is not changed
	if q, _ := agentkeys.LookupOAuthProvider("github"); q.Hosts[0] != "api.github.com" {
		t.Fatal("LookupOAuthProvider handed out the catalog's slice")
	}
	if _, err := agentkeys.LookupOAuthProvider("myspace"); agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), "github, google") {
		t.Fatalf("unknown provider: %v", err)
	}
}

func TestOAuthApp_Resolve(t *testing.T) {
	a := &agentkeys.OAuthApp{Provider: "GitHub", ClientID: " id "}
	if err := a.Resolve(); err != nil {
		t.Fatal(err)
	}
	if a.Provider != "github" || a.ClientID != "id" || a.TokenURL != "https://github.com/login/oauth/access_token" || a.AllowedHosts[0] != "api.github.com" {
		t.Fatalf("resolved %+v", a)
	}
	for _, tc := range []struct {
		app  agentkeys.OAuthApp
		want string
	}{
		{agentkeys.OAuthApp{Provider: "github"}, "missing client id"},
		{agentkeys.OAuthApp{Provider: "nope", ClientID: "x"}, "unknown OAuth provider"},
		{agentkeys.OAuthApp{Provider: "custom", ClientID: "x", TokenURL: "https://id.example.com/t", AllowedHosts: []string{"api.example.com"}}, "missing auth URL"},
		{agentkeys.OAuthApp{Provider: "custom", ClientID: "x", AuthURL: "https://id.example.com/a", TokenURL: "https://id.example.com/t"}, "--allow-host"},
		{agentkeys.OAuthApp{Provider: "custom", ClientID: "x", AuthURL: "http://id.example.com/a", TokenURL: "https://id.example.com/t", AllowedHosts: []string{"a.example.com"}}, "must be https://"},
		{agentkeys.OAuthApp{Provider: "github", ClientID: "x", ClientSecret: agentkeys.Secret{Value: "a\nb"}}, "client secret contains a line break"},
	} {
		err := tc.app.Resolve()
		if agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want EINVALID with %q", tc.app.Provider, err, tc.want)
		}
	}
	loop := &agentkeys.OAuthApp{Provider: "custom", ClientID: "x", AuthURL: "http://127.0.0.1:9/a", TokenURL: "http://localhost:9/t", AllowedHosts: []string{"127.0.0.1:9"}}
	if err := loop.Resolve(); err != nil {
		t.Fatalf("loopback http: %v", err)
	}
}

func TestSealSecret_OAuthFields(t *testing.T) {
	k, _ := agentkeys.NewKey()
	in := &agentkeys.Secret{Value: "at", RefreshToken: "rt", ExpiresAt: time.Unix(1700000000, 0).UTC(), OAuthApp: "github", Scopes: []string{"repo", "read:org"}, TokenType: "bearer"}
	sealed, err := agentkeys.SealSecret(k, in, "ws_1", "cred_1", 1)
	if err != nil {
		t.Fatal(err)
	}
	out, err := agentkeys.OpenSecret(k, sealed, "ws_1", "cred_1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Value != "at" || out.RefreshToken != "rt" || !out.ExpiresAt.Equal(in.ExpiresAt) || out.OAuthApp != "github" ||
		strings.Join(out.Scopes, " ") != "repo read:org" || out.TokenType != "bearer" {
		t.Fatalf("round trip lost a field")
	}
	if err := agentkeys.ReconnectError("GitHub", "github"); agentkeys.ErrorCode(err) != agentkeys.ECREDENTIAL ||
		agentkeys.StatusForCode(agentkeys.ECREDENTIAL) != 401 || !strings.Contains(err.Error(), "agentkeys credentials connect github") {
		t.Fatalf("reconnect error: %v", err)
	}
}
