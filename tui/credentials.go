package tui

import (
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

type credMode int

const (
	credList credMode = iota
	credFiltering
	credAdding
	credConfirmDelete
	credDetail
	credEditing
)

// credentialsScreen lists credentials (metadata only), filters them, adds
// them through a form that follows the type, and deletes them after a
// confirmation naming the agents that will lose access.
type credentialsScreen struct {
	be     *backend
	st     *styles
	now    func() time.Time
	creds  []*agentkeys.Credential
	agents []*agentkeys.Agent
	loaded bool
	shown  []*agentkeys.Credential // creds after the filter, in table order
	tbl    table
	filter textinput.Model
	mode   credMode
	form   *credForm
	target *agentkeys.Credential // the credential shown in full or being deleted
	// namesErr says why the details could not name target's headers or
	// parameter (FindCredential failed); "" otherwise.
	namesErr string
	// selectName moves the cursor to this credential on the next reload.
	selectName string
	busy       bool
	err        string
	notice     string
	width      int
	height     int
}

func newCredentialsScreen(be *backend, st *styles, now func() time.Time) *credentialsScreen {
	f := textinput.New()
	f.Prompt = "/ "
	f.Placeholder = "filter by name, type or host"
	f.Cursor.SetMode(cursor.CursorStatic)
	return &credentialsScreen{
		be: be, st: st, now: now, filter: f,
		tbl: table{cols: []column{
			{title: "NAME", flex: 3, min: 14},
			{title: "TYPE", width: 13},
			{title: "ALLOWED HOSTS", flex: 4, min: 14},
			{title: "CREATED", width: 10},
			{title: "LAST USED", width: 9},
			{title: "EXPIRES", width: 8},
		}},
	}
}

func (s *credentialsScreen) Init() tea.Cmd { return nil }

// Shown clears the last action's message when the screen is left.
func (s *credentialsScreen) Shown(active bool) tea.Cmd {
	if !active {
		s.notice, s.err = "", ""
	}
	return nil
}

func (s *credentialsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.filter.Width = max(w-4, 10)
	// title line, filter line, blank, header; one line for messages below
	s.tbl.setSize(w, h-5)
	if s.form != nil {
		s.form.setSize(w, h)
	}
}

func (s *credentialsScreen) Capturing() bool { return s.mode != credList && s.mode != credDetail }

func (s *credentialsScreen) ShortHelp() []key.Binding {
	switch s.mode {
	case credFiltering:
		return []key.Binding{keys.Apply, keys.Back}
	case credAdding, credEditing:
		return s.form.helpKeys()
	case credConfirmDelete:
		return []key.Binding{keys.Confirm, keys.Cancel}
	case credDetail:
		ks := []key.Binding{}
		if s.be.may(agentkeys.PermEditCredentials) {
			ks = append(ks, keys.Edit)
		}
		if s.be.may(agentkeys.PermDeleteCredentials) {
			ks = append(ks, keys.Delete)
		}
		return append(ks, keys.Back)
	}
	ks := []key.Binding{keys.Move, keys.Filter}
	if s.be.may(agentkeys.PermEditCredentials) {
		ks = append(ks, keys.Add)
	}
	if len(s.shown) > 0 {
		ks = append(ks, keys.Open)
		if s.be.may(agentkeys.PermEditCredentials) {
			ks = append(ks, keys.Edit)
		}
		if s.be.may(agentkeys.PermDeleteCredentials) {
			ks = append(ks, keys.Delete)
		}
	}
	if s.filter.Value() != "" {
		ks = append(ks, keys.Back)
	}
	return ks
}

func (s *credentialsScreen) FullHelp() [][]key.Binding {
	if s.mode != credList {
		return [][]key.Binding{s.ShortHelp()}
	}
	return [][]key.Binding{
		{keys.Up, keys.Down, keys.PageUp, keys.PageDown, keys.Top, keys.Bottom},
		{keys.Filter, keys.Open, keys.Add, keys.Edit, keys.Delete, keys.Refresh, keys.Back},
	}
}

func (s *credentialsScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case credentialFoundMsg:
		if s.mode != credDetail || s.target == nil || s.target.ID != msg.id {
			return nil // the details were closed meanwhile
		}
		if msg.err != nil {
			s.namesErr = "could not be read: " + plainError(msg.err)
			return nil
		}
		s.target = msg.cred
		return nil
	case credentialsLoadedMsg:
		if msg.err != nil {
			s.err = "Could not load credentials: " + plainError(msg.err)
			return nil
		}
		s.creds, s.loaded = msg.creds, true
		s.applyFilter()
	case agentsLoadedMsg:
		if msg.err == nil {
			s.agents = msg.agents
		}
	case credentialCreatedMsg:
		if s.form == nil {
			return nil
		}
		s.form.busy = false
		if msg.err != nil {
			s.form.err = plainError(msg.err)
			return nil
		}
		s.form.wipe()
		s.form, s.mode = nil, credList
		s.notice = "Added " + msg.cred.Name + " (" + string(msg.cred.Type) + "), allowed hosts: " + strings.Join(msg.cred.AllowedHosts, ", ")
		s.err = ""
		s.selectName = msg.cred.Name
	case credentialUpdatedMsg:
		if s.form == nil {
			return nil
		}
		s.form.busy = false
		if msg.err != nil {
			s.form.err = plainError(msg.err)
			return nil
		}
		s.form.wipe()
		s.form, s.mode = nil, credList
		s.notice = "Saved " + msg.cred.Name + " (allowed hosts: " + strings.Join(msg.cred.AllowedHosts, ", ") + "); agents keep their tokens"
		s.err = ""
		s.selectName = msg.cred.Name
	case credentialDeletedMsg:
		s.busy = false
		if agentkeys.ErrorCode(msg.err) == agentkeys.ENOTFOUND {
			s.notice, s.err = msg.name+" was already deleted (by another program); the list is reloaded.", ""
		} else if msg.err != nil {
			s.err = "Could not delete " + msg.name + ": " + plainError(msg.err)
		} else {
			s.notice, s.err = "Deleted "+msg.name+".", ""
		}
	case tea.KeyMsg:
		return s.handleKey(msg)
	}
	return nil
}

