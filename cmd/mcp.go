package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
	"github.com/agentkeys/agentkeys/localvault"
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

Tools: list_credentials, create_credential, delete_credential, list_agents,
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

// MCP clients `agentkeys mcp config` knows.
const (
	ClientClaudeDesktop = "claude-desktop"
	ClientCursor        = "cursor"
	ClientClaudeCode    = "claude-code"
	ClientVSCode        = "vscode"
)

var mcpClientNames = []string{ClientClaudeDesktop, ClientCursor, ClientClaudeCode, ClientVSCode}

// MCPConfigOptions are the parsed flags of `agentkeys mcp config`.
type MCPConfigOptions struct {
	IO     *IOStreams
	Getenv func(string) string
	// Executable is the absolute path of the agentkeys binary the entry starts.
	Executable func() (string, error)
	// GOOS picks the per-OS config path of Claude Desktop.
	GOOS string

	// Client is one of claude-desktop, cursor, claude-code, vscode; "" prints
	// the generic {"mcpServers": …} entry.
	Client string
	// Write merges the entry into the client's config file.
	Write bool
	// Project is the project directory of claude-code (.mcp.json) and vscode
	// (.vscode/mcp.json); "" is the current directory.
	Project string
	// Home is the vault directory to pass as AGENTKEYS_HOME ("" when the
	// default ~/.agentkeys is used, so the entry names no directory).
	Home string
	// ReadOnly and Tools are passed on to `agentkeys mcp`.
	ReadOnly bool
	Tools    []string
}

