package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/sync"
	"github.com/agentkeys/agentkeys/tui"
)

// syncVault is what the sync commands need of the vault: the local vault
// (sync.Local) plus its status queries. A server workspace (after
// `agentkeys login`) has none of it.
type syncVault interface {
	sync.Local
	DisableSync(ctx context.Context) error
	SyncPendingCount(ctx context.Context) (int, error)
	SyncChangeMark(ctx context.Context) (string, error)
	SyncConflicts(ctx context.Context) ([]agentkeys.SyncConflict, error)
}

// SyncOptions are the parsed flags of `sync` and its subcommands.
type SyncOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Now   func() time.Time

	Server string
	APIKey string
	Name   string
	JSON   bool
	Device string // revoke
}

// asSyncVault returns the local vault under v (joined to its proxy by
// agentkeys.WithProxy), or false when v is a server's workspace.
func asSyncVault(v agentkeys.Vault) (syncVault, bool) {
	if lv, ok := v.(syncVault); ok {
		return lv, true
	}
	if u, ok := v.(interface{ Unwrap() agentkeys.Contents }); ok {
		lv, ok := u.Unwrap().(syncVault)
		return lv, ok
	}
	return nil, false
}

func (o *SyncOptions) local(ctx context.Context) (syncVault, error) {
	v, err := o.Vault(ctx)
	if err != nil {
		return nil, err
	}
	lv, ok := asSyncVault(v)
	if !ok {
		return nil, errInvalid("sync keeps a local vault in step across devices; this command is using a server's workspace (after `agentkeys login`): run `agentkeys logout` first")
	}
	return lv, nil
}

func newCmdSync(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "sync",
		Short: "Sync this vault with your other devices now (end-to-end encrypted, through `agentkeys serve`)",
		Long: `Push this vault's changes and pull the other devices' changes now, and print
what changed. The server stores only ciphertext it cannot read.

Set up with ` + "`agentkeys sync enable`" + ` on the first device and ` + "`agentkeys sync join`" + ` on
the others. ` + "`agentkeys up`" + ` syncs in the background.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return RunSync(cmd.Context(), opts) },
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	c.AddCommand(newCmdSyncEnable(f), newCmdSyncJoin(f), newCmdSyncStatus(f), newCmdSyncDevices(f),
		newCmdSyncRevoke(f), newCmdSyncDisable(f), newCmdSyncRotateKey(f))
	return c
}

// RunSync syncs once and prints the result.
func RunSync(ctx context.Context, o *SyncOptions) error {
	lv, err := o.local(ctx)
	if err != nil {
		return err
	}
	res, err := sync.Run(ctx, lv, sync.Options{Now: o.Now})
	if err != nil {
		return err
	}
	return printSyncResult(o.IO, res, o.JSON)
}

func printSyncResult(ios *IOStreams, res *sync.Result, asJSON bool) error {
	if asJSON {
		return writeJSON(ios.Out, map[string]any{"pulled": res.Pulled, "applied": res.Applied, "pushed": res.Pushed,
			"conflicts": nonNil(res.Conflicts), "refused": nonNil(res.Refused)})
	}
	fmt.Fprintf(ios.Out, "synced: %d change(s) applied here, %d pushed\n", res.Applied, res.Pushed)
	for _, c := range res.Conflicts {
		fmt.Fprintf(ios.Out, "conflict: %s\n", c)
	}
	for _, r := range res.Refused {
		fmt.Fprintf(ios.ErrOut, "warning: %s\n", r)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func addServerFlags(c *cobra.Command, o *SyncOptions) {
	c.Flags().StringVar(&o.Server, "server", "", "URL of the `agentkeys serve` to sync through (required)")
	c.Flags().StringVar(&o.APIKey, "api-key", "", "an API key (ak_ws_…) of a workspace on that server; - reads it from stdin")
	c.Flags().StringVar(&o.Name, "name", "", "this device's name in `sync devices` (default: the host name; sealed, the server cannot read it)")
}

func (o *SyncOptions) serverOptions() (sync.Options, error) {
	if o.Server == "" {
		return sync.Options{}, errInvalid("--server is required: the URL of the `agentkeys serve` to sync through")
	}
	key := o.APIKey
	if key == "-" {
		k, err := readSecretLine(o.IO.In)
		if err != nil {
			return sync.Options{}, err
		}
		key = strings.TrimSpace(k)
	}
	if key == "" {
		return sync.Options{}, errInvalid("--api-key is required: an API key (ak_ws_…) of a workspace on the server, or - to read it from stdin")
	}
	return sync.Options{Server: o.Server, APIKey: key, Label: o.Name, Now: o.Now}, nil
}

func newCmdSyncEnable(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "enable --server URL --api-key KEY",
		Short: "Start syncing this vault (first device): prints the recovery phrase once",
		Long: `Make this vault the first device of a synced vault on the server, print its
recovery phrase (24 words) once, and push everything.

The recovery phrase is the vault key: the only way to add another device
(` + "`agentkeys sync join`" + `) and to read the synced data. Write it down and keep it
safe; it is never stored or shown again.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return RunSyncEnable(cmd.Context(), opts) },
	}
	addServerFlags(c, opts)
	return c
}

