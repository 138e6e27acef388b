package tui_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

func TestApp_SwitchScreensAndQuit(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	steps := []struct {
		keys string
		want string
	}{
		{"", "[1 Credentials]"},
		{"<tab>", "[2 Agents]"},
		{"<tab>", "[3 Audit]"},
		{"<tab>", "[4 Status]"},
		{"<tab>", "[1 Credentials]"},
		{"<shift+tab>", "[4 Status]"},
		{"2", "[2 Agents]"},
		{"3", "[3 Audit]"},
		{"4", "[4 Status]"},
		{"1", "[1 Credentials]"},
	}
	for _, s := range steps {
		d.keys(s.keys)
		d.mustSee(s.want)
	}
	// ? shows every key of the screen and the global ones; ? again hides them.
	d.keys("?")
	d.mustSee("page down", "previous screen", "ctrl+c", "reload")
	d.keys("?")
	d.mustNotSee("previous screen")
	// q quits from a list…
	d.keys("q")
	if !d.quit {
		t.Fatal("q did not quit")
	}
}

func TestApp_KeysGoToTextFields(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	// In a form, q, digits and ? are text, tab moves between fields.
	d.keys("n").keys("q1?2")
	if d.quit {
		t.Fatal("q in a text field quit")
	}
	d.mustSee("Add a credential", "[q1?2")
	// ctrl+c always quits.
	d.keys("<ctrl+c>")
	if !d.quit {
		t.Fatal("ctrl+c did not quit from the form")
	}
}

func TestApp_HelpShowsOnlyKeysThatWork(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	d.mustSee("n new")
	d.mustNotSee("d delete") // nothing to delete yet
	d.keys("2")
	d.mustNotSee("a assign", "r revoke") // no agent yet
	mustCreateAgent(t, v, "bot")
	d.keys("<ctrl+r>")
	d.mustSee("a assign", "d delete")
	d.mustNotSee("r revoke") // nothing assigned
}

// TestApp_FitsEveryWidth renders every screen and mode at 80×24 and after a
// resize to 120×40 and back: no line is wider than the terminal, the frame
// is exactly as tall, and nothing is coloured under NO_COLOR.
func TestApp_FitsEveryWidth(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{Clipboard: &strings.Builder{}}), 80, 24)
	sequences := []string{
		"", "/resend", "<esc>", "n", "Long name for a credential that goes on and on<tab><right><right><right><tab><tab>x-h<ctrl+n>", "<esc>",
		"d", "<esc>", "?", "?", "2", "a", "<esc>", "G", "r", "<esc>", "d", "<esc>", "n", "<esc>", "ga", "<enter>", "<enter>",
		"3", "f", "<esc>", "<enter>", "<esc>", "4",
	}
	check := func(w, h int, step string) {
		t.Helper()
		view := d.view()
		if strings.Contains(view, "\x1b[") {
			t.Fatalf("escape sequences under NO_COLOR after %q:\n%q", step, view)
		}
		lines := strings.Split(view, "\n")
		if len(lines) > h {
			t.Fatalf("after %q: %d lines in a %d-line terminal:\n%s", step, len(lines), h, view)
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > w {
				t.Fatalf("after %q: line of %d cells in a %d-cell terminal: %q", step, ansi.StringWidth(l), w, l)
			}
		}
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}, {100, 30}} {
		d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		d.keys("1")
		for _, k := range sequences {
			d.keys(k)
			check(size[0], size[1], k)
		}
	}
}

func TestApp_ResizeRelaysOut(t *testing.T) {
	v := mustOpenVault(t)
	mustCreateCredential(t, v, "A credential with a rather long name indeed", agentkeys.APIKey, []string{"api.example.com"}, agentkeys.Secret{Value: "x"})
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.mustNotSee("A credential with a rather long name indeed")
	d.mustSee("A credential …")
	d.send(tea.WindowSizeMsg{Width: 180, Height: 40})
	d.mustSee("A credential with a rather long name indeed")
	if n := len(strings.Split(d.view(), "\n")); n != 40 {
		t.Fatalf("%d lines after resizing to 40", n)
	}
}

