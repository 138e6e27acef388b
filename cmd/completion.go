package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

func newCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. For example:

  bash:  source <(agentkeys completion bash)
  zsh:   agentkeys completion zsh > "${fpath[1]}/_agentkeys"
  fish:  agentkeys completion fish > ~/.config/fish/completions/agentkeys.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      exactArgs(1, "one shell name (bash, zsh, fish or powershell)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := f.IOStreams.Out
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return errInvalid("unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}

// Completion of names from the vault. Each function opens the vault the
// command would use (local or remote) and lists names; any failure — no
// vault, a locked one, a server that does not answer within the deadline —
// completes nothing, silently: a shell's Tab never prints an error.

// completionTimeout bounds a completion's vault call (a remote workspace,
// a keychain prompt): the shell waits for it.
const completionTimeout = 2 * time.Second

type completionFunc = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

// completeNames completes the first positional argument with list's names.
func completeNames(f *Factory, list func(context.Context, agentkeys.Vault) ([]string, error)) completionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return vaultNames(cmd, f, list, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFlagNames completes a flag's value with list's names.
func completeFlagNames(f *Factory, list func(context.Context, agentkeys.Vault) ([]string, error)) completionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return vaultNames(cmd, f, list, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func vaultNames(cmd *cobra.Command, f *Factory, list func(context.Context, agentkeys.Vault) ([]string, error), toComplete string) []string {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	f.IOStreams.SetStdinTTY(false) // a completion never prompts for a passphrase
	v, err := f.Vault(ctx)
	if err != nil {
		return nil
	}
	names, err := list(ctx, v)
	if err != nil {
		return nil
	}
	var out []string
	lower := strings.ToLower(toComplete)
	for _, n := range names {
		if strings.HasPrefix(strings.ToLower(n), lower) {
			out = append(out, n)
		}
	}
	return out
}

func credentialNames(ctx context.Context, v agentkeys.Vault) ([]string, error) {
	creds, err := v.ListCredentials(ctx)
	var out []string
	for _, c := range creds {
		out = append(out, c.Name)
	}
	return out, err
}

func agentNames(ctx context.Context, v agentkeys.Vault) ([]string, error) {
	agents, err := v.ListAgents(ctx)
	var out []string
	for _, a := range agents {
		out = append(out, a.Name)
	}
	return out, err
}

// completeCredentialNames completes a credential name as the first argument.
func completeCredentialNames(f *Factory) completionFunc { return completeNames(f, credentialNames) }

// completeAgentNames completes an agent name as the first argument.
func completeAgentNames(f *Factory) completionFunc { return completeNames(f, agentNames) }

// completeTypes completes --type.
func completeTypes(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	out := make([]string, len(agentkeys.CredentialTypes))
	for i, t := range agentkeys.CredentialTypes {
		out[i] = string(t)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeServices completes --service with the preset names.
func completeServices(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return agentkeys.PresetNames(), cobra.ShellCompDirectiveNoFileComp
}
