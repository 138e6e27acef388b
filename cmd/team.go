package cmd

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
)

// Team commands (`workspaces`, `team`, `keys`) act on the server this CLI is
// logged in to, through client/; they are not vault operations, so they do
// not go through agentkeys.Vault. On the local vault they say they need a
// server (exit 2).

// serverSession is the logged-in server: its client and the configuration.
type serverSession struct {
	c   *client.Client
	cfg *Config
}

// needServer returns the session of the server the CLI is logged in to.
// Returns EINVALID (exit 2) on the local vault.
func needServer(f *Factory, what string) (*serverSession, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if !remoteConfigured(cfg) {
		return nil, errInvalid("`agentkeys %s` needs a server: log in first (agentkeys login --server URL --email you@example.com); the local vault has no team", what)
	}
	rv, err := openRemoteVault(cfg)
	if err != nil {
		return nil, err
	}
	f.onClose(rv.Close)
	return &serverSession{c: rv.Client, cfg: cfg}, nil
}

// workspaceKeys are the keys config.json keeps per workspace
// ("workspaceKeys": {"ws_…": "ak_ws_…"}), so `workspaces switch` needs no
// password for a workspace used before.
const workspaceKeysField = "workspaceKeys"

// saveLogin makes key (for workspace wsID on server base) the one commands
// use, and remembers it for `workspaces switch`. Other fields are kept.
func saveLogin(cfg *Config, base, wsID, key string) error {
	return updateConfigFile(cfg, func(m map[string]any) {
		m["apiKey"], m["apiUrl"], m["workspaceId"] = key, base, wsID
		keys, _ := m[workspaceKeysField].(map[string]any)
		if keys == nil || m["workspaceKeysUrl"] != base {
			keys = map[string]any{}
		}
		keys[wsID] = key
		m[workspaceKeysField], m["workspaceKeysUrl"] = keys, base
	})
}

func savedKey(cfg *Config, base, wsID string) string {
	m, err := readConfigMap(cfg)
	if err != nil || m["workspaceKeysUrl"] != base {
		return ""
	}
	keys, _ := m[workspaceKeysField].(map[string]any)
	k, _ := keys[wsID].(string)
	return k
}

// keyWorks reports whether the server still accepts key.
func keyWorks(ctx context.Context, base, key string) bool {
	c, err := client.New(client.Config{BaseURL: base, APIKey: key, AllowInsecureHTTP: true, UserAgent: cliUserAgent()})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Workspace(ctx)
	return err == nil
}

// readPassword reads a password from stdin (--password-stdin) or a prompt
// without echo.
func readPassword(ios *IOStreams, fromStdin bool, prompt string) (string, error) {
	if fromStdin {
		pw, err := readSecretLine(ios.In)
		if err != nil {
			return "", err
		}
		if pw == "" {
			return "", errInvalid("--password-stdin read no password")
		}
		return pw, nil
	}
	if !ios.IsStdinTTY() {
		return "", errInvalid("give the password with --password-stdin, or run in a terminal to be asked")
	}
	pw, err := ios.PromptSecret(prompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errInvalid("no password given")
	}
	return pw, nil
}

func roleOrDash(r agentkeys.Role) string {
	if r == "" {
		return "-"
	}
	return string(r)
}

// ---- workspaces ----

