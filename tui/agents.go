package tui

import (
	"os"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/aymanbagabas/go-osc52/v2"
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

type agentMode int

const (
	agentList agentMode = iota
	agentCreating
	agentPickCredential
	agentPickRevoke
	agentConfirmRevoke
	agentConfirmDelete
	agentToken
)

// agentsScreen lists agents with their credentials; creates and deletes
// agents; assigns credentials (showing the new proxy token once) and revokes
// assignments.
type agentsScreen struct {
	be     *backend
	st     *styles
	now    func() time.Time
	agents []*agentkeys.Agent
	creds  []*agentkeys.Credential
	// credsLoaded is set once the credentials have arrived; an assign asked
	// for before that (assignWaiting) is replayed when they do.
	credsLoaded   bool
	assignWaiting bool
	// typeahead holds the keys pressed while an assign waits for the
	// credentials: they go to the picker once it opens (Esc drops them and
	// the wait).
	typeahead []tea.KeyMsg
	loaded    bool
	tbl       table
	mode      agentMode
	name      textinput.Model
	pick      *picker
	target    *agentkeys.Agent
	// revokeCred is the assignment picked for revocation.
	revokeCred *agentkeys.AgentCredential
	// token is the new grant while its box is open; dropped when it closes.
	token      *grantCreatedMsg
	copied     string
	selectName string
	busy       bool
	err        string
	notice     string
	width      int
	height     int
}

func newAgentsScreen(be *backend, st *styles, now func() time.Time) *agentsScreen {
	n := textinput.New()
	n.Prompt = ""
	n.Placeholder = "e.g. support-bot"
	n.CharLimit = 100
	n.Cursor.SetMode(cursor.CursorStatic)
	return &agentsScreen{
		be: be, st: st, now: now, name: n,
		tbl: table{cols: []column{
			{title: "AGENT", flex: 2, min: 14},
			{title: "CREDENTIALS", flex: 5, min: 20},
			{title: "CREATED", width: 10},
		}},
	}
}

func (s *agentsScreen) Init() tea.Cmd { return nil }

// Shown clears the last action's message when the screen is left: it was
// about what happened there, then.
func (s *agentsScreen) Shown(active bool) tea.Cmd {
	if !active {
		s.notice, s.err = "", ""
	}
	return nil
}

func (s *agentsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.name.Width = max(min(w-24, 60), 10)
	// title, note, header; detail block (3) and message below
	s.tbl.setSize(w, h-8)
	if s.pick != nil {
		s.pick.setSize(w, h)
	}
}

func (s *agentsScreen) Capturing() bool { return s.mode != agentList }

func (s *agentsScreen) ShortHelp() []key.Binding {
	switch s.mode {
	case agentCreating:
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "create")), keys.Back}
	case agentPickCredential, agentPickRevoke:
		return s.pick.helpKeys()
	case agentConfirmRevoke, agentConfirmDelete:
		return []key.Binding{keys.Confirm, keys.Cancel}
	case agentToken:
		if s.be.opts.Clipboard != nil {
			return []key.Binding{keys.Copy, keys.Close}
		}
		return []key.Binding{keys.Close}
	}
	ks := []key.Binding{keys.Move, keys.Add}
	if a := s.selected(); a != nil {
		ks = append(ks, keys.Assign)
		if len(a.Credentials) > 0 {
			ks = append(ks, keys.Revoke)
		}
		if s.be.may(agentkeys.PermDeleteAgents) {
			ks = append(ks, keys.Delete)
		}
	}
	return ks
}

func (s *agentsScreen) FullHelp() [][]key.Binding {
	if s.mode != agentList {
		return [][]key.Binding{s.ShortHelp()}
	}
	return [][]key.Binding{
		{keys.Up, keys.Down, keys.PageUp, keys.PageDown, keys.Top, keys.Bottom},
		{keys.Add, keys.Assign, keys.Revoke, keys.Delete, keys.Refresh},
	}
}

func (s *agentsScreen) selected() *agentkeys.Agent {
	if s.tbl.cursor < 0 || s.tbl.cursor >= len(s.agents) {
		return nil
	}
	return s.agents[s.tbl.cursor]
}

