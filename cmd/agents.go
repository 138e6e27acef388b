package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

func newCmdAgents(f *Factory) *cobra.Command {
	c := groupCmd("agents", "Create agents and give them proxy tokens for credentials")
	c.Aliases = []string{"agent"}
	c.AddCommand(
		NewCmdAgentsCreate(f, nil),
		NewCmdAgentsAssign(f, nil),
		NewCmdAgentsRevoke(f, nil),
		NewCmdAgentsList(f, nil),
		NewCmdAgentsRemove(f, nil),
	)
	return c
}

// printGrant shows a proxy token, the only time it is ever shown. On a
// terminal it comes with instructions; piped, stdout carries the token alone
// (TOKEN=$(agentkeys agents assign …)) and the note goes to stderr.
func printGrant(ios *IOStreams, agent *agentkeys.Agent, cred *agentkeys.Credential, g *agentkeys.Grant) {
	note := fmt.Sprintf("Proxy token for agent %s × credential %s. It is shown only this once: copy it now.", agent.Name, cred.Name)
	if !ios.IsStdoutTTY() {
		fmt.Fprintln(ios.ErrOut, note)
		fmt.Fprintln(ios.Out, g.ProxyToken)
		return
	}
	fmt.Fprintln(ios.Out, ios.Yellow("!")+" "+note)
	fmt.Fprintln(ios.Out)
	fmt.Fprintln(ios.Out, "    "+ios.Bold(g.ProxyToken))
	fmt.Fprintln(ios.Out)
	fmt.Fprintf(ios.Out, "Use it with the proxy (agentkeys up) as: Authorization: Bearer %s…\n", g.ProxyToken[:len(agentkeys.ProxyTokenPrefix)+4])
}

// AgentsCreateOptions are the parsed flags of `agents create`.
type AgentsCreateOptions struct {
	IO         *IOStreams
	Vault      func(context.Context) (agentkeys.Vault, error)
	Name       string
	Credential string // id or name; optional
	JSON       bool
}

// NewCmdAgentsCreate returns `agents create --name NAME [--credential C]`.
func NewCmdAgentsCreate(f *Factory, runF func(context.Context, *AgentsCreateOptions) error) *cobra.Command {
	opts := &AgentsCreateOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "create --name NAME [--credential CREDENTIAL]",
		Short: "Create an agent, optionally assigning a credential (prints its proxy token once)",
		Example: `  agentkeys agents create --name marketing-bot
  agentkeys agents create --name data-pipeline --credential "Resend Production"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAgentsCreate(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Name, "name", "", "name of the agent (unique, case-insensitive)")
	c.Flags().StringVar(&opts.Credential, "credential", "", "credential id or name to assign at once")
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"agent": …, "grant": {"proxyToken": …}} as JSON`)
	c.RegisterFlagCompletionFunc("credential", completeFlagNames(f, credentialNames))
	return c
}

// RunAgentsCreate creates the agent and, with a credential, assigns it. An
// unknown credential is refused before anything is written.
func RunAgentsCreate(ctx context.Context, opts *AgentsCreateOptions) error {
	name, err := agentkeys.ValidateName("agent", opts.Name)
	if err != nil {
		return err
	}
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	var cred *agentkeys.Credential
	if strings.TrimSpace(opts.Credential) != "" {
		if cred, err = findCredential(ctx, v, opts.Credential); err != nil {
			return err
		}
	}
	agent, err := v.CreateAgent(ctx, name)
	if err != nil {
		return err
	}
	var grant *agentkeys.Grant
	if cred != nil {
		if grant, err = v.AssignCredential(ctx, agent.ID, cred.ID); err != nil {
			// Do not leave a half-made agent behind.
			if derr := v.DeleteAgent(context.WithoutCancel(ctx), agent.ID); derr != nil {
				return fmt.Errorf("%w (and removing the new agent failed: %v)", err, derr)
			}
			return err
		}
		if agent, err = v.FindAgent(ctx, agent.ID); err != nil {
			return err
		}
	}
	if opts.JSON {
		out := map[string]any{"agent": agent}
		if grant != nil {
			out["grant"] = grant
		}
		return writeJSON(opts.IO.Out, out)
	}
	if grant == nil && !opts.IO.IsStdoutTTY() {
		fmt.Fprintln(opts.IO.Out, agent.ID)
		return nil
	}
	if opts.IO.IsStdoutTTY() {
		fmt.Fprintf(opts.IO.Out, "%s Created agent %s (%s)\n", opts.IO.Green("✓"), agentkeys.SafeText(agent.Name), agent.ID)
	} else {
		fmt.Fprintf(opts.IO.ErrOut, "Created agent %s (%s)\n", agentkeys.SafeText(agent.Name), agent.ID)
	}
	if grant != nil {
		printGrant(opts.IO, agent, cred, grant)
	} else {
		fmt.Fprintf(opts.IO.Out, "Give it a credential with: agentkeys agents assign %s --credential NAME\n", quoteArg(agent.Name))
	}
	return nil
}