func newCmdWorkspaces(f *Factory) *cobra.Command {
	c := groupCmd("workspaces", "List, create, switch and delete your workspaces on the server")
	c.Aliases = []string{"workspace", "ws"}
	var jsonOut bool
	list := &cobra.Command{
		Use: "list", Short: "List your workspaces and your role in each", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "workspaces list")
			if err != nil {
				return err
			}
			wss, err := s.c.Workspaces(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(f.IOStreams.Out, map[string]any{"workspaces": wss})
			}
			t := newTable(f.IOStreams, "", "NAME", "ID", "ROLE")
			for _, w := range wss {
				cur := ""
				if w.ID == s.cfg.WorkspaceID {
					cur = "*"
				}
				t.add(cur, w.Name, w.ID, roleOrDash(w.Role))
			}
			return t.render()
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a workspace you own, and switch to it", Args: exactArgs(1, "the workspace's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "workspaces create")
			if err != nil {
				return err
			}
			res, err := s.c.CreateWorkspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := saveLogin(s.cfg, s.c.BaseURL(), res.Workspace.ID, res.APIKey); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Created workspace %s (%s); commands now act on it.\n", f.IOStreams.Green("✓"), res.Workspace.Name, res.Workspace.ID)
			return nil
		},
	}
	var pwStdin bool
	sw := &cobra.Command{
		Use: "switch NAME-OR-ID", Short: "Make commands, the TUI and the MCP server act on another of your workspaces", Args: exactArgs(1, "the workspace's name or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "workspaces switch")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			wss, err := s.c.Workspaces(ctx)
			if err != nil {
				return err
			}
			var target *client.UserWorkspace
			for i, w := range wss {
				if w.ID == args[0] || strings.EqualFold(w.Name, args[0]) {
					target = &wss[i]
				}
			}
			if target == nil {
				return agentkeys.Errorf(agentkeys.ENOTFOUND, "you are not a member of a workspace %q: see `agentkeys workspaces list`", args[0])
			}
			key := savedKey(s.cfg, s.c.BaseURL(), target.ID)
			if key != "" && !keyWorks(ctx, s.c.BaseURL(), key) {
				key = "" // revoked or rotated since: make a new one
			}
			if key == "" {
				// No key for that membership yet: the password makes one.
				cur, err := s.c.Workspace(ctx)
				if err != nil {
					return err
				}
				me := cur.User.Email
				pw, err := readPassword(f.IOStreams, pwStdin, "Password for "+me+": ")
				if err != nil {
					return err
				}
				res, err := client.Login(ctx, client.Config{BaseURL: s.c.BaseURL(), AllowInsecureHTTP: true, UserAgent: cliUserAgent()},
					client.LoginInput{Email: me, Password: pw, WorkspaceID: target.ID, KeyName: "cli"})
				if err != nil {
					return err
				}
				key = res.APIKey
			}
			if err := saveLogin(s.cfg, s.c.BaseURL(), target.ID, key); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Switched to %s (%s) as %s.\n", f.IOStreams.Green("✓"), target.Name, target.ID, target.Role)
			return nil
		},
	}
	sw.Flags().BoolVar(&pwStdin, "password-stdin", false, "read your password from stdin (needed only the first time you switch to a workspace)")
	var confirm string
	del := &cobra.Command{
		Use: "delete --confirm NAME", Short: "Delete the current workspace and everything in it (owners only)", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "workspaces delete")
			if err != nil {
				return err
			}
			if confirm == "" {
				return errInvalid("give --confirm with the workspace's name: deleting removes every credential, agent and key of it")
			}
			if err := s.c.DeleteWorkspace(cmd.Context(), confirm); err != nil {
				return err
			}
			// Fall back to another workspace this CLI has a key for.
			m, err := readConfigMap(s.cfg)
			if err != nil {
				return err
			}
			keys, _ := m[workspaceKeysField].(map[string]any)
			delete(keys, s.cfg.WorkspaceID)
			var next *client.WorkspaceInfo
			var nextKey string
			for _, k := range keys {
				key, _ := k.(string)
				if c, err := client.New(client.Config{BaseURL: s.c.BaseURL(), APIKey: key, AllowInsecureHTTP: true, UserAgent: cliUserAgent()}); err == nil {
					info, err := c.Workspace(cmd.Context())
					c.Close()
					if err == nil {
						next, nextKey = info, key
						break
					}
				}
			}
			err = updateConfigFile(s.cfg, func(m map[string]any) {
				delete(m, "apiKey")
				delete(m, "workspaceId")
				m[workspaceKeysField] = keys
				if next != nil {
					m["apiKey"], m["workspaceId"] = nextKey, next.Workspace.ID
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Deleted workspace %s.\n", f.IOStreams.Green("✓"), confirm)
			if next != nil {
				fmt.Fprintf(f.IOStreams.Out, "Commands now act on %s (%s).\n", next.Workspace.Name, next.Workspace.ID)
			} else {
				fmt.Fprintln(f.IOStreams.Out, "Log in again to act on another workspace: agentkeys login --email …")
			}
			return nil
		},
	}
	del.Flags().StringVar(&confirm, "confirm", "", "the workspace's name, to confirm")
	c.AddCommand(list, create, sw, del)
	return c
}

// ---- team ----

