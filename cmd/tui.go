package cmd

import (
	"context"

	"github.com/spf13/cobra"
)

// newCmdTUI returns `agentkeys tui`. This is the minimal first version; the
// tui helper owns this file and replaces it.
func newCmdTUI(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "tui",
		Short: "Open the terminal UI (also what plain `agentkeys` does in a terminal)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTUI(cmd.Context(), f)
		},
	}
}

// runTUI runs the terminal UI over f.Vault until the user quits or ctx is
// cancelled.
func runTUI(ctx context.Context, f *Factory) error {
	return unavailable("the terminal UI is not part of this build yet")
}