// RunSyncEnable enables sync and pushes the vault.
func RunSyncEnable(ctx context.Context, o *SyncOptions) error {
	so, err := o.serverOptions()
	if err != nil {
		return err
	}
	lv, err := o.local(ctx)
	if err != nil {
		return err
	}
	phrase, err := sync.Enable(ctx, lv, so)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.IO.ErrOut, "Recovery phrase (shown once; write it down — other devices join with it):")
	fmt.Fprintln(o.IO.Out, phrase)
	res, err := sync.Run(ctx, lv, sync.Options{Now: o.Now})
	if err != nil {
		return fmt.Errorf("sync is enabled, but the first push failed (run `agentkeys sync` to retry): %w", err)
	}
	fmt.Fprintf(o.IO.ErrOut, "sync enabled: %d record(s) pushed\n", res.Pushed)
	return nil
}

func newCmdSyncJoin(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "join --server URL --api-key KEY",
		Short: "Add this device to a synced vault with its recovery phrase, and pull it",
		Long: `Add this device to the synced vault whose recovery phrase you give, and pull
it: the same credentials, agents and grants (pxr_ tokens made on another device
work here). The phrase is asked for without echo, or read from stdin when stdin
is not a terminal (agentkeys sync join … < phrase.txt). Anything this vault
held already is merged in and pushed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return RunSyncJoin(cmd.Context(), opts) },
	}
	addServerFlags(c, opts)
	return c
}

// RunSyncJoin joins and pulls.
func RunSyncJoin(ctx context.Context, o *SyncOptions) error {
	if o.APIKey == "-" && !o.IO.IsStdinTTY() {
		return errInvalid("--api-key - and the recovery phrase cannot both come from stdin: give the key with --api-key KEY")
	}
	so, err := o.serverOptions()
	if err != nil {
		return err
	}
	var phrase string
	if o.IO.IsStdinTTY() {
		if phrase, err = o.IO.PromptSecret("Recovery phrase (24 words): "); err != nil {
			return err
		}
	} else {
		b, err := readAllLimited(o.IO.In, 4096, "recovery phrase from stdin")
		if err != nil {
			return err
		}
		phrase = string(b)
	}
	lv, err := o.local(ctx)
	if err != nil {
		return err
	}
	if err := sync.Join(ctx, lv, so, phrase); err != nil {
		return err
	}
	res, err := sync.Run(ctx, lv, sync.Options{Now: o.Now})
	if err != nil {
		return fmt.Errorf("joined, but the first sync failed (run `agentkeys sync` to retry): %w", err)
	}
	fmt.Fprintf(o.IO.ErrOut, "joined the synced vault: %d change(s) applied here, %d pushed\n", res.Applied, res.Pushed)
	for _, c := range res.Conflicts {
		fmt.Fprintf(o.IO.Out, "conflict: %s\n", c)
	}
	for _, r := range res.Refused {
		fmt.Fprintf(o.IO.ErrOut, "warning: %s\n", r)
	}
	return nil
}

// SyncStatus is what `sync status --json` prints.
type SyncStatus struct {
	Enabled   bool                     `json:"enabled"`
	Server    string                   `json:"server,omitempty"`
	VaultID   string                   `json:"vaultId,omitempty"`
	DeviceID  string                   `json:"deviceId,omitempty"`
	LastSync  *time.Time               `json:"lastSync,omitempty"`
	Pending   int                      `json:"pending"`
	Conflicts []agentkeys.SyncConflict `json:"conflicts"`
}

func newCmdSyncStatus(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show this device's sync: server, last sync, pending changes, conflicts",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return RunSyncStatus(cmd.Context(), opts) },
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// RunSyncStatus prints the local sync state (no network).
func RunSyncStatus(ctx context.Context, o *SyncOptions) error {
	lv, err := o.local(ctx)
	if err != nil {
		return err
	}
	st := SyncStatus{Conflicts: []agentkeys.SyncConflict{}}
	set, err := lv.SyncSettings(ctx)
	switch {
	case agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND:
	case err != nil:
		return err
	default:
		st.Enabled, st.Server, st.VaultID, st.DeviceID = true, set.Server, set.VaultID, set.DeviceID
		if !set.LastSync.IsZero() {
			st.LastSync = &set.LastSync
		}
		if st.Pending, err = lv.SyncPendingCount(ctx); err != nil {
			return err
		}
		if st.Conflicts, err = lv.SyncConflicts(ctx); err != nil {
			return err
		}
	}
	if o.JSON {
		return writeJSON(o.IO.Out, st)
	}
	w := o.IO.Out
	if !st.Enabled {
		fmt.Fprintln(w, "sync: off (run `agentkeys sync enable` or `agentkeys sync join`)")
		return nil
	}
	last := "never"
	if st.LastSync != nil {
		last = formatTime(o.IO, o.Now(), *st.LastSync)
	}
	fmt.Fprintf(w, "server:       %s\nthis device:  %s\nlast sync:    %s\npending:      %d change(s)\nconflicts:    %d\n",
		st.Server, st.DeviceID, last, st.Pending, len(st.Conflicts))
	for _, c := range st.Conflicts {
		fmt.Fprintf(w, "  %s  %s\n", formatTime(o.IO, o.Now(), c.Time), c.Message)
	}
	return nil
}

func newCmdSyncDevices(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "devices",
		Short: "List the devices of the synced vault",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lv, err := opts.local(cmd.Context())
			if err != nil {
				return err
			}
			ds, err := sync.Devices(cmd.Context(), lv, sync.Options{})
			if err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(opts.IO.Out, map[string]any{"devices": ds})
			}
			t := newTable(opts.IO, "ID", "NAME", "ADDED", "LAST SEEN", "STATE")
			for _, d := range ds {
				seen, state := "-", "active"
				if d.LastSeenAt != nil {
					seen = formatTime(opts.IO, opts.Now(), *d.LastSeenAt)
				}
				if d.RevokedAt != nil {
					state = "revoked"
				}
				if d.Current {
					state += " (this device)"
				}
				t.add(d.ID, d.Name, formatTime(opts.IO, opts.Now(), d.CreatedAt), seen, state)
			}
			return t.render()
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

func newCmdSyncRevoke(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	return &cobra.Command{
		Use:   "revoke DEVICE",
		Short: "Revoke another device: the server refuses its sync at once",
		Long: `Revoke a device of the synced vault (an id from ` + "`agentkeys sync devices`" + `): the
server refuses its next sync call. It keeps the copy it has; to make the synced
data unreadable to it as well, run ` + "`agentkeys sync rotate-key`" + ` afterwards.`,
		Args: exactArgs(1, "DEVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			lv, err := opts.local(cmd.Context())
			if err != nil {
				return err
			}
			if err := sync.Revoke(cmd.Context(), lv, sync.Options{}, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(opts.IO.ErrOut, "device %s revoked\n", args[0])
			return nil
		},
	}
}

func newCmdSyncDisable(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	return &cobra.Command{
		Use:   "disable",
		Short: "Stop syncing this device (the local vault stays as it is)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lv, err := opts.local(ctx)
			if err != nil {
				return err
			}
			if _, err := lv.SyncSettings(ctx); err != nil {
				return err
			}
			// Leave the server's device list too, when it can be reached.
			if err := sync.Disable(ctx, lv, sync.Options{}); err != nil {
				fmt.Fprintf(opts.IO.ErrOut, "warning: the server was not told (%s); sync is turned off here anyway\n", agentkeys.ErrorMessage(err))
			}
			if err := lv.DisableSync(ctx); err != nil {
				return err
			}
			fmt.Fprintln(opts.IO.ErrOut, "sync disabled on this device; the local vault is unchanged")
			return nil
		},
	}
}

func newCmdSyncRotateKey(f *Factory) *cobra.Command {
	opts := &SyncOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "rotate-key",
		Short: "Re-seal the synced vault under a new key and print the new recovery phrase",
		Long: `Sync, then move the synced vault to a new vault key: every record is sealed
again under it in a new synced vault on the same server, the old one (records
and devices) is deleted, and the new recovery phrase is printed once. Every
other device is cut off: run ` + "`agentkeys sync disable`" + ` and then ` + "`agentkeys sync join`" + `
with the new phrase on each. Use it after revoking a device or when the old
phrase may have leaked.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lv, err := opts.local(ctx)
			if err != nil {
				return err
			}
			phrase, res, err := sync.RotateKey(ctx, lv, sync.Options{Label: opts.Name, Now: opts.Now})
			if phrase != "" {
				fmt.Fprintln(opts.IO.ErrOut, "New recovery phrase (shown once; the old one no longer works — other devices join again with this one):")
				fmt.Fprintln(opts.IO.Out, phrase)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(opts.IO.ErrOut, "vault key rotated: %d record(s) sealed under the new key\n", res.Pushed)
			return nil
		},
	}
	c.Flags().StringVar(&opts.Name, "name", "", "this device's name in the new synced vault (default: the host name)")
	return c
}

