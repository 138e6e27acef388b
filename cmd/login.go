package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/localvault"
)

// LoginOptions are the parsed flags of `login`.
type LoginOptions struct {
	IO     *IOStreams
	Config func() (*Config, error)
	Getenv func(string) string

	// Server is the server's URL (--server); "" means the one logged in to
	// before (config.json or AGENTKEYS_API_URL).
	Server string
	// APIKey is the workspace key (--api-key); "-" reads it from stdin; ""
	// means AGENTKEYS_API_KEY, else a prompt without echo in a terminal.
	APIKey    string
	AllowHTTP bool
	JSON      bool
	// Email (--email) logs in with a password instead of a key: read with
	// --password-stdin or from a prompt without echo; Workspace (name or
	// id) picks the workspace when the user has several.
	Email         string
	PasswordStdin bool
	Workspace     string
}

// NewCmdLogin returns `login`.
func NewCmdLogin(f *Factory, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams, Config: f.Config, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "login --server URL [--api-key - | --email you@example.com]",
		Short: "Point the CLI at an agentkeys server's workspace (remote mode)",
		Long: `Log in to a workspace on an agentkeys server (agentkeys serve) with its API key
(ak_ws_…). The key is checked against the server first; then config.json gets
{"apiKey", "apiUrl", "workspaceId"}, and from then on every command — credentials,
agents, proxy, audit, status, the TUI and the MCP server — acts on that workspace
instead of the local vault. ` + "`agentkeys logout`" + ` goes back to the local vault.

The key comes from --api-key (use "-" to read it from stdin: a key given as a
flag is visible to other users in the process list), else AGENTKEYS_API_KEY,
else a prompt without echo when stdin is a terminal. It is never printed.

With --email, you log in with your password instead (asked without echo, or
--password-stdin); when you belong to several workspaces, pick one with
--workspace NAME-OR-ID (or from a list in a terminal). A new API key for your
membership is made and saved; ` + "`agentkeys workspaces switch`" + ` changes workspace later.

The server URL must be https://, or http:// to this machine; plain http to
another host needs --allow-http (the key would cross the network unencrypted).`,
		Example: `  agentkeys login --server https://agentkeys.example.com
  echo "$KEY" | agentkeys login --server https://agentkeys.example.com --api-key -
  agentkeys login --server http://localhost:8080 --api-key ak_ws_…
  agentkeys login --server https://agentkeys.example.com --email you@example.com --workspace Acme`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunLogin(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Server, "server", "", "URL of the agentkeys server, such as https://agentkeys.example.com (default: the one logged in to before)")
	fl.StringVar(&opts.APIKey, "api-key", "", `workspace API key (ak_ws_…); "-" reads it from stdin (default $AGENTKEYS_API_KEY, else a prompt)`)
	fl.BoolVar(&opts.AllowHTTP, "allow-http", false, "allow a plain http:// server URL on another host (the key travels unencrypted)")
	fl.BoolVar(&opts.JSON, "json", false, `print {"workspace": {...}} as JSON`)
	fl.StringVar(&opts.Email, "email", "", "log in with your email and password instead of an API key")
	fl.BoolVar(&opts.PasswordStdin, "password-stdin", false, "with --email: read the password from stdin")
	fl.StringVar(&opts.Workspace, "workspace", "", "with --email: the workspace (name or id) to act on")
	return c
}

