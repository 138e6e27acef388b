package cmd

import (
	"context"
	"fmt"
	"strings"

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
	fmt.Fprintf(out, "Credentials:  %s\n", usageLine(int64(st.Usage.Credentials), int64(st.Limits.Credentials), ""))
	fmt.Fprintf(out, "Agents:       %s\n", usageLine(int64(st.Usage.Agents), int64(st.Limits.Agents), ""))
	fmt.Fprintf(out, "Requests:     %s\n", usageLine(st.Usage.RequestsThisMonth, st.Limits.RequestsPerMonth, " this period"))
	if st.BillingStatus == "past_due" {
		opts.IO.Warnf("the last payment for this workspace failed: update the card with `agentkeys billing portal` (the plan is kept meanwhile)")
	}
	return nil
}

// limit is a limit in words: the number, or "unlimited" for 0.
func limit(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// usageLine is "n (limit unlimited)", or, with a limit, a bar:
// "[######----] 6 of 10 (60%)", ending "— limit reached" at the limit.
func usageLine(n, max int64, what string) string {
	if max <= 0 {
		return fmt.Sprintf("%d%s (limit unlimited)", n, what)
	}
	const width = 20
	filled := int(min(n, max) * width / max)
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
	line := fmt.Sprintf("%s %d of %d%s (%d%%)", bar, n, max, what, n*100/max)
	if n >= max {
		line += " — limit reached"
	}
	return line
}
