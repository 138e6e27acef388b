package agentkeys

import (
	"context"
	"slices"
	"strings"
)

// OAuthProvider is a service an OAUTH credential can be connected to: where
// its authorization server is, what it grants by default, and which hosts
// the connected credential may be sent to.
type OAuthProvider struct {
	Name      string // what `credentials connect` and `oauth apps add` take
	Title     string // for people: "GitHub"
	AuthURL   string // authorization endpoint
	TokenURL  string // token endpoint
	DeviceURL string // device authorization endpoint; "" when the provider has none
	Scopes    []string
	// RotatesRefreshTokens: a refresh answers with a new refresh token and
	// the old one stops working, so the pair must be saved atomically.
	RotatesRefreshTokens bool
	Hosts                []string // the connected credential's allowlist
	// RegisterURL is where a person registers an OAuth app (client id and
	// secret) with the provider.
	RegisterURL string
}

// CustomOAuthProvider is the provider name whose endpoints, scopes and hosts
// come from the command line or configuration instead of the catalog.
const CustomOAuthProvider = "custom"

// OAuthProviders is the built-in catalog.
var OAuthProviders = []OAuthProvider{
	{Name: "github", Title: "GitHub",
		AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token",
		DeviceURL: "https://github.com/login/device/code", Scopes: []string{"repo", "read:user"},
		RotatesRefreshTokens: true, Hosts: []string{"api.github.com", "uploads.github.com"},
		RegisterURL: "https://github.com/settings/applications/new"},
	{Name: "google", Title: "Google",
		AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", TokenURL: "https://oauth2.googleapis.com/token",
		DeviceURL: "https://oauth2.googleapis.com/device/code", Scopes: []string{"openid", "email"},
		Hosts:       []string{"*.googleapis.com"},
		RegisterURL: "https://console.cloud.google.com/apis/credentials"},
	{Name: "slack", Title: "Slack",
		AuthURL: "https://slack.com/oauth/v2/authorize", TokenURL: "https://slack.com/api/oauth.v2.access",
		Scopes: []string{"chat:write", "channels:read"}, RotatesRefreshTokens: true,
		Hosts: []string{"slack.com"}, RegisterURL: "https://api.slack.com/apps"},
	{Name: "notion", Title: "Notion",
		AuthURL: "https://api.notion.com/v1/oauth/authorize", TokenURL: "https://api.notion.com/v1/oauth/token",
		RotatesRefreshTokens: true, Hosts: []string{"api.notion.com"},
		RegisterURL: "https://www.notion.so/my-integrations"},
	{Name: "linear", Title: "Linear",
		AuthURL: "https://linear.app/oauth/authorize", TokenURL: "https://api.linear.app/oauth/token",
		Scopes: []string{"read", "write"}, RotatesRefreshTokens: true,
		Hosts: []string{"api.linear.app"}, RegisterURL: "https://linear.app/settings/api/applications/new"},
	{Name: "atlassian", Title: "Atlassian",
		AuthURL: "https://auth.atlassian.com/authorize", TokenURL: "https://auth.atlassian.com/oauth/token",
		Scopes: []string{"offline_access", "read:jira-work", "read:jira-user"}, RotatesRefreshTokens: true,
		Hosts: []string{"api.atlassian.com", "*.atlassian.net"}, RegisterURL: "https://developer.atlassian.com/console/myapps/"},
	{Name: "microsoft", Title: "Microsoft",
		AuthURL:   "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		TokenURL:  "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		DeviceURL: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
		Scopes:    []string{"offline_access", "User.Read"}, RotatesRefreshTokens: true,
		Hosts: []string{"graph.microsoft.com"}, RegisterURL: "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps"},
}

// OAuthProviderNames lists the catalog's names and "custom".
func OAuthProviderNames() []string {
	names := make([]string, 0, len(OAuthProviders)+1)
	for _, p := range OAuthProviders {
		names = append(names, p.Name)
	}
	return append(names, CustomOAuthProvider)
}

// LookupOAuthProvider finds a catalog provider by name, ignoring case and
// surrounding space. Returns EINVALID naming the known providers otherwise
// ("custom" is not in the catalog: its endpoints come with the app).
func LookupOAuthProvider(name string) (OAuthProvider, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	for _, p := range OAuthProviders {
		if p.Name == key {
			p.Scopes, p.Hosts = slices.Clone(p.Scopes), slices.Clone(p.Hosts)
			return p, nil
		}
	}
	return OAuthProvider{}, Errorf(EINVALID, "unknown OAuth provider %q: use one of %s", name, strings.Join(OAuthProviderNames(), ", "))
}

// OAuthApp is an OAuth client registered with a provider by the user or the
// operator: the client id and secret a connection is made and refreshed
// with. For a catalog provider the endpoints, scopes and hosts are the
// catalog's unless given; for "custom" they are required.
type OAuthApp struct {
	Provider     string
	ClientID     string
	ClientSecret Secret // Value only; empty for a public client (PKCE only)
	AuthURL      string
	TokenURL     string
	DeviceURL    string
	Scopes       []string
	AllowedHosts []string
}