func (s *credentialsScreen) handleKey(msg tea.KeyMsg) tea.Cmd {
	switch s.mode {
	case credFiltering:
		switch {
		case msg.Type == tea.KeyEnter:
			s.mode = credList
			s.filter.Blur()
		case msg.Type == tea.KeyEsc:
			s.mode = credList
			s.filter.Blur()
			s.filter.SetValue("")
			s.applyFilter()
		default:
			var cmd tea.Cmd
			s.filter, cmd = s.filter.Update(msg)
			s.applyFilter()
			return cmd
		}
		return nil
	case credAdding, credEditing:
		if msg.Type == tea.KeyEsc && !s.form.busy {
			s.form.wipe()
			s.form, s.mode = nil, credList
			return nil
		}
		in, submit, cmd := s.form.update(msg)
		if submit && s.mode == credEditing {
			s.form.busy = true
			return s.be.updateCredential(s.form.editing.ID, s.form.changes(in))
		}
		if submit {
			s.form.busy = true
			return s.be.createCredential(in)
		}
		return cmd
	case credDetail:
		switch {
		case key.Matches(msg, keys.Back), msg.Type == tea.KeyEnter:
			s.mode, s.target = credList, nil
		case key.Matches(msg, keys.Delete) && s.be.may(agentkeys.PermDeleteCredentials):
			s.mode = credConfirmDelete
		case key.Matches(msg, keys.Edit) && s.be.may(agentkeys.PermEditCredentials):
			s.startEdit(s.target)
		}
		return nil
	case credConfirmDelete:
		switch {
		case key.Matches(msg, keys.Confirm):
			t := s.target
			s.mode, s.target, s.busy = credList, nil, true
			s.notice = "Deleting " + t.Name + "…"
			return s.be.deleteCredential(t.ID, t.Name)
		case key.Matches(msg, keys.Cancel):
			s.mode, s.target = credList, nil
		}
		return nil
	}
	if s.tbl.move(msg) {
		return nil
	}
	switch {
	case key.Matches(msg, keys.Filter):
		s.mode = credFiltering
		s.notice = ""
		return s.filter.Focus()
	case key.Matches(msg, keys.Add) && s.be.may(agentkeys.PermEditCredentials):
		s.mode = credAdding
		s.notice, s.err = "", ""
		s.form = newCredForm(s.st, s.width, s.height)
	case key.Matches(msg, keys.Delete) && s.be.may(agentkeys.PermDeleteCredentials):
		if c := s.selected(); c != nil {
			s.target, s.mode = c, credConfirmDelete
			s.notice, s.err = "", ""
		}
	case key.Matches(msg, keys.Edit) && s.be.may(agentkeys.PermEditCredentials):
		if c := s.selected(); c != nil {
			s.startEdit(c)
		}
	case key.Matches(msg, keys.Open):
		if c := s.selected(); c != nil {
			s.target, s.mode = c, credDetail
			s.notice, s.err, s.namesErr = "", "", ""
			if c.Type.HasInjectedNames() {
				// The list leaves out the header or parameter names.
				return s.be.findCredential(c.ID)
			}
		}
	case key.Matches(msg, keys.Back):
		if s.filter.Value() != "" {
			s.filter.SetValue("")
			s.applyFilter()
		}
		s.notice, s.err = "", ""
	}
	return nil
}

