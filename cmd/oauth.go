package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
	"github.com/agentkeys/agentkeys/localvault"
)

// OAuth Connect: `oauth apps …`, `credentials connect` and `credentials
// refresh`. They act on the local vault (which keeps the apps and refreshes
// tokens); in remote mode they say so.

func newCmdOAuth(f *Factory) *cobra.Command {
	c := groupCmd("oauth", "Manage the OAuth apps that `credentials connect` uses")
	apps := groupCmd("apps", "Add, list and remove OAuth apps (client id and secret per provider)")
	apps.AddCommand(newCmdOAuthAppsAdd(f), newCmdOAuthAppsList(f), newCmdOAuthAppsRemove(f))
	c.AddCommand(apps, newCmdOAuthProviders(f))
	return c
}

// oauthVault is the local vault, or the usage error (exit 2) that what
// needs it while this CLI is logged in to a server.
func oauthVault(ctx context.Context, f *Factory, what string) (*localvault.Vault, error) {
	if _, err := localOnly(f, what); err != nil {
		return nil, err
	}
	return f.LocalVault(ctx)
}

// appFlags are the flags that describe an OAuth app.
type appFlags struct {
	ClientID, ClientSecret       string
	AuthURL, TokenURL, DeviceURL string
	Scopes, AllowHosts           []string
}

func (a *appFlags) register(c *cobra.Command, withScopes bool) {
	fl := c.Flags()
	fl.StringVar(&a.ClientID, "client-id", "", "the OAuth app's client id (from the provider's developer settings)")
	fl.StringVar(&a.ClientSecret, "client-secret", "", `the OAuth app's client secret; "-" reads it from stdin (none: a public client using PKCE only)`)
	fl.StringVar(&a.AuthURL, "auth-url", "", "authorization endpoint (custom providers; default: the catalog's)")
	fl.StringVar(&a.TokenURL, "token-url", "", "token endpoint (custom providers; default: the catalog's)")
	fl.StringVar(&a.DeviceURL, "device-url", "", "device authorization endpoint, for --device (custom providers)")
	if withScopes {
		fl.StringArrayVar(&a.Scopes, "scope", nil, "scope to ask for (repeatable; default: the provider's)")
	}
	fl.StringArrayVar(&a.AllowHosts, "allow-host", nil, "host the connected credential may be sent to (repeatable; default: the provider's)")
}

func (a *appFlags) given() bool {
	return a.ClientID != "" || a.ClientSecret != "" || a.AuthURL != "" || a.TokenURL != "" || a.DeviceURL != "" || len(a.AllowHosts) > 0
}

// app builds the app the flags describe; the client secret "-" is read
// from in.
func (a *appFlags) app(ios *IOStreams, provider string) (*agentkeys.OAuthApp, error) {
	app := &agentkeys.OAuthApp{Provider: provider, ClientID: a.ClientID, AuthURL: a.AuthURL, TokenURL: a.TokenURL,
		DeviceURL: a.DeviceURL, Scopes: a.Scopes, AllowedHosts: a.AllowHosts}
	if err := app.Resolve(); err != nil {
		return nil, err
	}
	if a.ClientSecret == "-" {
		v, err := readSecretLine(ios.In)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(v) == "" {
			return nil, errInvalid("missing client secret: stdin was empty")
		}
		app.ClientSecret = agentkeys.Secret{Value: v}
	} else {
		app.ClientSecret = agentkeys.Secret{Value: a.ClientSecret}
	}
	return app, app.Resolve()
}

func newCmdOAuthAppsAdd(f *Factory) *cobra.Command {
	var a appFlags
	c := &cobra.Command{
		Use:   "add PROVIDER --client-id ID [--client-secret -]",
		Short: "Register the OAuth app (client) a provider's connections are made and refreshed with",
		Long: `Store the client id and secret of an OAuth app you registered with the provider
(its redirect URL: http://127.0.0.1, any port). The secret is encrypted like a
credential value and never shown again. PROVIDER is one of ` + strings.Join(agentkeys.OAuthProviderNames(), ", ") + `;
"custom" also needs --auth-url, --token-url and --allow-host.`,
		Example: `  agentkeys oauth apps add github --client-id Iv1.abc --client-secret - < secret.txt
  agentkeys oauth apps add custom --client-id app --auth-url https://id.example.com/authorize \
      --token-url https://id.example.com/token --allow-host api.example.com --client-secret -`,
		Args: exactArgs(1, "the provider name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app, err := a.app(f.IOStreams, args[0])
			if err != nil {
				return err
			}
			v, err := oauthVault(ctx, f, "oauth apps add (a server takes its apps from serve --oauth-config)")
			if err != nil {
				return err
			}
			if err := v.SaveOAuthApp(ctx, app); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Saved the OAuth app for %s (client id %s); connect with `agentkeys credentials connect %s`\n",
				f.IOStreams.Green("✓"), app.Provider, app.ClientID, app.Provider)
			return nil
		},
	}
	a.register(c, true)
	return c
}