func (s *agentsScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case agentsLoadedMsg:
		if msg.err != nil {
			s.err = "Could not load agents: " + plainError(msg.err)
			return nil
		}
		keep := s.selected()
		s.agents, s.loaded = msg.agents, true
		s.rows()
		for i, a := range s.agents {
			if (keep != nil && a.ID == keep.ID && s.selectName == "") || a.Name == s.selectName {
				s.tbl.cursor = i
				s.tbl.clamp()
			}
		}
		s.selectName = ""
	case credentialsLoadedMsg:
		if msg.err == nil {
			s.creds, s.credsLoaded = msg.creds, true
			if s.assignWaiting && s.mode == agentList {
				s.assignWaiting = false
				typed := s.typeahead
				s.typeahead = nil
				cmds := []tea.Cmd{s.handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'a'}})}
				for _, k := range typed {
					if s.mode != agentPickCredential {
						break // no picker (no credentials): the keys were meant for it
					}
					cmds = append(cmds, s.handleKey(k))
				}
				return tea.Batch(cmds...)
			}
		}
	case agentCreatedMsg:
		s.busy = false
		if msg.err != nil {
			s.err = plainError(msg.err)
			return nil
		}
		s.mode, s.err = agentList, ""
		s.name.SetValue("")
		s.name.Blur()
		s.notice = "Created agent " + msg.agent.Name + ". Press a to give it a credential."
		s.selectName = msg.agent.Name
	case agentDeletedMsg:
		s.busy = false
		if agentkeys.ErrorCode(msg.err) == agentkeys.ENOTFOUND {
			s.notice, s.err = msg.name+" was already deleted (by another program); the list is reloaded.", ""
		} else if msg.err != nil {
			s.err = "Could not delete " + msg.name + ": " + plainError(msg.err)
		} else {
			s.notice, s.err = "Deleted agent "+msg.name+"; its proxy tokens no longer work.", ""
		}
	case grantCreatedMsg:
		s.busy = false
		if msg.err != nil {
			s.err = "Could not assign " + msg.credName + " to " + msg.agentName + ": " + plainError(msg.err)
			s.mode = agentList
			return nil
		}
		m := msg
		s.token, s.mode, s.copied, s.err, s.notice = &m, agentToken, "", "", ""
	case revokedMsg:
		s.busy = false
		if msg.err != nil {
			s.err = "Could not revoke " + msg.credName + " from " + msg.agentName + ": " + plainError(msg.err)
		} else {
			s.notice, s.err = "Revoked "+msg.credName+" from "+msg.agentName+"; that token no longer works.", ""
		}
	case clipboardMsg:
		if s.mode == agentToken {
			if msg.err != nil {
				s.copied = "Could not copy: " + plainError(msg.err) + ". Select the token with the mouse instead."
			} else {
				s.copied = "Sent to the terminal's clipboard (OSC 52). If your terminal ignores OSC 52, select the token with the mouse."
			}
		}
	case tea.KeyMsg:
		return s.handleKey(msg)
	}
	return nil
}

func (s *agentsScreen) rows() {
	rows := make([][]string, len(s.agents))
	for i, a := range s.agents {
		names := make([]string, len(a.Credentials))
		for j, c := range a.Credentials {
			names[j] = c.CredentialName
		}
		cs := strings.Join(names, ", ")
		if cs == "" {
			cs = "—"
		}
		rows[i] = []string{a.Name, cs, a.CreatedAt.In(s.be.opts.Location).Format("2006-01-02")}
	}
	s.tbl.setRows(rows)
}

