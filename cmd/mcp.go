package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
	akmcp "github.com/agentkeys/agentkeys/mcp"
)

// MCPOptions are the parsed flags of `agentkeys mcp`.
type MCPOptions struct {
	IO     *IOStreams
	Vault  func(context.Context) (agentkeys.Vault, error)
	Logger *slog.Logger

	// ReadOnly exposes only list_credentials, list_agents and proxy_request.
	ReadOnly bool
	// Tools, when not empty, exposes only these tools.
	Tools []string
}

func newCmdMCP(f *Factory) *cobra.Command { return NewCmdMCP(f, nil) }

// NewCmdMCP returns `agentkeys mcp` (the MCP stdio server) with its `config`
// subcommand. runF, when not nil, replaces the run function (tests use it to
// capture the options).
func NewCmdMCP(f *Factory, runF func(context.Context, *MCPOptions) error) *cobra.Command {
	opts := &MCPOptions{IO: f.IOStreams, Vault: f.Vault, Logger: f.Logger}
	c := &cobra.Command{
		Use:   "mcp [--read-only] [--tools NAME,...]",
		Short: "Run the MCP server on stdio (for Claude Desktop, Cursor, Claude Code, VS Code and other MCP clients)",
		Long: `Run the agentkeys MCP (Model Context Protocol) server over stdio. An MCP client
starts it as a subprocess; it speaks JSON-RPC on stdin/stdout and logs on stderr.
Set it up in a client with ` + "`agentkeys mcp config --client NAME --write`" + `.

Tools: list_credentials, create_credential, update_credential, delete_credential, list_agents,
create_agent, delete_agent, assign_credential, proxy_request. No tool ever
returns a credential value; proxy_request injects it into the request itself.

--read-only exposes only list_credentials, list_agents and proxy_request, for
assistants that should use credentials but not manage them. --tools exposes a
chosen set. AGENTKEYS_LOG_LEVEL=info logs each tool call (never its arguments).`,
		Example: `  agentkeys mcp
  agentkeys mcp --read-only
  agentkeys mcp --tools list_credentials,proxy_request
  agentkeys mcp config --client claude-desktop --write`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := akmcp.SelectTools(opts.ReadOnly, opts.Tools); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunMCP(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.ReadOnly, "read-only", false, "expose only list_credentials, list_agents and proxy_request")
	c.Flags().StringSliceVar(&opts.Tools, "tools", nil, "expose only these tools (comma-separated or repeated): "+strings.Join(akmcp.ToolNames, ", "))
	c.RegisterFlagCompletionFunc("tools", completeMCPTools)
	c.AddCommand(NewCmdMCPConfig(f, nil))
	return c
}

// RunMCP serves MCP on opts.IO's stdin and stdout until stdin is closed or
// ctx is cancelled. Nothing but protocol messages is written to stdout.
func RunMCP(ctx context.Context, opts *MCPOptions) error {
	serving()
	if opts.IO.IsStdinTTY() {
		fmt.Fprintln(opts.IO.ErrOut, "agentkeys mcp speaks the Model Context Protocol on stdin/stdout and is meant to be started by an MCP client: see `agentkeys mcp config --help`. Waiting for JSON-RPC on stdin (Ctrl-D to quit).")
	}
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	srv, err := akmcp.New(v, akmcp.Options{
		ReadOnly: opts.ReadOnly,
		Tools:    opts.Tools,
		Version:  mcpBuildVersion(),
		Logger:   opts.Logger,
	})
	if err != nil {
		return err
	}
	opts.Logger.Info("MCP server ready on stdio", "tools", strings.Join(srv.Tools(), ","))
	return srv.ServeStdio(ctx, opts.IO.In, opts.IO.Out)
}

// mcpBuildVersion is this binary's version (internal/version).
func mcpBuildVersion() string { return version.Version() }

// completeMCPTools completes --tools names (after any already typed, comma-separated).
func completeMCPTools(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	prefix := ""
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		prefix = toComplete[:i+1]
	}
	var out []string
	for _, n := range akmcp.ToolNames {
		out = append(out, prefix+n)
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