// AgentsAssignOptions are the parsed arguments of `agents assign`.
type AgentsAssignOptions struct {
	IO         *IOStreams
	Vault      func(context.Context) (agentkeys.Vault, error)
	Agent      string
	Credential string
	JSON       bool
	// ExpiresIn, when positive, makes the token stop working after it.
	ExpiresIn time.Duration
}

// NewCmdAgentsAssign returns `agents assign <agent> --credential <cred>`.
func NewCmdAgentsAssign(f *Factory, runF func(context.Context, *AgentsAssignOptions) error) *cobra.Command {
	opts := &AgentsAssignOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "assign <agent-id-or-name> --credential CREDENTIAL",
		Short: "Assign a credential to an agent and print a new proxy token (once)",
		Long: `Assign a credential to an agent. A new proxy token (pxr_…) is printed once; if the
agent already had this credential, its old token stops working.`,
		Args: exactArgs(1, "one agent id or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Agent = args[0]
			if strings.TrimSpace(opts.Credential) == "" {
				return errInvalid("missing credential: give it with --credential ID-OR-NAME")
			}
			if cmd.Flags().Changed("expires-in") && opts.ExpiresIn <= 0 {
				return errInvalid("--expires-in must be a positive duration, such as 30m, 1h or 24h")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAgentsAssign(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Credential, "credential", "", "credential id or name")
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"grant": {"proxyToken": …}} as JSON`)
	c.Flags().DurationVar(&opts.ExpiresIn, "expires-in", 0, "make the token stop working after this long (e.g. 1h); default: never")
	c.ValidArgsFunction = completeAgentNames(f)
	c.RegisterFlagCompletionFunc("credential", completeFlagNames(f, credentialNames))
	return c
}

// RunAgentsAssign assigns the credential and prints the new token.
func RunAgentsAssign(ctx context.Context, opts *AgentsAssignOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	agent, err := findAgent(ctx, v, opts.Agent)
	if err != nil {
		return err
	}
	cred, err := findCredential(ctx, v, opts.Credential)
	if err != nil {
		return err
	}
	var until time.Time
	if opts.ExpiresIn > 0 {
		until = time.Now().Add(opts.ExpiresIn)
	}
	grant, err := v.AssignCredentialUntil(ctx, agent.ID, cred.ID, until)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"grant": grant})
	}
	printGrant(opts.IO, agent, cred, grant)
	if grant.ExpiresAt != nil {
		w := opts.IO.ErrOut // piped, stdout carries the token alone
		if opts.IO.IsStdoutTTY() {
			w = opts.IO.Out
		}
		fmt.Fprintf(w, "The token expires at %s.\n", grant.ExpiresAt.Local().Format(time.RFC3339))
	}
	return nil
}

// AgentsRevokeOptions are the parsed arguments of `agents revoke`.
type AgentsRevokeOptions struct {
	IO         *IOStreams
	Vault      func(context.Context) (agentkeys.Vault, error)
	Agent      string
	Credential string
	JSON       bool
}

// NewCmdAgentsRevoke returns `agents revoke <agent> --credential <cred>`.
func NewCmdAgentsRevoke(f *Factory, runF func(context.Context, *AgentsRevokeOptions) error) *cobra.Command {
	opts := &AgentsRevokeOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "revoke <agent-id-or-name> --credential CREDENTIAL",
		Short: "Take a credential away from an agent; its token stops working on the next request",
		Args:  exactArgs(1, "one agent id or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Agent = args[0]
			if strings.TrimSpace(opts.Credential) == "" {
				return errInvalid("missing credential: give it with --credential ID-OR-NAME")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAgentsRevoke(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Credential, "credential", "", "credential id or name")
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"revoked": {"agentId", "agentName", "credentialId", "credentialName"}} as JSON`)
	c.ValidArgsFunction = completeAgentNames(f)
	c.RegisterFlagCompletionFunc("credential", completeFlagNames(f, credentialNames))
	return c
}

// RunAgentsRevoke removes the assignment.
func RunAgentsRevoke(ctx context.Context, opts *AgentsRevokeOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	agent, err := findAgent(ctx, v, opts.Agent)
	if err != nil {
		return err
	}
	cred, err := findCredential(ctx, v, opts.Credential)
	if err != nil {
		return err
	}
	if err := v.RevokeCredential(ctx, agent.ID, cred.ID); err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"revoked": map[string]string{
			"agentId": agent.ID, "agentName": agent.Name, "credentialId": cred.ID, "credentialName": cred.Name}})
	}
	fmt.Fprintf(opts.IO.Out, "%s Revoked %s from agent %s; its proxy token no longer works\n", opts.IO.Green("✓"), agentkeys.SafeText(cred.Name), agentkeys.SafeText(agent.Name))
	return nil
}

