package cmd

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys/internal/version"
)

// VersionOptions are the parsed flags of `version`.
type VersionOptions struct {
	IO   *IOStreams
	JSON bool
}

// NewCmdVersion returns `version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IOStreams}
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date, Go version and platform",
		Long: `Print which agentkeys this is: version, commit, build date, Go version and
OS/arch (the same as agentkeys --version). A release build carries the values
its build stamped in; a go install or go build binary reports the module
version and VCS revision Go recorded, or "dev" and "unknown". With --json:
{"version", "commit", "date", "goVersion", "os", "arch"}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return RunVersion(opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// RunVersion prints this binary's version information.
func RunVersion(opts *VersionOptions) error {
	in := version.Get()
	if opts.JSON {
		return writeJSON(opts.IO.Out, in)
	}
	_, err := io.WriteString(opts.IO.Out, in.String())
	return err
}
