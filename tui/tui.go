// Package tui is the terminal app of agentkeys: full-screen screens for
// credentials, agents, the live audit trail and the vault's status, over an
// agentkeys.Vault (local or remote — the app does not know which).
//
// The root model holds the active screen; each screen is a component with
// Init/Update/View/SetSize and its own help keys. Vault calls happen only
// inside tea.Cmds and come back as named messages; View never does I/O.
// No credential value is ever rendered; the one secret the app shows is a
// new proxy token, once, right after an assignment.
package tui

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// Screen names one of the app's screens.
type Screen int

// The screens, in tab order (and number-key order: 1 is Credentials).
const (
	ScreenCredentials Screen = iota
	ScreenAgents
	ScreenAudit
	ScreenStatus
)

var screenTitles = []string{"Credentials", "Agents", "Audit", "Status"}

// ProxyInfo says whether a local proxy (`agentkeys up`) is running.
type ProxyInfo struct {
	Running bool
	URL     string // where it listens, e.g. http://127.0.0.1:8787
	Detail  string // anything else worth showing (how it was found, why not)
}

// SyncInfo is this device's sync state (`agentkeys sync status`) for the
// status screen.
type SyncInfo struct {
	Enabled   bool
	Server    string
	LastSync  time.Time // zero: never
	Pending   int
	Conflicts []string // oldest first
	Err       string   // why the state could not be read
}

// Options configure the app. The zero value works.
type Options struct {
	// Context bounds every vault call; nil means context.Background.
	Context context.Context
	// Now is the clock used for "5m ago"; nil means time.Now.
	Now func() time.Time
	// Location is the time zone times are shown in; nil means time.Local.
	Location *time.Location
	// PollInterval is how often the audit screen asks for new events while
	// it is shown; 0 means one second.
	PollInterval time.Duration
	// ProxyStatus reports whether a local proxy is running; it runs inside a
	// tea.Cmd when the status screen loads. nil shows "unknown".
	ProxyStatus func(ctx context.Context) ProxyInfo
	// SyncStatus reports the vault's sync state; it runs inside a tea.Cmd
	// when the status screen loads. nil leaves the section out.
	SyncStatus func(ctx context.Context) SyncInfo
	// Clipboard receives the OSC 52 escape that copies a new proxy token to
	// the terminal's clipboard (normally the terminal's stderr). nil turns
	// copying off; the token is still shown selectable.
	Clipboard io.Writer
	// Start is the screen shown first.
	Start Screen
	// Role is the caller's role in a team server's workspace, when the
	// caller knows it: screens hide the actions it may not do (the status
	// screen's load updates it). "" shows everything.
	Role agentkeys.Role
}

// Model is the root model: the header with the screen tabs, the active
// screen and the help line.
type Model struct {
	be      *backend
	st      *styles
	help    help.Model
	screens []component
	active  Screen
	width   int
	height  int
	quit    bool
}

// component is one screen of the app (soft-serve's pattern).
type component interface {
	Init() tea.Cmd
	Update(msg tea.Msg) tea.Cmd
	View() string
	SetSize(width, height int)
	// ShortHelp and FullHelp list the keys that work right now.
	ShortHelp() []key.Binding
	FullHelp() [][]key.Binding
	// Capturing reports that the screen owns the keyboard (a text field,
	// a form, a confirmation or a modal box): the root then handles only
	// ctrl+c and passes every other key down.
	Capturing() bool
	// Shown tells the screen it became (or stopped being) the active one.
	Shown(active bool) tea.Cmd
}

// New returns the app over v. It does no I/O: the first loads happen in the
// commands returned by Init.
func New(v agentkeys.Vault, opts Options) tea.Model {
	return newModel(v, opts)
}