// NewCmdMCPConfig returns `agentkeys mcp config`.
func NewCmdMCPConfig(f *Factory, runF func(context.Context, *MCPConfigOptions) error) *cobra.Command {
	opts := &MCPConfigOptions{IO: f.IOStreams, Getenv: f.Getenv, Executable: mcpExecutablePath, GOOS: runtime.GOOS}
	c := &cobra.Command{
		Use:   "config [--client claude-desktop|cursor|claude-code|vscode] [--write]",
		Short: "Print, or write into an MCP client's config, the entry that starts `agentkeys mcp`",
		Long: `Print the MCP client configuration that starts this agentkeys binary (by its
absolute path) as an MCP server, or with --write merge it into the client's
config file: other servers and settings are kept, the old file is copied to
FILE.bak first, and running it again changes nothing.

Config files:
  claude-desktop  Linux: ~/.config/Claude/claude_desktop_config.json
                  macOS: ~/Library/Application Support/Claude/claude_desktop_config.json
                  Windows: %APPDATA%\Claude\claude_desktop_config.json
  cursor          ~/.cursor/mcp.json
  claude-code     .mcp.json in the project (--project, default the current directory)
  vscode          .vscode/mcp.json in the project (uses "servers", not "mcpServers")

With --home or AGENTKEYS_HOME set, the entry passes AGENTKEYS_HOME on. It never
contains a key or passphrase.`,
		Example: `  agentkeys mcp config
  agentkeys mcp config --client claude-desktop --write
  agentkeys mcp config --client vscode --project ~/src/app --write
  agentkeys mcp config --client cursor --read-only --write`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Client != "" && !mcpContains(mcpClientNames, opts.Client) {
				return errInvalid("unknown MCP client %q: use one of %s", opts.Client, strings.Join(mcpClientNames, ", "))
			}
			if opts.Write && opts.Client == "" {
				return errInvalid("--write needs --client (one of %s) to know which file to change", strings.Join(mcpClientNames, ", "))
			}
			if cmd.Flags().Changed("project") && opts.Client != ClientClaudeCode && opts.Client != ClientVSCode {
				return errInvalid("--project is for --client claude-code or vscode")
			}
			if _, err := akmcp.SelectTools(opts.ReadOnly, opts.Tools); err != nil {
				return err
			}
			if f.homeFlag != "" || strings.TrimSpace(f.Getenv("AGENTKEYS_HOME")) != "" {
				cfg, err := f.Config()
				if err != nil {
					return err
				}
				opts.Home = cfg.Home
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunMCPConfig(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Client, "client", "", "MCP client: "+strings.Join(mcpClientNames, ", "))
	c.Flags().BoolVar(&opts.Write, "write", false, "merge the entry into the client's config file (keeps a .bak copy)")
	c.Flags().StringVar(&opts.Project, "project", "", "project directory for claude-code and vscode (default: current directory)")
	c.Flags().BoolVar(&opts.ReadOnly, "read-only", false, "pass --read-only on to agentkeys mcp")
	c.Flags().StringSliceVar(&opts.Tools, "tools", nil, "pass --tools on to agentkeys mcp (comma-separated or repeated)")
	c.RegisterFlagCompletionFunc("client", cobra.FixedCompletions(mcpClientNames, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("tools", completeMCPTools)
	c.RegisterFlagCompletionFunc("project", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	return c
}

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

func mcpContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mcpExecutablePath is this binary's absolute path, symlinks resolved.
func mcpExecutablePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the agentkeys binary: %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return filepath.Abs(p)
}

// mcpEntry is one server entry in an MCP client's config.
type mcpEntry struct {
	Type    string            `json:"type,omitempty"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env,omitempty"`
}

// mcpServersKey is the key under which a client's config holds its servers.
func mcpServersKey(client string) string {
	if client == ClientVSCode {
		return "servers"
	}
	return "mcpServers"
}

// mcpServerName is the entry's name in the client's config.
const mcpServerName = "agentkeys"

// mcpEntryFor builds the entry that starts this binary.
func mcpEntryFor(opts *MCPConfigOptions) (*mcpEntry, error) {
	exe, err := opts.Executable()
	if err != nil {
		return nil, err
	}
	e := &mcpEntry{Command: exe, Args: []string{"mcp"}}
	if opts.Client == ClientVSCode || opts.Client == ClientClaudeCode {
		e.Type = "stdio"
	}
	if opts.ReadOnly {
		e.Args = append(e.Args, "--read-only")
	}
	var tools []string
	for _, t := range opts.Tools {
		if t = strings.TrimSpace(t); t != "" {
			tools = append(tools, t)
		}
	}
	if len(tools) > 0 {
		e.Args = append(e.Args, "--tools", strings.Join(tools, ","))
	}
	if opts.Home != "" {
		e.Env = map[string]string{"AGENTKEYS_HOME": opts.Home}
	}
	return e, nil
}

// MCPConfigPath returns the config file of client: HOME (and on Linux
// XDG_CONFIG_HOME, on Windows APPDATA) come from getenv; project is the
// directory for the project-level clients ("" is the current directory).
func MCPConfigPath(client, goos string, getenv func(string) string, project string) (string, error) {
	home := getenv("HOME")
	if home == "" && goos == "windows" {
		home = getenv("USERPROFILE")
	}
	needHome := func() error {
		if home == "" {
			return errInvalid("cannot find your home directory: set HOME")
		}
		return nil
	}
	projectDir := func() (string, error) {
		if project == "" {
			return os.Getwd()
		}
		return filepath.Abs(project)
	}
	switch client {
	case ClientClaudeDesktop:
		switch goos {
		case "darwin":
			if err := needHome(); err != nil {
				return "", err
			}
			return filepath.Join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"), nil
		case "windows":
			appData := getenv("APPDATA")
			if appData == "" {
				return "", errInvalid("cannot find %%APPDATA%%: set it to your roaming application data folder")
			}
			return filepath.Join(appData, "Claude", "claude_desktop_config.json"), nil
		default:
			base := getenv("XDG_CONFIG_HOME")
			if base == "" {
				if err := needHome(); err != nil {
					return "", err
				}
				base = filepath.Join(home, ".config")
			}
			return filepath.Join(base, "Claude", "claude_desktop_config.json"), nil
		}
	case ClientCursor:
		if err := needHome(); err != nil {
			return "", err
		}
		return filepath.Join(home, ".cursor", "mcp.json"), nil
	case ClientClaudeCode:
		dir, err := projectDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, ".mcp.json"), nil
	case ClientVSCode:
		dir, err := projectDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, ".vscode", "mcp.json"), nil
	}
	return "", errInvalid("unknown MCP client %q: use one of %s", client, strings.Join(mcpClientNames, ", "))
}

// RunMCPConfig prints the entry, or merges it into the client's file.
func RunMCPConfig(ctx context.Context, opts *MCPConfigOptions) error {
	entry, err := mcpEntryFor(opts)
	if err != nil {
		return err
	}
	doc := map[string]any{mcpServersKey(opts.Client): map[string]any{mcpServerName: entry}}
	if !opts.Write {
		if err := writeJSON(opts.IO.Out, doc); err != nil {
			return err
		}
		if opts.Client == "" {
			fmt.Fprintf(opts.IO.ErrOut, "Add this to your MCP client's configuration, or run `agentkeys mcp config --client NAME --write` (%s).\n", strings.Join(mcpClientNames, ", "))
		} else if path, err := MCPConfigPath(opts.Client, opts.GOOS, opts.Getenv, opts.Project); err == nil {
			fmt.Fprintf(opts.IO.ErrOut, "Add this to %s, or run again with --write to merge it there.\n", path)
		}
		mcpWarnVaultKey(opts)
		return nil
	}
	path, err := MCPConfigPath(opts.Client, opts.GOOS, opts.Getenv, opts.Project)
	if err != nil {
		return err
	}
	res, err := mergeMCPConfig(path, mcpServersKey(opts.Client), mcpServerName, entry)
	if err != nil {
		return err
	}
	switch {
	case !res.changed:
		fmt.Fprintf(opts.IO.Out, "%s already starts agentkeys: nothing changed\n", path)
	case res.backup != "":
		fmt.Fprintf(opts.IO.Out, "Updated %s (the previous version is in %s)\n", path, res.backup)
	default:
		fmt.Fprintf(opts.IO.Out, "Created %s\n", path)
	}
	if res.changed {
		fmt.Fprintf(opts.IO.Out, "Restart %s to load the agentkeys MCP server (%s %s).\n", mcpClientTitle(opts.Client), entry.Command, strings.Join(entry.Args, " "))
	}
	mcpWarnVaultKey(opts)
	return nil
}

func mcpClientTitle(client string) string {
	return map[string]string{
		ClientClaudeDesktop: "Claude Desktop", ClientCursor: "Cursor", ClientClaudeCode: "Claude Code", ClientVSCode: "VS Code",
	}[client]
}

// mcpWarnVaultKey says when the MCP client will not be able to unlock the vault
// by itself: the entry never carries a key or passphrase.
func mcpWarnVaultKey(opts *MCPConfigOptions) {
	home := opts.Home
	if home == "" {
		h := opts.Getenv("HOME")
		if h == "" {
			return
		}
		home = filepath.Join(h, ".agentkeys")
	}
	if _, err := os.Stat(filepath.Join(home, localvault.KeyFileName)); err == nil {
		opts.IO.Warnf("this vault is unlocked by a passphrase: add AGENTKEYS_PASSPHRASE to the entry's \"env\" yourself (the client's config file will then hold it), or the MCP server cannot open the vault")
	} else if opts.Getenv("AGENTKEYS_MASTER_KEY") != "" {
		opts.IO.Warnf("AGENTKEYS_MASTER_KEY is set here; if this vault's key comes only from it, add it to the entry's \"env\" yourself (the client's config file will then hold it)")
	}
}

// mcpMergeResult says what mergeMCPConfig did.
type mcpMergeResult struct {
	changed bool
	backup  string // path of the .bak copy, "" when there was no file
}

// mergeMCPConfig sets [key][name] in the JSON file at path to entry,
// keeping every other key (in order) and, in an existing entry, keys agentkeys
// does not manage (other env variables, for one). Nothing is written when the
// file already says the same. Before changing an existing file, it is copied
// to path+".bak"; the new file replaces it atomically with the same mode.
func mergeMCPConfig(path, key, name string, entry *mcpEntry) (*mcpMergeResult, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // keep a symlinked config (dotfiles) a symlink
	}
	old, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	mode := fs.FileMode(0o600)
	if exists {
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	entryJSON, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	manual := func(why string) error {
		doc, _ := json.MarshalIndent(map[string]any{key: map[string]any{name: entry}}, "", "  ")
		return errInvalid("%s %s: nothing was written. Add this entry by hand:\n%s", path, why, doc)
	}

	top, err := mcpParseObject(old)
	if err != nil {
		return nil, manual("is not plain JSON (comments or trailing commas?)")
	}
	servers := &mcpObject{}
	if raw, ok := top.get(key); ok {
		if servers, err = mcpParseObject(raw); err != nil {
			return nil, manual(fmt.Sprintf("has a %q that is not a JSON object", key))
		}
	}
	newEntry := entryJSON
	if raw, ok := servers.get(name); ok {
		merged, err := mcpMergeEntry(raw, entry)
		if err != nil {
			return nil, manual(fmt.Sprintf("has a %q entry that is not a JSON object", name))
		}
		if mcpJSONEqual(raw, merged) {
			return &mcpMergeResult{changed: false}, nil
		}
		newEntry = merged
	}
	servers.set(name, newEntry)
	top.set(key, servers.encode())
	var out bytes.Buffer
	if err := json.Indent(&out, top.encode(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')

	res := &mcpMergeResult{changed: true}
	if exists {
		res.backup = path + ".bak"
		if err := mcpWriteFileAtomic(res.backup, old, mode); err != nil {
			return nil, fmt.Errorf("back up %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := mcpWriteFileAtomic(path, out.Bytes(), mode); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return res, nil
}

// mcpMergeEntry updates an existing server entry: command, args and type are
// set; env gains AGENTKEYS_HOME when the entry sets it; other keys stay.
func mcpMergeEntry(raw json.RawMessage, e *mcpEntry) (json.RawMessage, error) {
	obj, err := mcpParseObject(raw)
	if err != nil {
		return nil, err
	}
	if e.Type != "" {
		obj.set("type", mcpJSON(e.Type))
	}
	obj.set("command", mcpJSON(e.Command))
	obj.set("args", mcpJSON(e.Args))
	if len(e.Env) > 0 {
		env := &mcpObject{}
		if r, ok := obj.get("env"); ok {
			if env, err = mcpParseObject(r); err != nil {
				return nil, err
			}
		}
		for k, v := range e.Env {
			env.set(k, mcpJSON(v))
		}
		obj.set("env", env.encode())
	}
	return obj.encode(), nil
}

func mcpJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and string slices always marshal
	}
	return b
}

// mcpJSONEqual compares two JSON documents by value.
func mcpJSONEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// mcpObject is a JSON object whose keys keep their order, so a merged
// config file reads like the one the user wrote.
type mcpObject struct {
	keys []string
	vals map[string]json.RawMessage
}

// mcpParseObject parses a JSON object; empty input is an empty object.
func mcpParseObject(b []byte) (*mcpObject, error) {
	o := &mcpObject{vals: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad object key")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		o.set(key, raw)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return o, nil
}

func (o *mcpObject) get(k string) (json.RawMessage, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *mcpObject) set(k string, v json.RawMessage) {
	if o.vals == nil {
		o.vals = map[string]json.RawMessage{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// encode writes the object compactly, keys in order.
func (o *mcpObject) encode() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(mcpJSON(k))
		b.WriteByte(':')
		json.Compact(&b, o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mcpWriteFileAtomic writes data to a temporary file beside path and renames it
// over path, so a crash never leaves half a config file.
func mcpWriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
