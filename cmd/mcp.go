package cmd

import (
	"github.com/spf13/cobra"
)

// newCmdMCP returns `agentkeys mcp`, the MCP stdio server. This is the
// minimal first version; the mcp helper owns this file and replaces it.
func newCmdMCP(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "mcp",
		Short: "Run the MCP server on stdio (for Claude Desktop, Cursor and other MCP clients)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return unavailable("the MCP server is not part of this build yet")
		},
	}
}