func newModel(v agentkeys.Vault, opts Options) *Model {
	applyColorProfile()
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	st := newStyles()
	be := &backend{ctx: opts.Context, vault: v, opts: &opts}
	if opts.Role != "" {
		role := opts.Role
		be.role.Store(&role)
	}
	h := help.New()
	h.ShortSeparator = " · "
	h.Styles.ShortKey = st.Help
	h.Styles.ShortDesc = st.Help
	h.Styles.ShortSeparator = st.Help
	h.Styles.FullKey = st.Help
	h.Styles.FullDesc = st.Help
	h.Styles.FullSeparator = st.Help
	h.Styles.Ellipsis = st.Help
	m := &Model{be: be, st: &st, help: h, active: opts.Start}
	m.screens = []component{
		newCredentialsScreen(be, &st, opts.Now),
		newAgentsScreen(be, &st, opts.Now),
		newAuditScreen(be, &st, opts.Now),
		newStatusScreen(be, &st),
	}
	if m.active < 0 || int(m.active) >= len(m.screens) {
		m.active = ScreenCredentials
	}
	m.SetSize(80, 24)
	return m
}

// Init loads the credentials and agents every screen shares, and starts the
// first screen.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.be.loadCredentials(), m.be.loadAgents()}
	for _, s := range m.screens {
		cmds = append(cmds, s.Init())
	}
	cmds = append(cmds, m.screens[m.active].Shown(true))
	return tea.Batch(cmds...)
}

// SetSize lays the app out for a terminal of width × height cells.
func (m *Model) SetSize(width, height int) {
	m.width, m.height = width, height
	m.help.Width = width
	for _, s := range m.screens {
		s.SetSize(width, m.bodyHeight())
	}
}

// bodyHeight is what is left for a screen under the tabs (2 lines) and
// above the help (1 line, or the full help).
func (m *Model) bodyHeight() int {
	h := m.height - 3
	if m.help.ShowAll {
		h = m.height - 2 - lipgloss.Height(m.helpView())
	}
	return max(h, 3)
}

// Update routes keys to the active screen (after the global keys) and data
// messages to every screen.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.SetSize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyMsg:
		return m, m.handleKey(msg)
	}
	var cmds []tea.Cmd
	if c, ok := msg.(changed); ok && c.changesData() {
		cmds = append(cmds, m.be.loadCredentials(), m.be.loadAgents())
	}
	for _, s := range m.screens {
		cmds = append(cmds, s.Update(msg))
	}
	return m, tea.Batch(cmds...)
}

