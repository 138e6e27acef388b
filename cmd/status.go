package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

// StatusOptions are the parsed flags of `status`.
type StatusOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	JSON  bool
}

// NewCmdStatus returns `status`.
func NewCmdStatus(f *Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the workspace: where the vault is, its key source, counts and mode",
		Long: `Show the workspace: mode (local or remote), where it lives, where the key comes
from, and how many credentials and agents it holds. With --json:
{"workspace": {"id", "name", "plan", "usage", "limits", "mode", "location", "keySource"}}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunStatus(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// RunStatus prints the workspace status.
func RunStatus(ctx context.Context, opts *StatusOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	st, err := v.Status(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"workspace": st})
	}
	limit := func(n int64) string {
		if n == 0 {
			return "unlimited"
		}
		return fmt.Sprint(n)
	}
	out := opts.IO.Out
	fmt.Fprintf(out, "Mode:         %s\n", st.Mode)
	fmt.Fprintf(out, "Location:     %s\n", st.Location)
	if st.KeySource != "" {
		fmt.Fprintf(out, "Key source:   %s\n", st.KeySource)
	}
	fmt.Fprintf(out, "Workspace:    %s (%s)\n", agentkeys.SafeText(st.Name), st.ID)
	if st.Role != "" {
		fmt.Fprintf(out, "Your role:    %s\n", st.Role)
	}
	if st.Plan != "" {
		fmt.Fprintf(out, "Plan:         %s\n", st.Plan)
	}
	fmt.Fprintf(out, "Credentials:  %d (limit %s)\n", st.Usage.Credentials, limit(int64(st.Limits.Credentials)))
	fmt.Fprintf(out, "Agents:       %d (limit %s)\n", st.Usage.Agents, limit(int64(st.Limits.Agents)))
	fmt.Fprintf(out, "Requests:     %d this month (limit %s)\n", st.Usage.RequestsThisMonth, limit(st.Limits.RequestsPerMonth))
	return nil
}
