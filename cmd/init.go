package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// InitOptions are the parsed flags of `init`.
type InitOptions struct {
	IO     *IOStreams
	Config func() (*Config, error)
	// Local is the localvault configuration for a Config (Factory.localConfig).
	Local func(*Config) localvault.Config

	Passphrase bool
	JSON       bool
}

// NewCmdInit returns `init`.
func NewCmdInit(f *Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Config: f.Config, Local: f.localConfig}
	c := &cobra.Command{
		Use:   "init [--passphrase]",
		Short: "Create the local vault and its workspace key",
		Long: `Create the vault in $AGENTKEYS_HOME (default ~/.agentkeys): vault.db, config.json,
a random vault key, and the workspace key (ak_ws_…), which is printed once.

The vault key is kept, in this order of preference:
  AGENTKEYS_MASTER_KEY  if set: base64 of 32 random bytes (CI, containers);
                        every later command needs the same value
  --passphrase          wrapped with a passphrase (argon2id) in vault.key; the
                        passphrase comes from AGENTKEYS_PASSPHRASE or a prompt
  the OS keychain       macOS Keychain, Windows Credential Manager, or the
                        Secret Service (gnome-keyring) on Linux
With no keychain, init asks for a passphrase when run in a terminal, and
otherwise fails naming these options: the key is never stored in plain text.`,
		Example: `  agentkeys init
  agentkeys init --passphrase
  AGENTKEYS_MASTER_KEY=$(openssl rand -base64 32) agentkeys init`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunInit(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.Passphrase, "passphrase", false, "protect the vault key with a passphrase instead of the OS keychain")
	c.Flags().BoolVar(&opts.JSON, "json", false, `print {"vault", "keySource", "workspaceId", "workspaceKey"} as JSON`)
	return c
}

// RunInit creates the vault and prints the workspace key once.
func RunInit(ctx context.Context, opts *InitOptions) (err error) {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	lc := opts.Local(cfg)
	// A failed init leaves nothing behind: localvault.Init removes what it
	// created inside Home, and Home itself goes too when init made it.
	if _, statErr := os.Stat(cfg.Home); errors.Is(statErr, fs.ErrNotExist) {
		defer func() {
			if err != nil {
				os.Remove(cfg.Home) // only if still empty
			}
		}()
	}
	if opts.Passphrase && cfg.MasterKey != "" {
		return errInvalid("--passphrase and AGENTKEYS_MASTER_KEY are both given: unset one of them")
	}
	usePassphrase := opts.Passphrase
	if usePassphrase && lc.Passphrase == "" {
		if !opts.IO.IsStdinTTY() {
			return errInvalid("init --passphrase needs the passphrase: set AGENTKEYS_PASSPHRASE, or run in a terminal to be prompted")
		}
		if lc.Passphrase, err = newPassphrase(opts.IO); err != nil {
			return err
		}
	}
	res, err := localvault.Init(ctx, lc, localvault.InitOptions{UsePassphrase: usePassphrase})
	if err != nil && agentkeys.ErrorCode(err) == agentkeys.EUNAVAILABLE && !usePassphrase && lc.MasterKey == "" && lc.Passphrase == "" && opts.IO.IsStdinTTY() {
		// No OS keychain (a headless Linux box): in a terminal, offer the
		// passphrase instead of failing. Init removed what it had created.
		fmt.Fprintln(opts.IO.ErrOut, "The OS keychain is not available here, so the vault key will be protected by a passphrase instead.")
		fmt.Fprintln(opts.IO.ErrOut, "(Or press Ctrl-C and set AGENTKEYS_MASTER_KEY; see `agentkeys init --help`.)")
		if lc.Passphrase, err = newPassphrase(opts.IO); err != nil {
			return err
		}
		usePassphrase = true
		res, err = localvault.Init(ctx, lc, localvault.InitOptions{UsePassphrase: true})
	}
	if err != nil {
		return err
	}
	if err := writeLocalConfig(cfg, res.WorkspaceID); err != nil {
		return fmt.Errorf("vault created at %s, but %w", res.Path, err)
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{
			"vault": res.Path, "keySource": res.KeySource, "workspaceId": res.WorkspaceID, "workspaceKey": res.WorkspaceKey,
		})
	}
	io := opts.IO
	out := io.Out
	fmt.Fprintf(out, "%s Created vault %s\n", io.Green("✓"), res.Path)
	switch res.KeySource {
	case localvault.SourceEnvironment:
		fmt.Fprintln(out, "Key source: environment (AGENTKEYS_MASTER_KEY). Every agentkeys command needs the same AGENTKEYS_MASTER_KEY; keep a copy.")
	case localvault.SourcePassphrase:
		fmt.Fprintln(out, "Key source: passphrase (vault.key). Unlock with AGENTKEYS_PASSPHRASE, or type it when asked in a terminal.")
	default:
		fmt.Fprintf(out, "Key source: %s\n", res.KeySource)
	}
	fmt.Fprintf(out, "Workspace:  %s\n\n", res.WorkspaceID)
	fmt.Fprintln(out, io.Yellow("!")+" Workspace key (ak_ws_…) for the proxy and MCP clients. It is shown only this once and")
	fmt.Fprintln(out, "  cannot be recovered: store it in your password manager now.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "    "+io.Bold(res.WorkspaceKey))
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Next: agentkeys credentials add --name \"Resend Production\" --value -")
	return nil
}

// newPassphrase asks for a new passphrase twice, without echo.
func newPassphrase(ios *IOStreams) (string, error) {
	p1, err := ios.PromptSecret("New vault passphrase: ")
	if err != nil {
		return "", err
	}
	if len(p1) < 8 {
		return "", errInvalid("the passphrase is shorter than 8 characters")
	}
	p2, err := ios.PromptSecret("Repeat the passphrase: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errInvalid("the passphrases do not match")
	}
	return p1, nil
}