func (s *agentsScreen) handleKey(msg tea.KeyMsg) tea.Cmd {
	if s.assignWaiting && s.mode == agentList {
		if msg.Type == tea.KeyEsc {
			s.assignWaiting, s.typeahead, s.notice = false, nil, ""
		} else {
			s.typeahead = append(s.typeahead, msg)
		}
		return nil
	}
	switch s.mode {
	case agentCreating:
		switch msg.Type {
		case tea.KeyEsc:
			if !s.busy {
				s.mode, s.err = agentList, ""
				s.name.SetValue("")
				s.name.Blur()
			}
			return nil
		case tea.KeyEnter:
			if s.busy {
				return nil
			}
			name, err := agentkeys.ValidateName("agent", s.name.Value())
			if err != nil {
				s.err = strings.ReplaceAll(plainError(err), ": give one with --name", ": type one")
				return nil
			}
			s.busy, s.err = true, ""
			return s.be.createAgent(name)
		}
		var cmd tea.Cmd
		s.name, cmd = s.name.Update(msg)
		return cmd
	case agentPickCredential:
		it, cancel, cmd := s.pick.update(msg)
		switch {
		case cancel:
			s.mode, s.pick = agentList, nil
		case it != nil:
			for _, c := range s.creds {
				if c.ID == it.id {
					s.mode, s.pick, s.busy = agentList, nil, true
					s.notice = "Assigning " + c.Name + " to " + s.target.Name + "…"
					return s.be.assign(s.target, c)
				}
			}
		}
		return cmd
	case agentPickRevoke:
		it, cancel, cmd := s.pick.update(msg)
		switch {
		case cancel:
			s.mode, s.pick = agentList, nil
		case it != nil:
			for i := range s.target.Credentials {
				if s.target.Credentials[i].CredentialID == it.id {
					s.revokeCred = &s.target.Credentials[i]
					s.mode, s.pick = agentConfirmRevoke, nil
				}
			}
		}
		return cmd
	case agentConfirmRevoke:
		switch {
		case key.Matches(msg, keys.Confirm):
			a, c := s.target, s.revokeCred
			s.mode, s.busy = agentList, true
			return s.be.revoke(a.ID, a.Name, c.CredentialID, c.CredentialName)
		case key.Matches(msg, keys.Cancel):
			s.mode = agentList
		}
		return nil
	case agentConfirmDelete:
		switch {
		case key.Matches(msg, keys.Confirm):
			a := s.target
			s.mode, s.busy = agentList, true
			return s.be.deleteAgent(a.ID, a.Name)
		case key.Matches(msg, keys.Cancel):
			s.mode = agentList
		}
		return nil
	case agentToken:
		switch {
		case key.Matches(msg, keys.Copy) && s.be.opts.Clipboard != nil:
			return copyToClipboard(s.be.opts.Clipboard, s.token.grant.ProxyToken)
		case key.Matches(msg, keys.Close):
			s.closeToken()
		}
		return nil
	}
	if s.tbl.move(msg) {
		return nil
	}
	a := s.selected()
	switch {
	case key.Matches(msg, keys.Add):
		s.mode, s.notice, s.err = agentCreating, "", ""
		return s.name.Focus()
	case key.Matches(msg, keys.Assign) && a != nil:
		s.target, s.notice, s.err = a, "", ""
		if !s.credsLoaded {
			// Pressed before the credentials arrived: replayed when they do.
			s.assignWaiting, s.notice = true, "Loading credentials…"
			return nil
		}
		if len(s.creds) == 0 {
			s.err = "No credentials to assign yet: press 1, then n to add one."
			return nil
		}
		var items []pickItem
		assigned := map[string]bool{}
		for _, c := range a.Credentials {
			assigned[c.CredentialID] = true
		}
		for _, c := range s.creds {
			detail := string(c.Type) + "  " + strings.Join(c.AllowedHosts, ", ")
			if assigned[c.ID] {
				detail = "assigned: a new token replaces the old one"
			}
			items = append(items, pickItem{id: c.ID, label: c.Name, detail: detail})
		}
		s.pick = newPicker(s.st, "Assign a credential to "+a.Name,
			"The agent gets a new proxy token for it, shown once.", items, s.width, s.height)
		s.mode = agentPickCredential
		return nil
	case key.Matches(msg, keys.Revoke) && a != nil && len(a.Credentials) > 0:
		s.target, s.notice, s.err = a, "", ""
		if len(a.Credentials) == 1 {
			s.revokeCred = &a.Credentials[0]
			s.mode = agentConfirmRevoke
			return nil
		}
		var items []pickItem
		for _, c := range a.Credentials {
			items = append(items, pickItem{id: c.CredentialID, label: c.CredentialName,
				detail: "assigned " + c.AssignedAt.In(s.be.opts.Location).Format("2006-01-02") + ", used " + ago(s.now(), c.LastUsedAt)})
		}
		s.pick = newPicker(s.st, "Revoke which credential from "+a.Name+"?", "Its proxy token stops working at once.", items, s.width, s.height)
		s.mode = agentPickRevoke
	case key.Matches(msg, keys.Delete) && a != nil && s.be.may(agentkeys.PermDeleteAgents):
		s.target, s.mode, s.notice, s.err = a, agentConfirmDelete, "", ""
	case key.Matches(msg, keys.Back):
		s.notice, s.err = "", ""
	}
	return nil
}

// closeToken drops the token: it is never shown again.
func (s *agentsScreen) closeToken() {
	name := s.token.agentName
	s.token.grant.ProxyToken = ""
	s.token, s.mode, s.copied = nil, agentList, ""
	s.notice = "Token closed. Assign again to get a new one for " + name + " (the old one then stops working)."
}

// copyToClipboard writes the OSC 52 sequence that puts s on the terminal's
// clipboard (wrapped for tmux or screen when running inside them).
func copyToClipboard(w interface{ Write([]byte) (int, error) }, s string) tea.Cmd {
	return func() tea.Msg {
		seq := osc52.New(s)
		if os.Getenv("TMUX") != "" {
			// tmux with set-clipboard on takes the plain sequence; with
			// allow-passthrough it takes the wrapped one. Send both.
			if _, err := seq.WriteTo(w); err != nil {
				return clipboardMsg{err: err}
			}
			seq = seq.Tmux()
		} else if strings.HasPrefix(os.Getenv("TERM"), "screen") {
			seq = seq.Screen()
		}
		_, err := seq.WriteTo(w)
		return clipboardMsg{err: err}
	}
}

