package tui

import (
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// statusScreen shows where the vault lives and how it is unlocked (or the
// remote workspace with its plan, usage and limits), and whether a local
// proxy is running. It reloads each time it is shown.
type statusScreen struct {
	be     *backend
	st     *styles
	status *agentkeys.WorkspaceStatus
	proxy  ProxyInfo
	sync   *SyncInfo
	loaded bool
	err    string
	width  int
	height int
}

func newStatusScreen(be *backend, st *styles) *statusScreen {
	return &statusScreen{be: be, st: st}
}

func (s *statusScreen) Init() tea.Cmd { return nil }

func (s *statusScreen) Shown(active bool) tea.Cmd {
	if !active {
		return nil
	}
	return s.be.loadStatus()
}

func (s *statusScreen) SetSize(w, h int) { s.width, s.height = w, h }
func (s *statusScreen) Capturing() bool  { return false }
func (s *statusScreen) ShortHelp() []key.Binding {
	return []key.Binding{keys.Refresh}
}
func (s *statusScreen) FullHelp() [][]key.Binding { return [][]key.Binding{{keys.Refresh}} }

func (s *statusScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusLoadedMsg:
		s.loaded = true
		s.proxy, s.sync = msg.proxy, msg.sync
		if msg.err != nil {
			s.err = "Could not read the workspace status: " + plainError(msg.err)
			return nil
		}
		s.status, s.err = msg.status, ""
	case tea.KeyMsg:
		if key.Matches(msg, keys.Back) {
			s.err = ""
		}
	}
	return nil
}

func (s *statusScreen) View() string {
	st := s.st
	var b strings.Builder
	b.WriteString(st.Title.Render("Status") + "\n\n")
	if !s.loaded {
		b.WriteString(st.Dim.Render("loading…"))
		return b.String()
	}
	row := func(k, v string) { b.WriteString(st.Dim.Render(pad(k, 18)) + truncate(v, max(s.width-18, 10)) + "\n") }
	if ws := s.status; ws != nil {
		if ws.Mode == agentkeys.ModeRemote {
			b.WriteString(st.Title.Render("Remote workspace") + "\n")
			row("Server", ws.Location)
			row("Workspace", strings.TrimSpace(ws.Name+"  "+st.Dim.Render(ws.ID)))
			if ws.Role != "" {
				row("Your role", string(ws.Role))
			}
			row("Plan", orDash(ws.Plan))
			if ws.BillingStatus == "past_due" {
				row("Billing", st.StatusBad.Render("the last payment failed — `agentkeys billing portal`"))
			}
		} else {
			b.WriteString(st.Title.Render("Local vault") + "\n")
			row("Vault file", ws.Location)
			row("Key source", keySourceText(ws.KeySource))
			if ws.ID != "" {
				row("Workspace", ws.ID)
			}
			if ws.Plan != "" {
				row("Plan", ws.Plan)
			}
		}
		b.WriteString("\n" + st.Title.Render("Usage") + "\n")
		row("Credentials", usage(int64(ws.Usage.Credentials), int64(ws.Limits.Credentials), st))
		row("Agents", usage(int64(ws.Usage.Agents), int64(ws.Limits.Agents), st))
		row("Requests (period)", usage(ws.Usage.RequestsThisMonth, ws.Limits.RequestsPerMonth, st))
	}
	b.WriteString("\n" + st.Title.Render("Local proxy") + "\n")
	switch {
	case s.be.opts.ProxyStatus == nil:
		row("Proxy", st.Dim.Render("unknown"))
	case s.proxy.Running:
		row("Proxy", st.StatusOK.Render("running")+" at "+s.proxy.URL)
		row("Agents call", s.proxy.URL+"/v1/proxy")
	default:
		row("Proxy", st.StatusWarn.Render("not running")+st.Dim.Render(" — start it with `agentkeys up`"))
	}
	if s.proxy.Detail != "" {
		row("", st.Dim.Render(s.proxy.Detail))
	}
	if si := s.sync; si != nil {
		b.WriteString("\n" + st.Title.Render("Sync") + "\n")
		switch {
		case si.Err != "":
			row("Sync", st.StatusBad.Render(si.Err))
		case !si.Enabled:
			row("Sync", st.Dim.Render("off — `agentkeys sync enable` or `agentkeys sync join`"))
		default:
			row("Server", si.Server)
			row("Last sync", ago(s.be.opts.Now(), &si.LastSync))
			row("Pending", strconv.Itoa(si.Pending)+" change(s)")
			if n := len(si.Conflicts); n > 0 {
				row("Conflicts", st.StatusWarn.Render(strconv.Itoa(n)))
				for _, c := range si.Conflicts[max(0, n-5):] {
					row("", c)
				}
			}
		}
	}
	if s.err != "" {
		b.WriteString("\n" + st.Error.Render(wrap("✗ "+s.err, s.width)))
	}
	return b.String()
}

func keySourceText(src string) string {
	switch src {
	case "keychain":
		return "OS keychain"
	case "passphrase":
		return "passphrase-wrapped key file"
	case "environment":
		return "AGENTKEYS_MASTER_KEY environment variable"
	case "":
		return "—"
	}
	return src
}

// usage renders "12 of 50" (or "12 (no limit)"), warning from 80 %.
func usage(n, limit int64, st *styles) string {
	v := strconv.FormatInt(n, 10)
	if limit <= 0 {
		return v + st.Dim.Render(" (no limit)")
	}
	const width = 16
	filled := int(min(n, limit) * width / limit)
	text := strings.Repeat("█", filled) + strings.Repeat("░", width-filled) + " " + v + " of " + strconv.FormatInt(limit, 10)
	switch {
	case n >= limit:
		return st.StatusBad.Render(text + " — limit reached")
	case n*5 >= limit*4:
		return st.StatusWarn.Render(text)
	}
	return text
}