// RunLogin checks the key with GET /api/v1/workspace/status and, only if
// the server accepts it, writes apiKey, apiUrl and workspaceId to
// config.json (0600). Nothing is written on any error.
func RunLogin(ctx context.Context, opts *LoginOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	server := strings.TrimSpace(opts.Server)
	if server == "" {
		server = strings.TrimSpace(cfg.APIURL)
	}
	if server == "" {
		return errInvalid("give the server to log in to: agentkeys login --server https://agentkeys.example.com")
	}
	var key string
	if strings.TrimSpace(opts.Email) != "" {
		if opts.APIKey != "" {
			return errInvalid("give --email or --api-key, not both")
		}
		key, err = opts.keyByPassword(ctx, server)
	} else {
		key, err = opts.readKey()
	}
	if err != nil {
		return err
	}
	if !agentkeys.IsWorkspaceKey(key) {
		return errInvalid("that is not a workspace API key: it must start with ak_ws_ (a pxr_ proxy token is for agents, not for logging in)")
	}
	c, err := client.New(client.Config{BaseURL: server, APIKey: key, AllowInsecureHTTP: opts.AllowHTTP, UserAgent: cliUserAgent()})
	if err != nil {
		if strings.Contains(agentkeys.ErrorMessage(err), "unencrypted") {
			return errInvalid("%s, or pass --allow-http if you accept that", strings.TrimSuffix(agentkeys.ErrorMessage(err), "."))
		}
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		if agentkeys.ErrorCode(err) == agentkeys.EUNAUTHORIZED {
			return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "the server at %s refused this API key (%s): check the key and try again; nothing was saved",
				c.BaseURL(), strings.TrimSuffix(agentkeys.ErrorMessage(err), "."))
		}
		return fmt.Errorf("log in to %s: %w", c.BaseURL(), err)
	}
	if strings.TrimSpace(opts.Email) != "" {
		err = saveLogin(cfg, c.BaseURL(), st.ID, key)
	} else {
		err = updateConfigFile(cfg, func(m map[string]any) {
			m["apiKey"] = key
			m["apiUrl"] = c.BaseURL()
			m["workspaceId"] = st.ID
		})
	}
	if err != nil {
		return err
	}
	if env := strings.TrimSpace(opts.getenv("AGENTKEYS_API_URL")); env != "" && strings.TrimRight(env, "/") != c.BaseURL() {
		opts.IO.Warnf("AGENTKEYS_API_URL is set to %s and overrides config.json: unset it to use %s", env, c.BaseURL())
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"workspace": st})
	}
	ios := opts.IO
	out := ios.Out
	fmt.Fprintf(out, "%s Logged in to %s\n", ios.Green("✓"), c.BaseURL())
	fmt.Fprintf(out, "Workspace:  %s (%s)\n", agentkeys.SafeText(st.Name), st.ID)
	if st.Plan != "" {
		fmt.Fprintf(out, "Plan:       %s\n", st.Plan)
	}
	fmt.Fprintf(out, "Config:     %s\n", cfg.ConfigPath())
	fmt.Fprintln(out, "Commands now act on this workspace; `agentkeys logout` returns to the local vault.")
	return nil
}

// keyByPassword logs in with email and password, picks the workspace and
// returns a new API key for that membership.
func (o *LoginOptions) keyByPassword(ctx context.Context, server string) (string, error) {
	pw, err := readPassword(o.IO, o.PasswordStdin, "Password for "+strings.TrimSpace(o.Email)+": ")
	if err != nil {
		return "", err
	}
	ccfg := client.Config{BaseURL: server, AllowInsecureHTTP: o.AllowHTTP, UserAgent: cliUserAgent()}
	in := client.LoginInput{Email: strings.TrimSpace(o.Email), Password: pw, KeyName: "cli"}
	res, err := client.Login(ctx, ccfg, in)
	if err != nil {
		return "", err
	}
	var pick *client.UserWorkspace
	for i, w := range res.Workspaces {
		if o.Workspace != "" && (w.ID == o.Workspace || strings.EqualFold(w.Name, o.Workspace)) {
			pick = &res.Workspaces[i]
		}
	}
	switch {
	case pick != nil:
	case o.Workspace != "":
		return "", agentkeys.Errorf(agentkeys.ENOTFOUND, "you are not a member of a workspace %q (yours: %s)", o.Workspace, workspaceNames(res.Workspaces))
	case len(res.Workspaces) == 0:
		return "", agentkeys.Errorf(agentkeys.ENOTFOUND, "you are not a member of any workspace on this server")
	case len(res.Workspaces) == 1:
		pick = &res.Workspaces[0]
	case !o.IO.IsStdinTTY() || o.PasswordStdin:
		return "", errInvalid("you belong to several workspaces: pick one with --workspace (%s)", workspaceNames(res.Workspaces))
	default:
		for i, w := range res.Workspaces {
			fmt.Fprintf(o.IO.ErrOut, "  %d. %s (%s)\n", i+1, w.Name, w.Role)
		}
		fmt.Fprint(o.IO.ErrOut, "Workspace number: ")
		var n int
		if _, err := fmt.Fscanln(o.IO.In, &n); err != nil || n < 1 || n > len(res.Workspaces) {
			return "", errInvalid("pick a number from the list, or give --workspace")
		}
		pick = &res.Workspaces[n-1]
	}
	in.WorkspaceID = pick.ID
	if res, err = client.Login(ctx, ccfg, in); err != nil {
		return "", err
	}
	return res.APIKey, nil
}