func newCmdOAuthAppsList(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the OAuth apps (never their secrets)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := oauthVault(cmd.Context(), f, "oauth apps list")
			if err != nil {
				return err
			}
			apps, err := v.ListOAuthApps(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				type appJSON struct {
					Provider     string   `json:"provider"`
					ClientID     string   `json:"clientId"`
					TokenURL     string   `json:"tokenUrl"`
					Scopes       []string `json:"scopes"`
					AllowedHosts []string `json:"allowedHosts"`
				}
				out := []appJSON{}
				for _, a := range apps {
					out = append(out, appJSON{a.Provider, a.ClientID, a.TokenURL, a.Scopes, a.AllowedHosts})
				}
				return writeJSON(f.IOStreams.Out, map[string]any{"apps": out})
			}
			if len(apps) == 0 {
				fmt.Fprintln(f.IOStreams.Out, "No OAuth apps. Add one with `agentkeys oauth apps add PROVIDER --client-id ID --client-secret -`.")
				return nil
			}
			tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROVIDER\tCLIENT ID\tSCOPES\tALLOWED HOSTS")
			for _, a := range apps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Provider, a.ClientID, strings.Join(a.Scopes, " "), strings.Join(a.AllowedHosts, ", "))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newCmdOAuthAppsRemove(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "remove PROVIDER",
		Short: "Remove a provider's OAuth app (connected credentials then cannot refresh)",
		Args:  exactArgs(1, "the provider name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := oauthVault(cmd.Context(), f, "oauth apps remove")
			if err != nil {
				return err
			}
			if err := v.DeleteOAuthApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Removed the OAuth app for %s\n", f.IOStreams.Green("✓"), strings.ToLower(args[0]))
			return nil
		},
	}
}

func newCmdOAuthProviders(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "providers",
		Short: "List the built-in OAuth providers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROVIDER\tDEVICE FLOW\tDEFAULT SCOPES\tALLOWED HOSTS\tREGISTER AN APP AT")
			for _, p := range agentkeys.OAuthProviders {
				device := "no"
				if p.DeviceURL != "" {
					device = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, device, strings.Join(p.Scopes, " "), strings.Join(p.Hosts, ", "), p.RegisterURL)
			}
			fmt.Fprintln(tw, "custom\t(--device-url)\t(--scope)\t(--allow-host)\t")
			return tw.Flush()
		},
	}
}

// ConnectOptions are the parsed flags of `credentials connect`.
type ConnectOptions struct {
	Name      string
	Scopes    []string
	NoBrowser bool
	Device    bool
	Timeout   time.Duration
	app       appFlags
}