// Resolve fills the app's blanks from the catalog and checks it: a known
// provider (or custom with auth and token URLs and allowed hosts), a client
// id, and endpoints that are https (http only on loopback). Returns
// EINVALID saying what to fix.
func (a *OAuthApp) Resolve() error {
	a.Provider = strings.ToLower(strings.TrimSpace(a.Provider))
	a.ClientID = strings.TrimSpace(a.ClientID)
	if a.Provider != CustomOAuthProvider {
		p, err := LookupOAuthProvider(a.Provider)
		if err != nil {
			return err
		}
		a.AuthURL = cmpOr(a.AuthURL, p.AuthURL)
		a.TokenURL = cmpOr(a.TokenURL, p.TokenURL)
		a.DeviceURL = cmpOr(a.DeviceURL, p.DeviceURL)
		if len(a.Scopes) == 0 {
			a.Scopes = p.Scopes
		}
		if len(a.AllowedHosts) == 0 {
			a.AllowedHosts = p.Hosts
		}
	}
	if a.ClientID == "" {
		return Errorf(EINVALID, "missing client id: register an OAuth app with the provider and give its id with --client-id")
	}
	if err := checkField("client id", a.ClientID, true); err != nil {
		return err
	}
	if err := checkField("client secret", a.ClientSecret.Value, false); err != nil {
		return err
	}
	for _, u := range []struct{ what, v string }{{"auth URL", a.AuthURL}, {"token URL", a.TokenURL}, {"device URL", a.DeviceURL}} {
		if u.v == "" && u.what == "device URL" {
			continue
		}
		if u.v == "" {
			return Errorf(EINVALID, "missing %s: a custom provider needs --auth-url and --token-url", u.what)
		}
		parsed, err := ParseTarget(u.v)
		if err != nil {
			return Errorf(EINVALID, "%s: %s", u.what, ErrorMessage(err))
		}
		if parsed.Scheme != "https" && !IsLoopbackHost(parsed.Hostname()) {
			return Errorf(EINVALID, "%s must be https:// (http only for loopback addresses)", u.what)
		}
	}
	if len(a.AllowedHosts) == 0 {
		return Errorf(EINVALID, "a custom provider needs the hosts its tokens may be sent to: --allow-host api.example.com")
	}
	hosts, err := ParseAllowedHosts(a.AllowedHosts)
	if err != nil {
		return err
	}
	a.AllowedHosts = hosts
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// OAuthApps is the part of a store that keeps OAuth apps. The client
// secret is sealed like a credential value and never returned by List.
type OAuthApps interface {
	// SaveOAuthApp resolves and stores app, replacing the provider's app.
	// Returns EINVALID for a bad app; nothing is written then.
	SaveOAuthApp(ctx context.Context, app *OAuthApp) error
	// OAuthApp returns the provider's app with its client secret. Returns
	// ENOTFOUND, saying how to register one, when there is none.
	OAuthApp(ctx context.Context, provider string) (*OAuthApp, error)
	// ListOAuthApps returns the apps without their client secrets, by
	// provider name.
	ListOAuthApps(ctx context.Context) ([]*OAuthApp, error)
	// DeleteOAuthApp removes the provider's app. Returns ENOTFOUND.
	DeleteOAuthApp(ctx context.Context, provider string) error
}

// MissingOAuthApp is the ENOTFOUND of a provider without an app.
func MissingOAuthApp(provider string) error {
	how := "register an OAuth app with the provider"
	if p, err := LookupOAuthProvider(provider); err == nil && p.RegisterURL != "" {
		how = "register an OAuth app at " + p.RegisterURL
	}
	return Errorf(ENOTFOUND, "no OAuth app for %s: %s (redirect URL http://127.0.0.1), then run `agentkeys oauth apps add %s --client-id ID --client-secret -`",
		provider, how, provider)
}

// TokenRefresher is what the proxy needs to refresh an OAUTH credential;
// a ProxyBackend that keeps OAuth connections implements it.
type TokenRefresher interface {
	// RefreshSecret returns a fresh secret for the route's OAUTH
	// credential, given the one the caller found stale. If another caller
	// (in this process, another process or another replica) has refreshed
	// it since, its result is returned without a new refresh. A rotated
	// refresh token is stored atomically with its access token; if storing
	// fails, the old pair stays and an error is returned. Returns
	// ECREDENTIAL when the provider refused the refresh token
	// (invalid_grant), EUPSTREAM when the token endpoint could not be
	// reached (the credential is not marked broken then).
	RefreshSecret(ctx context.Context, r *Route, stale *Secret) (*Secret, error)
}

// ReconnectError is the ECREDENTIAL of an OAUTH credential whose refresh
// token the provider refused.
func ReconnectError(credentialName, provider string) error {
	return Errorf(ECREDENTIAL, "the OAuth connection of credential %q was revoked or expired: reconnect with `agentkeys credentials connect %s --name %q`",
		credentialName, cmpOr(provider, "PROVIDER"), credentialName)
}
