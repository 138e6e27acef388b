// Package cmd is the agentkeys command tree (cobra). It parses flags, loads
// configuration (viper, here only), calls an agentkeys.Vault and prints the
// answer: tables for people, tab-separated lines or --json for scripts.
//
// Every command is built by a NewCmdX(f, runF) function from a Factory, with
// one options struct per command; RunE validates the options and calls runF
// (tests pass their own to capture the parsed options) or runX.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
)

// Execute runs agentkeys with the process's arguments, streams and
// environment. It prints any error as one "error: ..." line on stderr and
// returns it; map it to the exit status with ExitCode.
func Execute(ctx context.Context) error {
	return Run(ctx, NewFactory(System(), nil), os.Args[1:])
}

// Run executes the command line args against f, closes f, and prints any
// error as one "error: ..." line on f's stderr before returning it.
func Run(ctx context.Context, f *Factory, args []string) error {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var child *childExitError // `run`: the program's own status, already reported by it
	isChild := errors.As(err, &child)
	if err != nil && ctx.Err() != nil && !isChild {
		// Interrupted (Ctrl-C, SIGTERM): whatever failed, failed because of
		// that; lower layers do not all report cancellation as such.
		err = context.Canceled
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close vault: %w", cerr)
	}
	if err != nil && (!isChild || child.msg != "") {
		fmt.Fprintln(f.IOStreams.ErrOut, errorLine(err))
	}
	return err
}

// NewCmdRoot returns the agentkeys command with every subcommand.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "agentkeys",
		Short: "Give AI agents API access without giving them the keys",
		Long: `agentkeys keeps your API keys, cookies and passwords in an encrypted vault and
gives each AI agent a proxy token instead. The agent sends its requests through
the agentkeys proxy, which injects the real credential, forwards the request to
an allowed host, and logs it. The agent never sees the secret.

Run without arguments in a terminal to open the terminal UI.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errInvalid("unknown command %q: %srun `agentkeys --help` to see the commands", args[0], didYouMean(cmd, args[0]))
			}
			return nil
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if h, err := cmd.Flags().GetString("home"); err == nil {
				f.homeFlag = h
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.IOStreams.IsStdinTTY() && f.IOStreams.IsStdoutTTY() {
				return runTUI(cmd.Context(), f)
			}
			return cmd.Help()
		},
	}
	root.Version = version.Get().String()
	root.SetVersionTemplate("{{.Version}}")
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return errInvalid("%s (run `%s --help`)", err.Error(), c.CommandPath())
	})
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().String("home", "", "directory of config.json and vault.db (default $AGENTKEYS_HOME or ~/.agentkeys)")

	root.AddCommand(
		NewCmdInit(f, nil),
		NewCmdStatus(f, nil),
		NewCmdLogin(f, nil),
		NewCmdLogout(f, nil),
		newCmdCredentials(f),
		newCmdAgents(f),
		NewCmdUp(f, nil),
		NewCmdProxy(f, nil),
		NewCmdRun(f, nil),
		NewCmdAudit(f, nil),
		newCmdBackup(f),
		newCmdRestore(f),
		newCmdExport(f),
		newCmdImport(f),
		newCmdKey(f),
		newCmdServe(f),
		newCmdWorkspaces(f),
		newCmdTeam(f),
		newCmdKeys(f),
		newCmdWebhooks(f),
		newCmdBilling(f),
		newCmdMCP(f),
		newCmdTUI(f),
		newCmdCompletion(f),
		NewCmdVersion(f, nil),
		newCmdSync(f),
		newCmdOAuth(f),
	)
	for _, c := range taggedCommands {
		root.AddCommand(c(f))
	}
	return root
}

// taggedCommands are the commands that only a build with a tag includes:
// `man` (-tags manpages), which release builds use to write the man pages
// and which would otherwise cost every start of agentkeys the init of a
// Markdown renderer (go run ./bench/cli).
var taggedCommands []func(*Factory) *cobra.Command

// groupCmd is a command that only holds subcommands: without arguments it
// prints its help; an unknown subcommand is a usage error (exit 2).
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errInvalid("unknown command %q for %q: %srun `%s --help`", args[0], cmd.CommandPath(), didYouMean(cmd, args[0]), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
}

// didYouMean is cobra's suggestions for a mistyped subcommand of cmd, as
// "did you mean "list"? or " (or "" when nothing is close).
func didYouMean(cmd *cobra.Command, typed string) string {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	sug := cmd.SuggestionsFor(typed)
	if len(sug) == 0 {
		return ""
	}
	q := make([]string, len(sug))
	for i, s := range sug {
		q[i] = strconv.Quote(s)
	}
	return "did you mean " + strings.Join(q, " or ") + "? or "
}

// exactArgs is cobra.ExactArgs with a usage error (exit 2) that says what
// the arguments are.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return errInvalid("%s takes %s (got %d arguments): run `%s --help`", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return errInvalid("%s takes no arguments (got %q): run `%s --help`", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return nil
}

// unavailable is the error for a feature that cannot run here.
func unavailable(format string, args ...any) error {
	return agentkeys.Errorf(agentkeys.EUNAVAILABLE, format, args...)
}