func newCmdCredentialsConnect(f *Factory) *cobra.Command {
	o := &ConnectOptions{}
	c := &cobra.Command{
		Use:   "connect PROVIDER [--name NAME] [--scope SCOPE]...",
		Short: "Connect an OAuth account: the proxy injects and refreshes its tokens",
		Long: `Run the provider's OAuth authorization in a browser and store the result as an
OAUTH credential: access token, refresh token, expiry and scopes, encrypted, never
shown. The proxy refreshes the access token before it expires.

The authorization uses PKCE (S256) and a redirect to 127.0.0.1 on a random port;
the URL is printed and opened in a browser when there is one (--no-browser: print
only). It waits up to --timeout (5 minutes). --device uses the device flow instead
(enter a code on any machine). PROVIDER needs an app first: ` + "`agentkeys oauth apps add`" + `.`,
		Example: `  agentkeys credentials connect github --scope repo --scope read:org
  agentkeys credentials connect google --device --name "Google Drive"`,
		Args: exactArgs(1, "the provider name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConnect(cmd.Context(), f, args[0], o)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Name, "name", "", "name of the credential (default: the provider's name)")
	fl.StringArrayVar(&o.Scopes, "scope", nil, "scope to ask for (repeatable; default: the app's)")
	fl.BoolVar(&o.NoBrowser, "no-browser", false, "print the authorization URL without opening a browser")
	fl.BoolVar(&o.Device, "device", false, "use the device authorization grant (no browser on this machine)")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for the authorization")
	o.app.register(c, false)
	return c
}

func runConnect(ctx context.Context, f *Factory, provider string, o *ConnectOptions) error {
	provider = strings.ToLower(strings.TrimSpace(provider))
	if provider != agentkeys.CustomOAuthProvider {
		if _, err := agentkeys.LookupOAuthProvider(provider); err != nil {
			return err
		}
	}
	var newApp *agentkeys.OAuthApp
	if o.app.given() {
		a := o.app
		a.Scopes = o.Scopes
		app, err := a.app(f.IOStreams, provider)
		if err != nil {
			return err
		}
		newApp = app
	}
	name := o.Name
	if strings.TrimSpace(name) == "" {
		if p, err := agentkeys.LookupOAuthProvider(provider); err == nil {
			name = p.Title
		} else {
			return errInvalid("a custom connection needs a name: give one with --name")
		}
	}
	name, err := agentkeys.ValidateName("credential", name)
	if err != nil {
		return err
	}
	if rv, err := f.Vault(ctx); err != nil {
		return err
	} else if remote, ok := rv.(*remoteVault); ok {
		if o.Device || newApp != nil {
			return errInvalid("in a server workspace, connect uses the server's OAuth apps (serve --oauth-config) and its redirect: drop --device and the app flags")
		}
		return runRemoteConnect(ctx, f, remote, provider, name, o)
	}
	v, err := oauthVault(ctx, f, "credentials connect")
	if err != nil {
		return err
	}
	// An OAUTH credential of that name is reconnected (its value replaced,
	// its grants kept); any other is a conflict.
	existing, err := v.FindCredential(ctx, name)
	switch {
	case err == nil && existing.Type != agentkeys.OAuth:
		return agentkeys.Errorf(agentkeys.ECONFLICT, "a %s credential named %q already exists: choose another --name or remove it first", existing.Type, name)
	case err != nil && agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND:
		return err
	case err != nil:
		existing = nil
	}
	if newApp != nil {
		if err := v.SaveOAuthApp(ctx, newApp); err != nil {
			return err
		}
	}
	app, err := v.OAuthApp(ctx, provider)
	if err != nil {
		return err
	}
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = app.Scopes
	}
	out := f.IOStreams.ErrOut // the URL is for the person, not for a pipe
	var s *agentkeys.Secret
	if o.Device {
		t, err := oauthflow.Device(ctx, app, scopes, out, nil, o.Timeout)
		if err != nil {
			return err
		}
		s = oauthflow.Secret(t, app.Provider, scopes, "")
	} else {
		opts := oauthflow.LoopbackOptions{Scopes: scopes, Out: out, Timeout: o.Timeout}
		if !o.NoBrowser {
			opts.Open = func(u string) error {
				if !openBrowser(f.Getenv, u) {
					return errors.New("no browser could be started")
				}
				return nil
			}
		}
		t, err := oauthflow.Loopback(ctx, app, opts)
		if err != nil {
			return err
		}
		s = oauthflow.Secret(t, app.Provider, scopes, "")
	}
	var cred *agentkeys.Credential
	verb := "Connected"
	if existing != nil {
		verb = "Reconnected"
		cred, err = v.UpdateCredential(ctx, existing.ID, &agentkeys.CredentialUpdate{Secret: s})
	} else {
		cred, err = v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: name, Type: agentkeys.OAuth, AllowedHosts: app.AllowedHosts, Secret: *s})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IOStreams.Out, "%s %s %s as credential %s (OAUTH, %s)\n", f.IOStreams.Green("✓"), verb, app.Provider, cred.Name, cred.ID)
	fmt.Fprintf(f.IOStreams.Out, "Access token %s; refresh token %s. Allowed hosts: %s\n", expiryText(s.ExpiresAt),
		map[bool]string{true: "stored (the proxy refreshes before expiry)", false: "not given by the provider"}[s.RefreshToken != ""],
		strings.Join(cred.AllowedHosts, ", "))
	return nil
}