// tuiSyncInfo is the sync state the TUI's status screen shows.
func tuiSyncInfo(ctx context.Context, lv syncVault) tui.SyncInfo {
	set, err := lv.SyncSettings(ctx)
	if agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND {
		return tui.SyncInfo{}
	}
	if err != nil {
		return tui.SyncInfo{Err: agentkeys.ErrorMessage(err)}
	}
	si := tui.SyncInfo{Enabled: true, Server: set.Server, LastSync: set.LastSync}
	if si.Pending, err = lv.SyncPendingCount(ctx); err != nil {
		return tui.SyncInfo{Err: agentkeys.ErrorMessage(err)}
	}
	cs, err := lv.SyncConflicts(ctx)
	if err != nil {
		return tui.SyncInfo{Err: agentkeys.ErrorMessage(err)}
	}
	for _, c := range cs {
		si.Conflicts = append(si.Conflicts, c.Message)
	}
	return si
}

// startBackgroundSync runs backgroundSync in a goroutine; stop ends it
// and waits for it (before the vault is closed).
func startBackgroundSync(ctx context.Context, v agentkeys.Vault, interval time.Duration, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		backgroundSync(ctx, v, interval, log)
	}()
	return func() { cancel(); <-done }
}

// backgroundSync syncs v every interval, and within about a second of a
// local change, until ctx ends. It does nothing when sync is off. Failures
// are logged (offline is normal) and retried on the next tick.
func backgroundSync(ctx context.Context, v agentkeys.Vault, interval time.Duration, log *slog.Logger) {
	lv, ok := asSyncVault(v)
	if !ok || interval <= 0 {
		return
	}
	if _, err := lv.SyncSettings(ctx); err != nil {
		return
	}
	// A local change shows as a new change mark; after a failure (offline)
	// the next tick retries, not the next poll.
	failed, mark := false, ""
	run := func() {
		// The mark before the run: a change made during it syncs next.
		mark, _ = lv.SyncChangeMark(ctx)
		res, err := sync.Run(ctx, lv, sync.Options{})
		failed = err != nil
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Warn("sync failed", "error", agentkeys.ErrorMessage(err))
		case res.Applied+res.Pushed > 0 || len(res.Conflicts) > 0:
			log.Info("synced", "applied", res.Applied, "pushed", res.Pushed, "conflicts", len(res.Conflicts), "refused", len(res.Refused))
		}
	}
	run()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	poll := time.NewTicker(min(time.Second, interval))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			run()
		case <-poll.C:
			if m, err := lv.SyncChangeMark(ctx); err == nil && m != mark && !failed {
				run()
				tick.Reset(interval)
			}
		}
	}
}
