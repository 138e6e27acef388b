package cmd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agentkeys/agentkeys/tui"
)

// newCmdTUI returns `agentkeys tui`.
func newCmdTUI(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "tui",
		Short: "Open the terminal UI (also what plain `agentkeys` does in a terminal)",
		Long: `Open the full-screen terminal UI over your vault: credentials (add, filter,
delete), agents (create, assign a credential and see its proxy token once,
revoke, delete), the live audit trail, and the vault's status.

Keys: tab or 1-4 switch screens, ? shows every key, esc goes back, q quits.
NO_COLOR=1 turns colour off.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTUI(cmd.Context(), f)
		},
	}
}

// runTUI runs the terminal UI over f.Vault until the user quits or ctx is
// cancelled. It needs a terminal on stdin and stdout; otherwise it returns
// EINVALID saying so (scripts use the other commands' --json).
func runTUI(ctx context.Context, f *Factory) error {
	ios := f.IOStreams
	if !ios.IsStdinTTY() || !ios.IsStdoutTTY() {
		return errInvalid("the terminal UI needs a terminal on stdin and stdout: in scripts use the other commands (with --json)")
	}
	v, err := f.Vault(ctx)
	if err != nil {
		return err
	}
	// A synced vault syncs in the background, as under `up`; its log lines
	// would land on the screen, so they are dropped.
	defer startBackgroundSync(ctx, v, 10*time.Second, slog.New(slog.DiscardHandler))()
	opts := tui.Options{
		Context:     ctx,
		ProxyStatus: func(ctx context.Context) tui.ProxyInfo { return probeProxy(ctx, f.Getenv) },
	}
	// On a team server the screens hide what the member's role may not do.
	if rv, ok := v.(*remoteVault); ok {
		if st, err := rv.Status(ctx); err == nil {
			opts.Role = st.Role
		}
	}
	if lv, ok := asSyncVault(v); ok {
		opts.SyncStatus = func(ctx context.Context) tui.SyncInfo { return tuiSyncInfo(ctx, lv) }
	}
	// OSC 52 goes to the terminal on stderr, beside the renderer's stdout.
	if fd, ok := ios.ErrOut.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(fd.Fd())) {
		opts.Clipboard = ios.ErrOut
	}
	// Ask the terminal for its background colour now, before Bubble Tea reads
	// stdin: the styles' adaptive colours need it, and the answer must not
	// arrive as keystrokes.
	lipgloss.HasDarkBackground()
	p := tea.NewProgram(tui.New(v, opts),
		// SIGINT and SIGTERM reach us through ctx (main's signal context)
		// only: with Bubble Tea's own handler too, the two raced and the
		// program could hang on exit (its handler blocks sending to an event
		// loop that the cancelled context already ended).
		tea.WithoutSignalHandler(),
		tea.WithContext(ctx),
		tea.WithAltScreen(),
		tea.WithInput(ios.In),
		tea.WithOutput(ios.Out),
	)
	if _, err := p.Run(); err != nil {
		if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
			// SIGINT/SIGTERM to the process: the terminal is restored; exit
			// like any interrupted command.
			return ctx.Err()
		}
		return err
	}
	return nil
}

// probeProxy looks for a running `agentkeys up`: at AGENTKEYS_PROXY_URL when
// set, else at the default address. It asks /healthz with a short timeout and
// never sends a token.
func probeProxy(ctx context.Context, getenv func(string) string) tui.ProxyInfo {
	base := strings.TrimRight(strings.TrimSpace(getenv("AGENTKEYS_PROXY_URL")), "/")
	how := "AGENTKEYS_PROXY_URL"
	if base == "" {
		base, how = "http://"+DefaultListen, "the default address"
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return tui.ProxyInfo{Detail: "AGENTKEYS_PROXY_URL is not a URL: " + base}
	}
	client := &http.Client{
		// Never through an inherited HTTP proxy, never following redirects.
		Transport:     &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 400 * time.Millisecond}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return tui.ProxyInfo{Detail: "nothing answers at " + base + " (" + how + ")"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
		return tui.ProxyInfo{Running: true, URL: base}
	}
	return tui.ProxyInfo{Detail: "something else answers at " + base}
}
