package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// localOnly refuses a command that works on the local vault only while
// this CLI is logged in to a server.
func localOnly(f *Factory, what string) (*Config, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if remoteConfigured(cfg) {
		return nil, errInvalid("%s works on the local vault, and this CLI is logged in to %s: run `agentkeys logout` first, or use --home for another local vault", what, cfg.APIURL)
	}
	return cfg, nil
}

func newCmdBackup(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the local vault to FILE (still encrypted)",
		Long: `Write a consistent copy of the local vault (SQLite's VACUUM INTO) to FILE, mode
0600, while other agentkeys processes keep working. The copy stays sealed: its
values open only with this vault's key (AGENTKEYS_MASTER_KEY, the OS keychain
entry, or the passphrase; a passphrase vault's key file travels inside the
backup). Bring it back with ` + "`agentkeys restore FILE`" + `.`,
		Example: `  agentkeys backup ~/backups/agentkeys-$(date +%F).db`,
		Args:    exactArgs(1, "the backup file to write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := localOnly(f, "backup"); err != nil {
				return err
			}
			v, err := f.LocalVault(cmd.Context())
			if err != nil {
				return err
			}
			dest, _ := filepath.Abs(args[0])
			if err := v.Backup(cmd.Context(), dest); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]any{"backup": dest, "workspaceId": v.WorkspaceID(), "keySource": v.KeySource()})
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Backed up the vault to %s (it opens only with this vault's %s key)\n", f.IOStreams.Green("✓"), dest, v.KeySource())
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"backup", "workspaceId", "keySource"} as JSON`)
	return c
}

func newCmdRestore(f *Factory) *cobra.Command {
	var force, asJSON bool
	c := &cobra.Command{
		Use:   "restore FILE [--force]",
		Short: "Replace the local vault with a backup, after checking the key opens it",
		Long: `Replace the local vault with a backup made by ` + "`agentkeys backup`" + `. The vault key
(AGENTKEYS_MASTER_KEY, AGENTKEYS_PASSPHRASE for a passphrase vault, or the OS
keychain) must open the backup: that is checked before anything is replaced.
An existing vault is replaced only with --force. Stop ` + "`agentkeys up`" + ` first.`,
		Example: `  agentkeys restore ~/backups/agentkeys-2026-12-01.db
  agentkeys restore backup.db --force`,
		Args: exactArgs(1, "the backup file to restore"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := localOnly(f, "restore")
			if err != nil {
				return err
			}
			res, err := localvault.Restore(cmd.Context(), f.localConfig(cfg), args[0], force)
			if err != nil {
				return err
			}
			if err := writeLocalConfig(cfg, res.WorkspaceID); err != nil {
				return fmt.Errorf("vault restored at %s, but %w", res.Path, err)
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]any{"vault": res.Path, "workspaceId": res.WorkspaceID, "keySource": res.KeySource, "replaced": res.Replaced})
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Restored %s from %s (opened with the %s key)\n", f.IOStreams.Green("✓"), res.Path, args[0], res.KeySource)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace an existing vault")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"vault", "workspaceId", "keySource", "replaced"} as JSON`)
	return c
}

// exportPassphrase is the export file's passphrase: AGENTKEYS_EXPORT_PASSPHRASE,
// else asked (twice when confirm) in a terminal.
func exportPassphrase(f *Factory, confirm bool) (string, error) {
	if p := f.Getenv("AGENTKEYS_EXPORT_PASSPHRASE"); p != "" {
		return p, nil
	}
	ios := f.IOStreams
	if !ios.IsStdinTTY() {
		return "", errInvalid("the export file needs a passphrase of its own: set AGENTKEYS_EXPORT_PASSPHRASE, or run in a terminal to be asked")
	}
	p, err := ios.PromptSecret("Export file passphrase: ")
	if err != nil || !confirm {
		return p, err
	}
	again, err := ios.PromptSecret("Repeat the passphrase: ")
	if err != nil {
		return "", err
	}
	if p != again {
		return "", errInvalid("the passphrases do not match")
	}
	return p, nil
}