// runRemoteConnect connects through the server: it starts the flow there,
// prints (and opens) the URL and waits until the server has stored the
// credential.
func runRemoteConnect(ctx context.Context, f *Factory, rv *remoteVault, provider, name string, o *ConnectOptions) error {
	before, err := rv.FindCredential(ctx, name)
	if err != nil && agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		return err
	}
	authURL, err := rv.StartOAuth(ctx, provider, name, o.Scopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "Open this URL to authorize agentkeys:\n\n  %s\n\nWaiting up to %s for the server to store the connection …\n", authURL, o.Timeout.Round(time.Second))
	if !o.NoBrowser {
		openBrowser(f.Getenv, authURL)
	}
	deadline := time.Now().Add(o.Timeout)
	for {
		c, err := rv.FindCredential(ctx, name)
		switch {
		case err == nil && (before == nil || c.UpdatedAt.After(before.UpdatedAt)):
			fmt.Fprintf(f.IOStreams.Out, "%s Connected %s as credential %s (OAUTH, %s) in the server workspace\n", f.IOStreams.Green("✓"), provider, c.Name, c.ID)
			return nil
		case err != nil && agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND:
			return err
		}
		if time.Now().After(deadline) {
			return agentkeys.Errorf(agentkeys.ETIMEOUT, "the connection was not completed within %s: run the command again", o.Timeout.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return "does not expire"
	}
	return "expires " + t.UTC().Format(time.RFC3339)
}

func newCmdCredentialsRefresh(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "refresh NAME",
		Short: "Refresh an OAUTH credential's access token now (prints only the new expiry)",
		Args:  exactArgs(1, "the credential's name or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			v, err := oauthVault(ctx, f, "credentials refresh (the hosted proxy refreshes server credentials itself)")
			if err != nil {
				return err
			}
			c, err := v.FindCredential(ctx, args[0])
			if err != nil {
				return err
			}
			if c.Type != agentkeys.OAuth {
				return errInvalid("credential %q is %s: only OAUTH credentials (made with `agentkeys credentials connect`) refresh", c.Name, c.Type)
			}
			route, err := v.RouteByName(ctx, c.Name)
			if err != nil {
				return err
			}
			s, err := v.OpenSecret(ctx, route)
			if err != nil {
				return err
			}
			fresh, err := v.RefreshSecret(ctx, route, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Refreshed %s: access token %s\n", f.IOStreams.Green("✓"), c.Name, expiryText(fresh.ExpiresAt))
			return nil
		},
	}
}

// oauthConfigFile is the format of `serve --oauth-config`: the operator's
// OAuth apps. Keep the file readable by the server's user only: it holds
// client secrets.
//
//	{"apps": [{"provider": "github", "clientId": "…", "clientSecret": "…"},
//	          {"provider": "custom", "clientId": "…", "clientSecret": "…", "authUrl": "…",
//	           "tokenUrl": "…", "deviceUrl": "…", "scopes": ["…"], "allowedHosts": ["api.example.com"]}]}
type oauthConfigFile struct {
	Apps []struct {
		Provider     string   `json:"provider"`
		ClientID     string   `json:"clientId"`
		ClientSecret string   `json:"clientSecret"`
		AuthURL      string   `json:"authUrl"`
		TokenURL     string   `json:"tokenUrl"`
		DeviceURL    string   `json:"deviceUrl"`
		Scopes       []string `json:"scopes"`
		AllowedHosts []string `json:"allowedHosts"`
	} `json:"apps"`
}

// loadOAuthConfig reads path ("" : nothing) and gives its apps to st.
// Returns EINVALID naming the file and the app that is wrong.
func loadOAuthConfig(path string, st interface {
	SetOAuthApps([]*agentkeys.OAuthApp) error
}) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return errInvalid("--oauth-config: cannot read %s: %v", path, err)
	}
	var cfg oauthConfigFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return errInvalid("--oauth-config %s is not valid JSON of the documented shape: %v", path, err)
	}
	apps := make([]*agentkeys.OAuthApp, 0, len(cfg.Apps))
	for i, a := range cfg.Apps {
		app := &agentkeys.OAuthApp{Provider: a.Provider, ClientID: a.ClientID, ClientSecret: agentkeys.Secret{Value: a.ClientSecret},
			AuthURL: a.AuthURL, TokenURL: a.TokenURL, DeviceURL: a.DeviceURL, Scopes: a.Scopes, AllowedHosts: a.AllowedHosts}
		if err := app.Resolve(); err != nil {
			return errInvalid("--oauth-config %s, app %d (%s): %s", path, i+1, a.Provider, agentkeys.ErrorMessage(err))
		}
		apps = append(apps, app)
	}
	return st.SetOAuthApps(apps)
}