func (s *agentsScreen) View() string {
	st := s.st
	switch s.mode {
	case agentPickCredential, agentPickRevoke:
		return s.pick.view()
	case agentToken:
		return s.tokenView()
	case agentConfirmRevoke:
		c := s.revokeCred
		body := st.Title.Render("Revoke \""+c.CredentialName+"\" from agent \""+s.target.Name+"\"?") + "\n\n" +
			"Its proxy token stops working at once, also in a running proxy.\n" +
			"The credential itself stays in the vault.\n\n" +
			st.Warning.Render("Press y to revoke, n or esc to keep it.")
		return st.Box.Render(wrap(body, min(s.width-4, 76)))
	case agentConfirmDelete:
		a := s.target
		var b strings.Builder
		b.WriteString(st.Title.Render("Delete agent \""+a.Name+"\"?") + "\n\n")
		if len(a.Credentials) == 0 {
			b.WriteString("It has no credentials assigned.\n")
		} else {
			b.WriteString("Its proxy tokens stop working at once, for:\n")
			for i, c := range a.Credentials {
				if i == 8 && len(a.Credentials) > 9 {
					b.WriteString("  • … and " + itoa(len(a.Credentials)-8) + " more\n")
					break
				}
				b.WriteString("  • " + c.CredentialName + "\n")
			}
		}
		b.WriteString("\nThe credentials stay in the vault. This cannot be undone.\n\n")
		b.WriteString(st.Warning.Render("Press y to delete, n or esc to keep it."))
		return st.Box.Render(wrap(b.String(), min(s.width-4, 76)))
	}
	var b strings.Builder
	count := plural(len(s.agents), "agent")
	if !s.loaded {
		count = "loading…"
		if s.err != "" {
			count = "not loaded"
		}
	}
	b.WriteString(st.Title.Render("Agents") + "  " + st.Dim.Render(count) + "\n")
	if s.mode == agentCreating {
		b.WriteString(st.FocusLabel.Render("New agent name ") + "[" + s.name.View() + "]\n")
	} else {
		b.WriteString(st.Dim.Render(truncate("Each assignment gives an agent its own proxy token for one credential.", s.width)) + "\n")
	}
	empty := ""
	if s.loaded {
		empty = "No agents yet: press n to create one."
	}
	b.WriteString(s.tbl.view(st, empty) + "\n")
	b.WriteString(s.detailView() + "\n")
	switch {
	case s.err != "":
		// The layout leaves two lines spare under the detail for this.
		b.WriteString(errorLines(st, s.err, s.width, 3))
	case s.notice != "":
		b.WriteString(st.Success.Render(truncate("✓ "+s.notice, s.width)))
	}
	return b.String()
}

// detailView shows the selected agent's assignments.
func (s *agentsScreen) detailView() string {
	a := s.selected()
	if a == nil || s.mode == agentCreating {
		return "\n"
	}
	line := s.st.Title.Render(a.Name) + s.st.Dim.Render(" · "+plural(len(a.Credentials), "credential"))
	var parts []string
	for _, c := range a.Credentials {
		parts = append(parts, c.CredentialName+" (used "+ago(s.now(), c.LastUsedAt)+")")
	}
	detail := "No credentials assigned: press a to assign one."
	if len(parts) > 0 {
		detail = strings.Join(parts, ", ")
	}
	return truncate(line, s.width) + "\n" + s.st.Dim.Render(truncate(detail, s.width))
}

func (s *agentsScreen) tokenView() string {
	st := s.st
	t := s.token
	w := max(min(s.width, 100), 40)
	var b strings.Builder
	b.WriteString(st.Title.Render(truncate("New proxy token for "+t.agentName+" → "+t.credName, w)) + "\n\n")
	// The token goes on a line of its own, unstyled and unwrapped, so a
	// mouse selection or a terminal's copy mode takes exactly the token.
	b.WriteString(t.grant.ProxyToken + "\n\n")
	b.WriteString(st.Warning.Render(wrap("This token will not be shown again. Copy it now and give it to the agent; it is stored only as a hash.", w)) + "\n")
	if s.be.opts.Clipboard != nil {
		b.WriteString(wrap("Press c to copy it to the clipboard (OSC 52), or select it with the mouse.", w) + "\n")
	} else {
		b.WriteString(wrap("Select it with the mouse to copy it.", w) + "\n")
	}
	b.WriteString(st.Dim.Render(wrap("The agent sends it as \"Authorization: Bearer <token>\" to the proxy.", w)))
	if s.copied != "" {
		b.WriteString("\n" + st.Success.Render(wrap(s.copied, w)))
	}
	return st.TokenBox.Render(b.String())
}