func newCmdExport(f *Factory) *cobra.Command {
	var file string
	var asJSON bool
	c := &cobra.Command{
		Use:   "export --encrypted FILE",
		Short: "Export every credential, values included, to a passphrase-encrypted file",
		Long: `Write every credential of the local vault — name, type, allowed hosts and value —
to FILE (0600), encrypted with a passphrase of its own (argon2id, AES-256-GCM),
to move them to another vault with ` + "`agentkeys import FILE`" + `. There is no
plain-text export. The passphrase comes from AGENTKEYS_EXPORT_PASSPHRASE or is
asked for twice.`,
		Example: `  agentkeys export --encrypted creds.akx
  agentkeys --home /other/vault import creds.akx`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errInvalid("export writes only encrypted files: give --encrypted FILE")
			}
			if _, err := localOnly(f, "export"); err != nil {
				return err
			}
			dest, _ := filepath.Abs(file)
			if _, err := os.Stat(dest); err == nil {
				return agentkeys.Errorf(agentkeys.ECONFLICT, "%s exists: choose another file name, or remove it first", dest)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("export: %w", err)
			}
			pass, err := exportPassphrase(f, true)
			if err != nil {
				return err
			}
			v, err := f.LocalVault(cmd.Context())
			if err != nil {
				return err
			}
			creds, err := v.ExportCredentials(cmd.Context())
			if err != nil {
				return err
			}
			data, err := localvault.SealExport(creds, pass, time.Now())
			if err != nil {
				return err
			}
			fh, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if _, err := fh.Write(data); err != nil {
				fh.Close()
				os.Remove(dest)
				return fmt.Errorf("export: %w", err)
			}
			if err := fh.Close(); err != nil {
				os.Remove(dest)
				return fmt.Errorf("export: %w", err)
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]any{"file": dest, "count": len(creds)})
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Exported %d credential(s) to %s, encrypted with the export passphrase\n", f.IOStreams.Green("✓"), len(creds), dest)
			return nil
		},
	}
	c.Flags().StringVar(&file, "encrypted", "", "the encrypted file to write")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"file", "count"} as JSON`)
	return c
}

func newCmdImport(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Add the credentials of an encrypted export file to this vault",
		Long: `Decrypt an export file made by ` + "`agentkeys export --encrypted`" + ` (its passphrase
from AGENTKEYS_EXPORT_PASSPHRASE or asked for) and add each credential to this
vault, local or a server's workspace. A credential whose name is taken is
skipped and listed; nothing else is changed.`,
		Args: exactArgs(1, "the export file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			data, err := os.ReadFile(args[0])
			if err != nil {
				return agentkeys.Errorf(agentkeys.ENOTFOUND, "cannot read %s: %v", args[0], unwrapPathError(err))
			}
			pass, err := exportPassphrase(f, false)
			if err != nil {
				return err
			}
			creds, err := localvault.OpenExport(data, pass)
			if err != nil {
				return err
			}
			v, err := f.Vault(ctx)
			if err != nil {
				return err
			}
			imported, skipped := []string{}, []string{}
			for _, c := range creds {
				if _, err := v.FindCredential(ctx, c.Name); err == nil {
					skipped = append(skipped, c.Name)
					continue
				}
				in := &agentkeys.CredentialInput{Name: c.Name, Type: c.Type, AllowedHosts: c.AllowedHosts, Secret: c.Secret, ExpiresAt: c.CredentialExpiresAt}
				if _, err := v.CreateCredential(ctx, in); err != nil {
					if agentkeys.ErrorCode(err) == agentkeys.ECONFLICT {
						skipped = append(skipped, c.Name)
						continue
					}
					return fmt.Errorf("import %s (after %d imported): %w", c.Name, len(imported), err)
				}
				imported = append(imported, c.Name)
			}
			if asJSON {
				return writeJSON(f.IOStreams.Out, map[string]any{"imported": imported, "skipped": skipped})
			}
			fmt.Fprintf(f.IOStreams.Out, "%s Imported %d credential(s)\n", f.IOStreams.Green("✓"), len(imported))
			for _, n := range skipped {
				fmt.Fprintf(f.IOStreams.Out, "Skipped %s: a credential with that name exists\n", n)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"imported": [names], "skipped": [names]} as JSON`)
	return c
}