// startEdit opens the form on c: its name and hosts filled in, its value
// fields empty (empty keeps the value).
func (s *credentialsScreen) startEdit(c *agentkeys.Credential) {
	s.mode, s.target = credEditing, nil
	s.notice, s.err = "", ""
	s.form = newEditForm(s.st, s.width, s.height, c)
}

func (s *credentialsScreen) selected() *agentkeys.Credential {
	if s.tbl.cursor < 0 || s.tbl.cursor >= len(s.shown) {
		return nil
	}
	return s.shown[s.tbl.cursor]
}

// applyFilter recomputes the visible rows from memory.
func (s *credentialsScreen) applyFilter() {
	var keep *agentkeys.Credential
	if s.selectName == "" {
		keep = s.selected()
	}
	q := strings.ToLower(strings.TrimSpace(s.filter.Value()))
	s.shown = s.shown[:0]
	rows := make([][]string, 0, len(s.creds))
	now := s.now()
	for _, c := range s.creds {
		if q != "" && !credMatches(c, q) {
			continue
		}
		s.shown = append(s.shown, c)
		rows = append(rows, []string{
			c.Name, string(c.Type), strings.Join(c.AllowedHosts, ", "),
			c.CreatedAt.In(s.be.opts.Location).Format("2006-01-02"), ago(now, c.LastUsedAt), expires(now, c.ExpiresAt),
		})
	}
	s.tbl.setRows(rows)
	for i, c := range s.shown {
		if (keep != nil && c.ID == keep.ID) || (s.selectName != "" && c.Name == s.selectName) {
			s.tbl.cursor = i
			s.tbl.clamp()
		}
	}
	s.selectName = ""
}

func credMatches(c *agentkeys.Credential, q string) bool {
	if strings.Contains(strings.ToLower(c.Name), q) || strings.Contains(strings.ToLower(string(c.Type)), q) {
		return true
	}
	for _, h := range c.AllowedHosts {
		if strings.Contains(h, q) {
			return true
		}
	}
	return false
}

// agentsUsing names the agents assigned to credential id.
func agentsUsing(agents []*agentkeys.Agent, id string) []string {
	var names []string
	for _, a := range agents {
		for _, ac := range a.Credentials {
			if ac.CredentialID == id {
				names = append(names, a.Name)
			}
		}
	}
	return names
}

