// Package agentkeys is the domain of agentkeys: credentials, agents, grants
// (an agent × a credential, reached with a proxy token), audit events and the
// workspace; the Vault interface that every front-end (CLI, TUI, MCP) speaks,
// made of a store's Contents joined to a proxy (WithProxy) where the app is
// wired;
// errors with codes; token formats and hashing; host-allowlist matching;
// credential injection; and sealing with AES-256-GCM.
//
// It imports the standard library only. Adapters — localvault, proxy, mcp,
// tui, client, server — import this package and implement or consume its
// interfaces; they never import each other (server may use proxy and sync).
package agentkeys