// AgentsListOptions are the parsed flags of `agents list`.
type AgentsListOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Now   func() time.Time
	JSON  bool
	// Wide shows every column in full instead of fitting the terminal.
	Wide bool
}

// NewCmdAgentsList returns `agents list`.
func NewCmdAgentsList(f *Factory, runF func(context.Context, *AgentsListOptions) error) *cobra.Command {
	opts := &AgentsListOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List agents and the credentials assigned to them",
		Long: `List agents. In a terminal this is a table; piped, one tab-separated line per agent
(id, name, credential names joined by commas, created at); with --json:
{"agents": [{"id", "name", "createdAt", "credentials": [{"credentialId", "credentialName", "assignedAt"}]}]}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAgentsList(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	c.Flags().BoolVar(&opts.Wide, "wide", false, "show every column in full, however wide the terminal")
	return c
}

// RunAgentsList prints every agent.
func RunAgentsList(ctx context.Context, opts *AgentsListOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	agents, err := v.ListAgents(ctx)
	if err != nil {
		return err
	}
	if agents == nil {
		agents = []*agentkeys.Agent{}
	}
	for _, a := range agents {
		if a.Credentials == nil {
			a.Credentials = []agentkeys.AgentCredential{}
		}
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"agents": agents})
	}
	if len(agents) == 0 && opts.IO.IsStdoutTTY() {
		fmt.Fprintln(opts.IO.ErrOut, "No agents yet. Create one with: agentkeys agents create --name NAME --credential CREDENTIAL")
		return nil
	}
	t := newTable(opts.IO, "NAME", "CREDENTIALS", "ID", "CREATED")
	t.wide = opts.Wide
	t.cols = []colFit{{flex: true, min: 16}, {flex: true, min: 16}, {id: true, drop: true}, {}}
	for _, a := range agents {
		names := make([]string, len(a.Credentials))
		for i, c := range a.Credentials {
			names[i] = c.CredentialName
		}
		if opts.IO.IsStdoutTTY() {
			list := strings.Join(names, ", ")
			if list == "" {
				list = "-"
			}
			t.add(a.Name, list, a.ID, formatTime(opts.IO, opts.Now(), a.CreatedAt))
		} else {
			t.add(a.ID, a.Name, strings.Join(names, ","), formatTime(opts.IO, opts.Now(), a.CreatedAt))
		}
	}
	return t.render()
}

// AgentsRemoveOptions are the parsed arguments of `agents remove`.
type AgentsRemoveOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Ref   string
	Yes   bool
	JSON  bool
}

// NewCmdAgentsRemove returns `agents remove <agent>`.
func NewCmdAgentsRemove(f *Factory, runF func(context.Context, *AgentsRemoveOptions) error) *cobra.Command {
	opts := &AgentsRemoveOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:     "remove <agent-id-or-name> [--yes]",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove an agent; all its proxy tokens stop working at once",
		Long: `Remove an agent and its assignments: all its proxy tokens stop working at
once. In a terminal it asks first, naming the credentials it loses; without a
terminal it needs --yes. With --json: {"removed": {"id", "name"}, "credentials": [...]}.`,
		Args:              exactArgs(1, "one agent id or name"),
		ValidArgsFunction: completeAgentNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAgentsRemove(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print what was removed as JSON")
	return c
}

// RunAgentsRemove deletes the agent named by id or name, after confirmation.
func RunAgentsRemove(ctx context.Context, opts *AgentsRemoveOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	agent, err := findAgent(ctx, v, opts.Ref)
	if err != nil {
		return err
	}
	names := make([]string, len(agent.Credentials))
	for i, c := range agent.Credentials {
		names[i] = c.CredentialName
	}
	lose := "It holds no credential."
	if len(names) > 0 {
		lose = fmt.Sprintf("Its proxy tokens for %s stop working.", strings.Join(names, ", "))
	}
	if err := confirm(opts.IO, opts.Yes, "agentkeys agents remove", fmt.Sprintf("Remove agent %s (%s)?", agent.Name, agent.ID), lose); err != nil {
		return err
	}
	if err := v.DeleteAgent(ctx, agent.ID); err != nil {
		return err
	}
	if opts.JSON {
		creds := agent.Credentials
		if creds == nil {
			creds = []agentkeys.AgentCredential{}
		}
		return writeJSON(opts.IO.Out, map[string]any{"removed": map[string]string{"id": agent.ID, "name": agent.Name}, "credentials": creds})
	}
	fmt.Fprintf(opts.IO.Out, "%s Removed agent %s (%s); its proxy tokens no longer work\n", opts.IO.Green("✓"), agentkeys.SafeText(agent.Name), agent.ID)
	return nil
}

// quoteArg quotes s for a shell command line shown to the user.
func quoteArg(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@/", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