// failingVault fails the calls named in fail with err.
type failingVault struct {
	agentkeys.Vault
	fail map[string]error
}

func (f failingVault) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	if err := f.fail["ListCredentials"]; err != nil {
		return nil, err
	}
	return f.Vault.ListCredentials(ctx)
}

func (f failingVault) ListAudit(ctx context.Context, flt agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	if err := f.fail["ListAudit"]; err != nil {
		return nil, err
	}
	return f.Vault.ListAudit(ctx, flt)
}

func (f failingVault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	if err := f.fail["Status"]; err != nil {
		return nil, err
	}
	return f.Vault.Status(ctx)
}

func (f failingVault) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	if err := f.fail["CreateAgent"]; err != nil {
		return nil, err
	}
	return f.Vault.CreateAgent(ctx, name)
}

func (f failingVault) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	if err := f.fail["ListAgents"]; err != nil {
		return nil, err
	}
	return f.Vault.ListAgents(ctx)
}

// TestApp_LongErrorsKeepWhatToDo: at 80 columns an error longer than a line
// wraps, so its end (what to do next) stays on screen, and the frame still
// fits.
func TestApp_LongErrorsKeepWhatToDo(t *testing.T) {
	v := mustOpenVault(t)
	long := agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the server at https://agentkeys.example.com did not answer: check your network, or run `agentkeys logout` to use the local vault")
	fv := failingVault{Vault: v, fail: map[string]error{"ListCredentials": long, "ListAgents": long, "ListAudit": long}}
	d := start(t, newApp(fv, tui.Options{}), 80, 24)
	for _, screen := range []string{"1", "2", "3"} {
		d.keys(screen)
		view := d.view()
		if !strings.Contains(strings.Join(strings.Fields(view), " "), "run `agentkeys logout` to use the local vault") {
			t.Fatalf("screen %s cut the error:\n%s", screen, view)
		}
		if n := len(strings.Split(view, "\n")); n != 24 {
			t.Fatalf("screen %s: %d lines in a 24-line terminal", screen, n)
		}
	}
}

func TestApp_ErrorsInPlace(t *testing.T) {
	v := mustOpenVault(t)
	locked := agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault is locked: set AGENTKEYS_MASTER_KEY or run `agentkeys init`")
	fv := failingVault{Vault: v, fail: map[string]error{
		"ListCredentials": locked,
		"ListAudit":       context.DeadlineExceeded,
		"Status":          errors.New("disk I/O error"),
		"CreateAgent":     agentkeys.Errorf(agentkeys.EFORBIDDEN, "your role may not create agents"),
	}}
	d := start(t, newApp(fv, tui.Options{}), 100, 30)
	d.mustSee("Could not load credentials: the vault is locked: set AGENTKEYS_MASTER_KEY")
	d.keys("3")
	d.mustSee("Could not read the audit log: the vault did not answer in time")
	d.keys("4")
	d.mustSee("Could not read the workspace status: disk I/O error")
	d.keys("2nbot<enter>")
	d.mustSee("your role may not create agents", "New agent name")
}

// remoteVault reports a remote workspace with plan limits.
type remoteVault struct{ agentkeys.Vault }

func (remoteVault) Status(context.Context) (*agentkeys.WorkspaceStatus, error) {
	return &agentkeys.WorkspaceStatus{
		ID: "ws_team", Name: "Acme", Plan: "pro", Mode: agentkeys.ModeRemote, Location: "https://keys.acme.dev",
		Usage:  agentkeys.Usage{Credentials: 45, Agents: 10, RequestsThisMonth: 120000},
		Limits: agentkeys.Limits{Credentials: 50, Agents: 10, RequestsPerMonth: 1000000},
	}, nil
}