func (s *credentialsScreen) View() string {
	st := s.st
	switch s.mode {
	case credAdding, credEditing:
		return s.form.view()
	case credConfirmDelete:
		return s.confirmView()
	case credDetail:
		return s.detailView()
	}
	var b strings.Builder
	count := plural(len(s.creds), "credential")
	if s.filter.Value() != "" {
		count = itoa(len(s.shown)) + " of " + count
	}
	if !s.loaded {
		count = "loading…"
		if s.err != "" {
			count = "not loaded"
		}
	}
	b.WriteString(st.Title.Render("Credentials") + "  " + st.Dim.Render(count) + "\n")
	if s.mode == credFiltering || s.filter.Value() != "" {
		b.WriteString(truncate(s.filter.View(), s.width) + "\n")
	} else {
		b.WriteString(st.Dim.Render(truncate("Values are sealed in the vault and never shown here.", s.width)) + "\n")
	}
	b.WriteString(s.tbl.view(st, s.emptyText()) + "\n")
	b.WriteString(s.messageLine())
	return b.String()
}

func (s *credentialsScreen) emptyText() string {
	switch {
	case !s.loaded:
		return ""
	case len(s.creds) == 0:
		return "No credentials yet: press n to add one."
	default:
		return "Nothing matches the filter: press esc to clear it."
	}
}

func (s *credentialsScreen) messageLine() string {
	switch {
	case s.err != "":
		// The layout leaves one line spare under the table for this.
		return errorLines(s.st, s.err, s.width, 2)
	case s.notice != "":
		return s.st.Success.Render(truncate("✓ "+s.notice, s.width))
	}
	return ""
}

func (s *credentialsScreen) confirmView() string {
	st := s.st
	t := s.target
	var b strings.Builder
	b.WriteString(st.Title.Render("Delete credential \""+t.Name+"\"?") + "\n\n")
	names := agentsUsing(s.agents, t.ID)
	if len(names) == 0 {
		b.WriteString("No agent is assigned to it.\n")
	} else {
		b.WriteString("These agents lose access at once (their proxy tokens stop working):\n")
		for i, n := range names {
			if i == 8 && len(names) > 9 {
				b.WriteString("  • … and " + itoa(len(names)-8) + " more\n")
				break
			}
			b.WriteString("  • " + n + "\n")
		}
	}
	b.WriteString("\nThe sealed value is erased. This cannot be undone.\n\n")
	b.WriteString(st.Warning.Render("Press y to delete, n or esc to keep it."))
	return st.Box.Render(wrap(b.String(), min(s.width-4, 76)))
}

// detailView shows one credential's metadata in full (never its value).
func (s *credentialsScreen) detailView() string {
	st := s.st
	c := s.target
	loc := s.be.opts.Location
	w := min(s.width-4, 96)
	row := func(k, v string) string { return st.Dim.Render(pad(k, 15)) + v + "\n" }
	var b strings.Builder
	b.WriteString(st.Title.Render(c.Name) + "  " + st.Dim.Render(c.ID) + "\n\n")
	b.WriteString(row("Type", string(c.Type)+st.Dim.Render("  "+typeHelp[c.Type])))
	b.WriteString(row("Allowed hosts", strings.Join(c.AllowedHosts, ", ")))
	if c.Type.HasInjectedNames() {
		label, names, note := "Parameter", c.ParamName, "  value never shown"
		if c.Type == agentkeys.CustomHeader {
			label, names, note = "Headers", strings.Join(c.HeaderNames, ", "), "  values never shown"
		}
		switch {
		case s.namesErr != "":
			b.WriteString(row(label, st.Dim.Render(s.namesErr)))
		case names != "":
			b.WriteString(row(label, names+st.Dim.Render(note)))
		}
	}
	b.WriteString(row("Created", c.CreatedAt.In(loc).Format("2006-01-02 15:04")))
	b.WriteString(row("Updated", c.UpdatedAt.In(loc).Format("2006-01-02 15:04")))
	b.WriteString(row("Last used", ago(s.now(), c.LastUsedAt)))
	if c.ExpiresAt != nil {
		b.WriteString(row("Expires", c.ExpiresAt.In(loc).Format("2006-01-02 15:04")+"  "+expires(s.now(), c.ExpiresAt)))
	}
	names := agentsUsing(s.agents, c.ID)
	agents := "none"
	if len(names) > 0 {
		agents = strings.Join(names, ", ")
	}
	b.WriteString(row("Agents", agents))
	b.WriteString("\n" + st.Dim.Render("The value is sealed in the vault; only the proxy opens it, per request."))
	return st.Box.Render(wrap(b.String(), w))
}