func newCmdTeam(f *Factory) *cobra.Command {
	c := groupCmd("team", "Members, roles and invitations of the current workspace")
	var jsonOut bool
	list := &cobra.Command{
		Use: "list", Short: "List members and pending invitations", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "team list")
			if err != nil {
				return err
			}
			ms, err := s.c.Members(cmd.Context())
			if err != nil {
				return err
			}
			// Pending invitations are shown to those who may invite.
			invs, err := s.c.Invitations(cmd.Context())
			if agentkeys.ErrorCode(err) == agentkeys.EFORBIDDEN {
				invs, err = nil, nil
			}
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(f.IOStreams.Out, map[string]any{"members": ms, "invitations": invs})
			}
			t := newTable(f.IOStreams, "EMAIL", "ROLE", "STATUS", "SINCE")
			now := time.Now()
			for _, m := range ms {
				t.add(m.Email, string(m.Role), "member", formatTime(f.IOStreams, now, m.JoinedAt))
			}
			for _, inv := range invs {
				st := "invited"
				if !inv.ExpiresAt.After(now) {
					st = "invitation expired"
				}
				t.add(inv.Email, string(inv.Role), st, formatTime(f.IOStreams, now, inv.SentAt))
			}
			return t.render()
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON")

	var role string
	invite := &cobra.Command{
		Use: "invite EMAIL --role member|admin", Short: "Invite someone to the workspace (valid 7 days)", Args: exactArgs(1, "the email to invite"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := agentkeys.ParseRole(role)
			if err != nil {
				return err
			}
			s, err := needServer(f, "team invite")
			if err != nil {
				return err
			}
			inv, err := s.c.Invite(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			printInvitation(f.IOStreams, inv)
			return nil
		},
	}
	invite.Flags().StringVar(&role, "role", "member", "member, admin or owner")

	byEmail := func(ctx context.Context, s *serverSession, email string) (*client.Invitation, error) {
		invs, err := s.c.Invitations(ctx)
		if err != nil {
			return nil, err
		}
		for i, inv := range invs {
			if strings.EqualFold(inv.Email, strings.TrimSpace(email)) {
				return &invs[i], nil
			}
		}
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no pending invitation for %s: see `agentkeys team list`", email)
	}
	resend := &cobra.Command{
		Use: "resend EMAIL", Short: "Send an invitation again: a new link, valid 7 days; the old link stops working", Args: exactArgs(1, "the invited email"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "team resend")
			if err != nil {
				return err
			}
			inv, err := byEmail(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if inv, err = s.c.ResendInvitation(cmd.Context(), inv.ID); err != nil {
				return err
			}
			printInvitation(f.IOStreams, inv)
			return nil
		},
	}
	cancel := &cobra.Command{
		Use: "cancel EMAIL", Short: "Cancel a pending invitation", Args: exactArgs(1, "the invited email"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "team cancel")
			if err != nil {
				return err
			}
			inv, err := byEmail(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if err := s.c.CancelInvitation(cmd.Context(), inv.ID); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Cancelled the invitation of %s.\n", f.IOStreams.Green("✓"), inv.Email)
			return nil
		},
	}
	member := func(ctx context.Context, s *serverSession, email string) (*client.Member, error) {
		ms, err := s.c.Members(ctx)
		if err != nil {
			return nil, err
		}
		for i, m := range ms {
			if strings.EqualFold(m.Email, strings.TrimSpace(email)) {
				return &ms[i], nil
			}
		}
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "%s is not a member of this workspace: see `agentkeys team list`", email)
	}
	setRole := &cobra.Command{
		Use: "set-role EMAIL owner|admin|member", Short: "Change a member's role (effective on their next call)", Args: exactArgs(2, "the member's email and the role"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := agentkeys.ParseRole(args[1])
			if err != nil {
				return err
			}
			s, err := needServer(f, "team set-role")
			if err != nil {
				return err
			}
			m, err := member(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if m, err = s.c.SetRole(cmd.Context(), m.UserID, r); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s %s is now %s.\n", f.IOStreams.Green("✓"), m.Email, m.Role)
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove EMAIL", Short: "Remove a member (their API keys stop working at once); your own email leaves the workspace", Args: exactArgs(1, "the member's email"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "team remove")
			if err != nil {
				return err
			}
			m, err := member(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if err := s.c.RemoveMember(cmd.Context(), m.UserID); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Removed %s from the workspace.\n", f.IOStreams.Green("✓"), m.Email)
			return nil
		},
	}
	c.AddCommand(list, invite, resend, cancel, setRole, remove, newCmdTeamAccept(f))
	return c
}

// printInvitation shows an invitation just made or re-sent, with its link
// when the server sent no email (the only time the link is shown).
func printInvitation(ios *IOStreams, inv *client.Invitation) {
	out := ios.Out
	switch {
	case inv.EmailSent:
		fmt.Fprintf(out, "%s Invited %s as %s: the invitation was emailed (valid until %s).\n", ios.Green("✓"), inv.Email, inv.Role, inv.ExpiresAt.Local().Format("2006-01-02 15:04"))
	default:
		if inv.EmailError != "" {
			ios.Warnf("%s", inv.EmailError)
		}
		fmt.Fprintf(out, "%s Invited %s as %s (valid until %s). Send them this link; they run `agentkeys team accept '<link>'`:\n\n    %s\n\n",
			ios.Green("✓"), inv.Email, inv.Role, inv.ExpiresAt.Local().Format("2006-01-02 15:04"), inv.AcceptURL)
	}
}

// newCmdTeamAccept is `team accept TOKEN-OR-LINK`: the invited person joins
// (setting a password if new) and is logged in to that workspace.
func newCmdTeamAccept(f *Factory) *cobra.Command {
	var server string
	var pwStdin, allowHTTP bool
	c := &cobra.Command{
		Use:   "accept TOKEN-OR-LINK",
		Short: "Accept an invitation: sets your password if you are new, then logs you in to the workspace",
		Args:  exactArgs(1, "the invitation link (or its token)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			token, base := strings.TrimSpace(args[0]), strings.TrimSpace(server)
			if u, err := url.Parse(token); err == nil && u.Scheme != "" && u.Host != "" {
				token = u.Query().Get("token")
				if base == "" {
					base = u.Scheme + "://" + u.Host
				}
			}
			if base == "" {
				base = cfg.APIURL
			}
			if token == "" || base == "" {
				return errInvalid("give the invitation link (https://…/accept?token=…), or the token with --server URL")
			}
			pw, err := readPassword(f.IOStreams, pwStdin, "Password (new, or your existing one): ")
			if err != nil {
				return err
			}
			res, err := client.AcceptInvitation(cmd.Context(), client.Config{BaseURL: base, AllowInsecureHTTP: allowHTTP, UserAgent: cliUserAgent()}, token, pw)
			if err != nil {
				return err
			}
			c, err := client.New(client.Config{BaseURL: base, APIKey: res.APIKey, AllowInsecureHTTP: allowHTTP})
			if err != nil {
				return err
			}
			if err := saveLogin(cfg, c.BaseURL(), res.Workspace.ID, res.APIKey); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Joined %s as %s; commands now act on it.\n", f.IOStreams.Green("✓"), res.Workspace.Name, res.Workspace.Role)
			return nil
		},
	}
	c.Flags().StringVar(&server, "server", "", "the server, when giving a bare token (default: from the link, else the one logged in to)")
	c.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	c.Flags().BoolVar(&allowHTTP, "allow-http", false, "allow a plain http:// server on another host")
	return c
}

// ---- keys ----

func newCmdKeys(f *Factory) *cobra.Command {
	c := groupCmd("keys", "API keys of the current workspace (owners and admins)")
	var jsonOut bool
	list := &cobra.Command{
		Use: "list", Short: "List every member's API keys (never their values)", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "keys list")
			if err != nil {
				return err
			}
			ks, err := s.c.APIKeys(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(f.IOStreams.Out, map[string]any{"apiKeys": ks})
			}
			t := newTable(f.IOStreams, "ID", "NAME", "MEMBER", "ROLE", "CREATED")
			now := time.Now()
			for _, k := range ks {
				t.add(k.ID, k.Name, k.Email, string(k.Role), formatTime(f.IOStreams, now, k.CreatedAt))
			}
			return t.render()
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	printKey := func(k *client.APIKey, what string) {
		ios := f.IOStreams
		note := fmt.Sprintf("API key %s (%s) %s. It is shown only this once: copy it now.", k.ID, k.Name, what)
		if !ios.IsStdoutTTY() {
			fmt.Fprintln(ios.ErrOut, note)
			fmt.Fprintln(ios.Out, k.Key)
			return
		}
		fmt.Fprintf(ios.Out, "%s %s\n\n    %s\n\n", ios.Yellow("!"), note, ios.Bold(k.Key))
	}
	var name string
	create := &cobra.Command{
		Use: "create --name NAME", Short: "Create an API key for yourself in this workspace (shown once)", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(name) == "" {
				return errInvalid("give the key a name: --name ci")
			}
			s, err := needServer(f, "keys create")
			if err != nil {
				return err
			}
			k, err := s.c.CreateAPIKey(cmd.Context(), name)
			if err != nil {
				return err
			}
			printKey(k, "created")
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for (e.g. ci)")
	rotate := &cobra.Command{
		Use: "rotate ID", Short: "Replace one of your keys: the old value stops working at once", Args: exactArgs(1, "the key's id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "keys rotate")
			if err != nil {
				return err
			}
			k, err := s.c.RotateAPIKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// Rotating the key this CLI uses (it is refused now): keep
			// working with the new one.
			if _, err := s.c.Workspace(cmd.Context()); agentkeys.ErrorCode(err) == agentkeys.EUNAUTHORIZED {
				if err := saveLogin(s.cfg, s.c.BaseURL(), s.cfg.WorkspaceID, k.Key); err != nil {
					return err
				}
				f.IOStreams.Warnf("that was the key this CLI used: config.json now holds the new one")
			}
			printKey(k, "rotated")
			return nil
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API key: it stops working at once", Args: exactArgs(1, "the key's id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := needServer(f, "keys revoke")
			if err != nil {
				return err
			}
			if err := s.c.RevokeAPIKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Revoked API key %s.\n", f.IOStreams.Green("✓"), args[0])
			return nil
		},
	}
	c.AddCommand(list, create, rotate, revoke)
	return c
}