func TestStatus(t *testing.T) {
	v := mustOpenVault(t)
	tests := []struct {
		name  string
		vault agentkeys.Vault
		opts  tui.Options
		see   []string
		miss  []string
	}{
		{"local, proxy unknown", v, tui.Options{},
			[]string{"Local vault", "vault.db", "AGENTKEYS_MASTER_KEY environment variable", "Proxy", "unknown", "(no limit)"}, []string{"Remote"}},
		{"local, proxy running", v, tui.Options{ProxyStatus: func(context.Context) tui.ProxyInfo {
			return tui.ProxyInfo{Running: true, URL: "http://127.0.0.1:9999"}
		}}, []string{"running at http://127.0.0.1:9999", "http://127.0.0.1:9999/v1/proxy"}, nil},
		{"local, proxy down", v, tui.Options{ProxyStatus: func(context.Context) tui.ProxyInfo {
			return tui.ProxyInfo{Detail: "nothing answers at http://127.0.0.1:8787"}
		}}, []string{"not running", "agentkeys up", "nothing answers at"}, nil},
		{"sync off", v, tui.Options{SyncStatus: func(context.Context) tui.SyncInfo { return tui.SyncInfo{} }},
			[]string{"Sync", "off — `agentkeys sync enable`"}, []string{"Conflicts"}},
		{"sync with conflicts", v, tui.Options{SyncStatus: func(context.Context) tui.SyncInfo {
			return tui.SyncInfo{Enabled: true, Server: "https://keys.acme.dev", LastSync: clock.Add(-3 * time.Minute), Pending: 2,
				Conflicts: []string{`credential "github" was changed here and on another device`}}
		}}, []string{"https://keys.acme.dev", "3m ago", "2 change(s)", "Conflicts", `credential "github" was changed here`}, nil},
		{"remote with limits", remoteVault{v}, tui.Options{},
			[]string{"Remote workspace", "https://keys.acme.dev", "Acme", "pro", "██████████████░░ 45 of 50", "10 of 10 — limit reached", "120000 of 1000000"}, []string{"Local vault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := start(t, newApp(tt.vault, tt.opts), 100, 30)
			d.keys("4")
			d.mustSee(tt.see...)
			d.mustNotSee(tt.miss...)
		})
	}
}

// TestApp_NoColor: with NO_COLOR set the app renders no escape sequences
// even on a terminal that could show colour; without it, it does.
func TestApp_NoColor(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	defer lipgloss.SetColorProfile(termenv.Ascii)

	lipgloss.SetColorProfile(termenv.TrueColor)
	t.Setenv("NO_COLOR", "")
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	if !strings.Contains(d.view(), "\x1b[") {
		t.Fatal("no colour on a true-colour terminal without NO_COLOR")
	}

	lipgloss.SetColorProfile(termenv.TrueColor)
	t.Setenv("NO_COLOR", "1")
	d = start(t, newApp(v, tui.Options{}), 100, 30)
	for _, k := range []string{"", "2", "3", "4", "1", "n"} {
		d.keys(k)
		if view := d.view(); strings.Contains(view, "\x1b[") {
			t.Fatalf("escape sequences under NO_COLOR on screen %q:\n%q", k, view)
		}
	}
}

// TestApp_KeysReadTogether: a terminal read can deliver several typed
// characters as one message (a fast typist, a paste without bracketed
// paste, a slow machine, SSH). They act as if typed one by one: a key that
// opens a text field sends the rest into it, and q quits at once.
func TestApp_KeysReadTogether(t *testing.T) {
	runes := func(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 80, 24)

	d.send(runes("2nsupport-bot"))
	d.mustSee("[2 Agents]", "New agent name", "[support-bot")
	d.keys("<enter>")
	d.mustSee("Created agent support-bot")

	d.send(runes("1n"))
	d.mustSee("[1 Credentials]", "Add a credential")
	d.keys("<esc>")

	d.send(runes("3q2"))
	if !d.quit {
		t.Fatal("q read together with other keys did not quit")
	}
	if got := d.m.(*tui.Model).Active(); got != tui.ScreenAudit {
		t.Fatalf("keys after q were handled: screen %d", got)
	}
}