func (m *Model) handleKey(msg tea.KeyMsg) tea.Cmd {
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.screens[m.active].Capturing() {
		return m.handleRunes(msg)
	}
	if key.Matches(msg, keys.ForceQuit) {
		m.quit = true
		return tea.Quit
	}
	active := m.screens[m.active]
	if active.Capturing() {
		return active.Update(msg)
	}
	switch {
	case key.Matches(msg, keys.Quit):
		m.quit = true
		return tea.Quit
	case key.Matches(msg, keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.SetSize(m.width, m.height)
		return nil
	case m.help.ShowAll && msg.Type == tea.KeyEsc:
		// esc closes the full help before it means "back" to the screen.
		m.help.ShowAll = false
		m.SetSize(m.width, m.height)
		return nil
	case key.Matches(msg, keys.NextTab):
		return m.switchTo((m.active + 1) % Screen(len(m.screens)))
	case key.Matches(msg, keys.PrevTab):
		return m.switchTo((m.active + Screen(len(m.screens)) - 1) % Screen(len(m.screens)))
	case key.Matches(msg, keys.Screen1):
		return m.switchTo(ScreenCredentials)
	case key.Matches(msg, keys.Screen2):
		return m.switchTo(ScreenAgents)
	case key.Matches(msg, keys.Screen3):
		return m.switchTo(ScreenAudit)
	case key.Matches(msg, keys.Screen4):
		return m.switchTo(ScreenStatus)
	case key.Matches(msg, keys.Refresh):
		return tea.Batch(m.be.loadCredentials(), m.be.loadAgents(), active.Shown(true))
	}
	return active.Update(msg)
}

// handleRunes handles characters that one terminal read delivered together
// (typed fast, over a slow link, or on a busy machine): Bubble Tea reports
// them as one message, which would match no key. Each is handled as if typed
// alone until a text field takes the keyboard; the rest is typed into it.
func (m *Model) handleRunes(msg tea.KeyMsg) tea.Cmd {
	var cmds []tea.Cmd
	for i, r := range msg.Runes {
		if m.quit {
			break
		}
		if m.screens[m.active].Capturing() {
			rest := msg
			rest.Runes = msg.Runes[i:]
			cmds = append(cmds, m.screens[m.active].Update(rest))
			break
		}
		one := msg
		one.Runes = []rune{r}
		cmds = append(cmds, m.handleKey(one))
	}
	return tea.Batch(cmds...)
}

func (m *Model) switchTo(s Screen) tea.Cmd {
	if s == m.active {
		return nil
	}
	old := m.screens[m.active].Shown(false)
	m.active = s
	return tea.Batch(old, m.screens[s].Shown(true))
}

// Active returns the screen shown.
func (m *Model) Active() Screen { return m.active }

// View renders the tabs, the active screen and the help line.
func (m *Model) View() string {
	if m.quit {
		return ""
	}
	body := m.screens[m.active].View()
	body = lipgloss.NewStyle().MaxHeight(m.bodyHeight()).Height(m.bodyHeight()).Render(body)
	return m.tabsView() + "\n\n" + body + "\n" + m.helpView()
}

func (m *Model) tabsView() string {
	parts := []string{m.st.Brand.Render("agentkeys")}
	for i, t := range screenTitles {
		label := itoa(i+1) + " " + t
		if Screen(i) == m.active {
			parts = append(parts, m.st.ActiveTab.Render("["+label+"]"))
		} else {
			parts = append(parts, m.st.Tab.Render(" "+label+" "))
		}
	}
	return truncate(strings.Join(parts, " "), m.width)
}

func (m *Model) helpView() string {
	hk := helpKeys{m.screens[m.active]}
	if m.help.ShowAll {
		return m.help.FullHelpView(hk.FullHelp())
	}
	return m.help.ShortHelpView(fitHelp(hk.ShortHelp(), m.width))
}

// fitHelp keeps the bindings that fit on one line of width cells. The last
// two (on most screens "? all keys" and "q quit") are kept whatever else is
// dropped, so the way to the full help and out is always shown.
func fitHelp(bs []key.Binding, width int) []key.Binding {
	itemWidth := func(b key.Binding) int {
		return ansi.StringWidth(b.Help().Key) + 1 + ansi.StringWidth(b.Help().Desc) + 3 // 3: " · "
	}
	total := 0
	for _, b := range bs {
		total += itemWidth(b)
	}
	if total-3 <= width || len(bs) <= 2 {
		return bs
	}
	tail := bs[len(bs)-2:]
	room := width + 3
	for _, b := range tail {
		room -= itemWidth(b)
	}
	var out []key.Binding
	for _, b := range bs[:len(bs)-2] {
		if w := itemWidth(b); w <= room {
			out = append(out, b)
			room -= w
		} else {
			break
		}
	}
	return append(out, tail...)
}

// helpKeys joins a screen's keys with the global ones for bubbles/help.
type helpKeys struct{ c component }

func (h helpKeys) ShortHelp() []key.Binding {
	ks := h.c.ShortHelp()
	if h.c.Capturing() {
		return ks
	}
	return append(ks, globalKeys()...)
}

func (h helpKeys) FullHelp() [][]key.Binding {
	groups := h.c.FullHelp()
	if h.c.Capturing() {
		return append(groups, []key.Binding{keys.ForceQuit})
	}
	return append(groups, globalFullKeys())
}
