//go:build manpages

package cmd

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/agentkeys/agentkeys/internal/version"
)

func init() { taggedCommands = append(taggedCommands, newCmdMan) }

// newCmdMan returns the hidden `man DIR`, which writes a man page (section 1)
// for agentkeys and each of its commands into DIR. Only a build with
// -tags manpages has it: scripts/release-assets.sh builds one to ship the
// pages in archives and packages.
func newCmdMan(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages (section 1) into DIR",
		Hidden: true,
		Args:   exactArgs(1, "one directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
			in := version.Get()
			header := &doc.GenManHeader{
				Title:   "AGENTKEYS",
				Section: "1",
				Source:  "agentkeys " + in.Version,
				Manual:  "agentkeys manual",
			}
			// The build's own date keeps the pages reproducible; without one
			// cobra uses SOURCE_DATE_EPOCH or the current time.
			if t, err := time.Parse(time.RFC3339, in.Date); err == nil {
				header.Date = &t
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("write man pages to %s: %w", dir, err)
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "man pages written to %s\n", dir)
			return nil
		},
	}
}
