package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys/localvault"
)

func newCmdKey(f *Factory) *cobra.Command {
	c := groupCmd("key", "Where the local vault's key lives; rotate it; change its passphrase")
	c.AddCommand(newCmdKeyWhere(f), newCmdKeyRotate(f), newCmdKeyPassphrase(f))
	return c
}

func newCmdKeyWhere(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "where",
		Short: "Say where the local vault's key lives (without unlocking it)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			info, err := localvault.Inspect(cmd.Context(), cfg.Home)
			if err != nil {
				return err
			}
			source, location := "", ""
			switch {
			case cfg.MasterKey != "":
				source, location = localvault.SourceEnvironment, "the AGENTKEYS_MASTER_KEY environment variable (set in this shell)"
			case info.KeyFile != "":
				source, location = localvault.SourcePassphrase, info.KeyFile+", wrapped by a passphrase (AGENTKEYS_PASSPHRASE, or asked for in a terminal)"
			case info.InitSource == localvault.SourceEnvironment:
				source, location = localvault.SourceEnvironment, "the AGENTKEYS_MASTER_KEY environment variable, which is not set in this shell"
			default:
				source = localvault.SourceKeychain
				location = fmt.Sprintf("the OS keychain, service %q, account %q", localvault.KeychainService, info.WorkspaceID)
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]string{"vault": info.Path, "workspaceId": info.WorkspaceID, "keySource": source, "location": location})
			}
			fmt.Fprintf(f.IOStreams.Out, "Vault:      %s\nKey source: %s\nKey:        %s\n", info.Path, source, location)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"vault", "workspaceId", "keySource", "location"} as JSON`)
	return c
}

// newPassphraseFrom is AGENTKEYS_NEW_PASSPHRASE, else asked twice in a terminal.
func newPassphraseFrom(f *Factory) (string, error) {
	if p := f.Getenv("AGENTKEYS_NEW_PASSPHRASE"); p != "" {
		if len([]rune(p)) < 8 {
			return "", errInvalid("AGENTKEYS_NEW_PASSPHRASE is shorter than 8 characters")
		}
		return p, nil
	}
	if !f.IOStreams.IsStdinTTY() {
		return "", errInvalid("a new passphrase is needed: set AGENTKEYS_NEW_PASSPHRASE, or run in a terminal to be asked")
	}
	return newPassphrase(f.IOStreams)
}

func newCmdKeyRotate(f *Factory) *cobra.Command {
	var dataKey, asJSON bool
	c := &cobra.Command{
		Use:   "rotate [--data-key]",
		Short: "Replace the local vault's key (and, with --data-key, re-seal every value)",
		Long: `Replace the vault's root key with a new random one, saved where the old one was:
  keychain     the OS keychain entry is replaced;
  passphrase   a new passphrase is asked for (or read from AGENTKEYS_NEW_PASSPHRASE)
               and vault.key is replaced;
  environment  the new key is printed once (base64): save it and set
               AGENTKEYS_MASTER_KEY to it everywhere this vault is used.
--data-key also replaces the data key under it, re-sealing every value in one
transaction. Agents keep their proxy tokens. A crash at any point leaves a vault
that opens with the old key or the new one. Restart a running ` + "`agentkeys up`" + `.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := localOnly(f, "key rotate"); err != nil {
				return err
			}
			v, err := f.LocalVault(cmd.Context())
			if err != nil {
				return err
			}
			ios := f.IOStreams
			opts := localvault.RotateOptions{DataKey: dataKey}
			if v.KeySource() == localvault.SourcePassphrase {
				if opts.NewPassphrase, err = newPassphraseFrom(f); err != nil {
					return err
				}
			}
			printed := false
			opts.SaveMasterKey = func(key string) error {
				// Shown before the vault switches to it: a crash after this
				// line leaves a vault that opens with either key.
				printed = true
				if asJSON {
					return writeJSON(ios.Out, map[string]any{"keySource": localvault.SourceEnvironment, "dataKey": dataKey, "newMasterKey": key})
				}
				fmt.Fprintln(ios.Out, ios.Yellow("!")+" New vault key. It is shown only this once: save it now, and set AGENTKEYS_MASTER_KEY")
				fmt.Fprintln(ios.Out, "  to it wherever this vault is used (the old value stops working):")
				fmt.Fprintln(ios.Out)
				fmt.Fprintln(ios.Out, "    "+ios.Bold(key))
				fmt.Fprintln(ios.Out)
				return nil
			}
			res, err := v.RotateKey(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				if printed {
					return nil
				}
				return writeJSON(ios.Out, map[string]any{"keySource": res.KeySource, "dataKey": dataKey})
			}
			where := map[string]string{
				localvault.SourceKeychain:    "replaced in the OS keychain",
				localvault.SourcePassphrase:  "wrapped by the new passphrase in vault.key",
				localvault.SourceEnvironment: "printed above",
			}[res.KeySource]
			fmt.Fprintf(ios.Out, "%s Rotated the vault key (%s)\n", ios.Green("✓"), where)
			if dataKey {
				fmt.Fprintf(ios.Out, "%s New data key: %d value(s) re-sealed\n", ios.Green("✓"), res.Resealed)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&dataKey, "data-key", false, "also replace the data key, re-sealing every value")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"keySource", "dataKey", "newMasterKey"?} as JSON`)
	return c
}

func newCmdKeyPassphrase(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "passphrase",
		Short: "Change the passphrase of a passphrase-protected vault",
		Long: `Re-wrap the vault key under a new passphrase (asked for twice, or read from
AGENTKEYS_NEW_PASSPHRASE); the current one unlocks the vault first
(AGENTKEYS_PASSPHRASE or a prompt). The key itself does not change; see
` + "`agentkeys key rotate`" + ` for that.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := localOnly(f, "key passphrase"); err != nil {
				return err
			}
			v, err := f.LocalVault(cmd.Context())
			if err != nil {
				return err
			}
			if v.KeySource() != localvault.SourcePassphrase {
				return errInvalid("this vault's key comes from the %s, not a passphrase: see `agentkeys key where`", v.KeySource())
			}
			p, err := newPassphraseFrom(f)
			if err != nil {
				return err
			}
			if err := v.ChangePassphrase(p); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]any{"changed": true})
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Changed the vault passphrase\n", f.IOStreams.Green("✓"))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"changed": true} as JSON`)
	return c
}