func workspaceNames(ws []client.UserWorkspace) string {
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	return strings.Join(names, ", ")
}

func (o *LoginOptions) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// readKey finds the API key: --api-key (or stdin with "-"), else
// AGENTKEYS_API_KEY, else a prompt in a terminal.
func (o *LoginOptions) readKey() (string, error) {
	switch {
	case o.APIKey == "-":
		k, err := readSecretLine(o.IO.In)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(k) == "" {
			return "", errInvalid("--api-key - read no key from stdin")
		}
		return strings.TrimSpace(k), nil
	case strings.TrimSpace(o.APIKey) != "":
		return strings.TrimSpace(o.APIKey), nil
	}
	if k := strings.TrimSpace(o.getenv("AGENTKEYS_API_KEY")); k != "" {
		return k, nil
	}
	if !o.IO.IsStdinTTY() {
		return "", errInvalid("give the workspace API key: --api-key - (read from stdin), AGENTKEYS_API_KEY, or run in a terminal to be asked")
	}
	k, err := o.IO.PromptSecret("Workspace API key (ak_ws_…): ")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(k) == "" {
		return "", errInvalid("no API key given")
	}
	return strings.TrimSpace(k), nil
}

// LogoutOptions are the parsed flags of `logout`.
type LogoutOptions struct {
	IO     *IOStreams
	Config func() (*Config, error)
	Getenv func(string) string
	JSON   bool
}

// NewCmdLogout returns `logout`.
func NewCmdLogout(f *Factory, runF func(context.Context, *LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{IO: f.IOStreams, Config: f.Config, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "logout",
		Short: "Forget the server's API key and go back to the local vault",
		Long: `Remove apiKey, apiUrl and workspaceId from config.json: commands act on the
local vault again, and config.json names the local vault's workspace again. The key itself stays valid on the server (rotate it there
if it may have leaked). Logging out when not logged in does nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunLogout(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"loggedOut": true|false, "server": URL} as JSON`)
	return c
}

// RunLogout removes the server fields from config.json, keeping any other.
func RunLogout(ctx context.Context, opts *LogoutOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	m, err := readConfigMap(cfg)
	if err != nil {
		return err
	}
	key, _ := m["apiKey"].(string)
	server, _ := m["apiUrl"].(string)
	had := key != "" || server != ""
	if had {
		// Back to the local vault: its workspace id, when there is one,
		// replaces the remote workspace's (what init wrote before login).
		local, _ := localvault.Inspect(ctx, cfg.Home)
		err := updateConfigFile(cfg, func(m map[string]any) {
			delete(m, "apiKey")
			delete(m, "apiUrl")
			delete(m, "workspaceId") // the remote workspace's
			delete(m, workspaceKeysField)
			delete(m, "workspaceKeysUrl")
			if local != nil {
				m["apiKey"], m["apiUrl"], m["workspaceId"] = "", "", local.WorkspaceID
			}
		})
		if err != nil {
			return err
		}
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	envRemote := strings.TrimSpace(getenv("AGENTKEYS_API_KEY")) != "" && strings.TrimSpace(getenv("AGENTKEYS_API_URL")) != ""
	if envRemote {
		opts.IO.Warnf("AGENTKEYS_API_KEY and AGENTKEYS_API_URL are set in the environment: commands still act on %s until you unset them",
			strings.TrimSpace(getenv("AGENTKEYS_API_URL")))
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"loggedOut": had, "server": server})
	}
	if !had {
		fmt.Fprintf(opts.IO.Out, "Not logged in to a server: commands act on the local vault in %s.\n", cfg.Home)
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "%s Logged out of %s. Commands act on the local vault in %s again.\n", opts.IO.Green("✓"), server, cfg.Home)
	return nil
}
