package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

type auditMode int

const (
	auditList auditMode = iota
	auditFiltering
	auditDetail
)

// auditPage is how many events a load asks for, and auditKeep how many the
// screen holds in memory.
const (
	auditPage = 500
	auditKeep = 2000
)

// auditFilter is what the user asked to see. Agent and credential are
// names, resolved to ids against the loaded lists when applied.
type auditFilter struct {
	agent, cred, status string
	agentID, credID     string
	code                int    // exact status
	class               int    // 2 for 2xx …, client-side
	decision            string // allowed, denied, error, pending
}

func (f auditFilter) empty() bool { return f.agent == "" && f.cred == "" && f.status == "" }

func (f auditFilter) vault(afterSeq int64) agentkeys.AuditFilter {
	return agentkeys.AuditFilter{AgentID: f.agentID, CredentialID: f.credID, Status: f.code,
		Decision: f.decision, AfterSeq: afterSeq, Limit: auditPage}
}

func (f auditFilter) keep(e *agentkeys.AuditEvent) bool {
	return f.class == 0 || e.Status/100 == f.class
}

func (f auditFilter) String() string {
	var parts []string
	if f.agent != "" {
		parts = append(parts, "agent="+f.agent)
	}
	if f.cred != "" {
		parts = append(parts, "credential="+f.cred)
	}
	if f.status != "" {
		parts = append(parts, "status="+f.status)
	}
	return strings.Join(parts, " ")
}

// auditScreen follows the audit log: it loads the newest events, then polls
// for events after the newest sequence number on a timer while it is shown,
// so new proxied requests appear without a key press.
type auditScreen struct {
	be      *backend
	st      *styles
	now     func() time.Time
	agents  []*agentkeys.Agent
	creds   []*agentkeys.Credential
	events  []*agentkeys.AuditEvent // newest first
	maxSeq  int64
	loaded  bool
	active  bool
	gen     int
	polling bool
	filter  auditFilter
	inputs  []textinput.Model
	focus   int
	tbl     table
	mode    auditMode
	detail  *agentkeys.AuditEvent
	err     string
	width   int
	height  int
}

func newAuditScreen(be *backend, st *styles, now func() time.Time) *auditScreen {
	s := &auditScreen{be: be, st: st, now: now,
		tbl: table{cols: []column{
			{title: "TIME", width: 8},
			{title: "AGENT", flex: 2, min: 8},
			{title: "CREDENTIAL", flex: 2, min: 8},
			{title: "REQUEST", flex: 4, min: 14},
			{title: "STATUS", width: 10},
			{title: "MS", width: 5},
		}}}
	for _, ph := range []string{"agent name", "credential name", "200, 4xx, denied, error…"} {
		in := textinput.New()
		in.Prompt = ""
		in.Placeholder = ph
		in.CharLimit = 100
		in.Cursor.SetMode(cursor.CursorStatic)
		s.inputs = append(s.inputs, in)
	}
	return s
}

func (s *auditScreen) Init() tea.Cmd { return nil }

// Shown starts following the log when the screen becomes active and stops
// it when it is left.
func (s *auditScreen) Shown(active bool) tea.Cmd {
	s.active = active
	if !active {
		return nil
	}
	s.gen++
	if !s.loaded {
		return s.be.loadAudit(s.gen, s.filter.vault(0), false)
	}
	return s.be.loadAudit(s.gen, s.filter.vault(s.maxSeq), true)
}

func (s *auditScreen) tick() tea.Cmd {
	gen := s.gen
	return tea.Tick(s.be.opts.PollInterval, func(time.Time) tea.Msg { return auditTickMsg{gen: gen} })
}

func (s *auditScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	for i := range s.inputs {
		s.inputs[i].Width = max(min(w-20, 40), 10)
	}
	// title, filter line, header; up to two message lines below
	s.tbl.setSize(w, h-5)
	s.rows()
}

func (s *auditScreen) Capturing() bool { return s.mode == auditFiltering }

func (s *auditScreen) ShortHelp() []key.Binding {
	switch s.mode {
	case auditFiltering:
		return []key.Binding{keys.NextField, keys.Apply, keys.Back}
	case auditDetail:
		return []key.Binding{keys.Back}
	}
	ks := []key.Binding{keys.Move, keys.Open, auditFilterKey}
	if !s.filter.empty() {
		ks = append(ks, keys.ClearFil)
	}
	return ks
}

var auditFilterKey = key.NewBinding(key.WithKeys("f", "/"), key.WithHelp("f", "filter"))

func (s *auditScreen) FullHelp() [][]key.Binding {
	if s.mode != auditList {
		return [][]key.Binding{s.ShortHelp()}
	}
	return [][]key.Binding{
		{keys.Up, keys.Down, keys.PageUp, keys.PageDown, keys.Top, keys.Bottom},
		{keys.Open, auditFilterKey, keys.ClearFil, keys.Refresh},
	}
}

func (s *auditScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case agentsLoadedMsg:
		if msg.err == nil {
			s.agents = msg.agents
		}
	case credentialsLoadedMsg:
		if msg.err == nil {
			s.creds = msg.creds
		}
	case auditLoadedMsg:
		if msg.gen != s.gen {
			return nil // an answer for a filter or visit that is over
		}
		if msg.err != nil {
			s.err = "Could not read the audit log: " + plainError(msg.err)
		} else {
			s.err = ""
			s.merge(msg.events, msg.follow)
		}
		if s.active {
			return s.tick()
		}
	case auditTickMsg:
		if msg.gen != s.gen || !s.active {
			return nil
		}
		return s.be.loadAudit(s.gen, s.filter.vault(s.maxSeq), true)
	case tea.KeyMsg:
		return s.handleKey(msg)
	}
	return nil
}

// merge adds loaded events: a fresh load replaces the rows; a follow adds new
// events on top and replaces rows whose outcome was written since.
func (s *auditScreen) merge(events []*agentkeys.AuditEvent, follow bool) {
	if !follow {
		s.events = s.events[:0]
		s.maxSeq = 0
		s.loaded = true
	}
	for _, e := range events {
		s.maxSeq = max(s.maxSeq, e.Seq)
	}
	if !follow {
		for _, e := range events {
			if s.filter.keep(e) {
				s.events = append(s.events, e)
			}
		}
		s.rows()
		return
	}
	if len(events) == 0 {
		return
	}
	index := make(map[string]int, len(s.events))
	for i, e := range s.events {
		index[e.ID] = i
	}
	var fresh []*agentkeys.AuditEvent
	for _, e := range events { // oldest first
		if i, ok := index[e.ID]; ok {
			s.events[i] = e
			continue
		}
		if s.filter.keep(e) {
			fresh = append(fresh, e)
		}
	}
	// newest first: reverse the fresh ones on top
	out := make([]*agentkeys.AuditEvent, 0, len(fresh)+len(s.events))
	for i := len(fresh) - 1; i >= 0; i-- {
		out = append(out, fresh[i])
	}
	out = append(out, s.events...)
	if len(out) > auditKeep {
		out = out[:auditKeep]
	}
	// Keep the cursor on the same event when new ones arrive above it,
	// unless it sits on the newest row (then it follows the top).
	if s.tbl.cursor > 0 {
		s.tbl.cursor += len(fresh)
	}
	s.events = out
	s.rows()
}

func (s *auditScreen) rows() {
	rows := make([][]string, len(s.events))
	loc := s.be.opts.Location
	for i, e := range s.events {
		rows[i] = []string{
			clockOrDate(e.Time.In(loc), s.now().In(loc)),
			orDash(e.AgentName), orDash(e.CredentialName),
			e.Method + " " + e.Host + e.Path,
			statusText(e),
			strconv.FormatFloat(durationMs(e), 'f', 0, 64),
		}
	}
	s.tbl.setRows(rows)
}

func durationMs(e *agentkeys.AuditEvent) float64 {
	if e.DurationMs > 0 {
		return e.DurationMs
	}
	return float64(e.Duration) / float64(time.Millisecond)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func statusText(e *agentkeys.AuditEvent) string {
	switch e.Decision {
	case agentkeys.DecisionPending:
		return "pending"
	case agentkeys.DecisionDenied:
		return itoa(e.Status) + " denied"
	case agentkeys.DecisionError:
		return itoa(e.Status) + " error"
	}
	return itoa(e.Status)
}

func (s *auditScreen) handleKey(msg tea.KeyMsg) tea.Cmd {
	switch s.mode {
	case auditDetail:
		if key.Matches(msg, keys.Back) || msg.Type == tea.KeyEnter {
			s.mode, s.detail = auditList, nil
		}
		return nil
	case auditFiltering:
		switch {
		case msg.Type == tea.KeyEsc:
			s.mode, s.err = auditList, ""
			s.restoreInputs()
			return nil
		case msg.Type == tea.KeyEnter:
			return s.applyFilter()
		case key.Matches(msg, keys.NextField):
			s.focusInput(s.focus + 1)
			return nil
		case key.Matches(msg, keys.PrevField):
			s.focusInput(s.focus - 1)
			return nil
		}
		var cmd tea.Cmd
		s.inputs[s.focus], cmd = s.inputs[s.focus].Update(msg)
		return cmd
	}
	if s.tbl.move(msg) {
		return nil
	}
	switch {
	case key.Matches(msg, keys.Open):
		if s.tbl.cursor < len(s.events) {
			s.detail, s.mode = s.events[s.tbl.cursor], auditDetail
		}
	case key.Matches(msg, auditFilterKey):
		s.mode, s.err = auditFiltering, ""
		s.restoreInputs()
		s.focusInput(0)
	case key.Matches(msg, keys.ClearFil):
		if !s.filter.empty() {
			s.filter = auditFilter{}
			s.restoreInputs()
			return s.reload()
		}
	case key.Matches(msg, keys.Back):
		s.err = ""
	}
	return nil
}

func (s *auditScreen) restoreInputs() {
	s.inputs[0].SetValue(s.filter.agent)
	s.inputs[1].SetValue(s.filter.cred)
	s.inputs[2].SetValue(s.filter.status)
	for i := range s.inputs {
		s.inputs[i].Blur()
	}
}

func (s *auditScreen) focusInput(i int) {
	i = (i + len(s.inputs)) % len(s.inputs)
	for j := range s.inputs {
		s.inputs[j].Blur()
	}
	s.focus = i
	s.inputs[i].Focus()
}

// reload starts over with the current filter; answers to the old one are
// dropped by generation.
func (s *auditScreen) reload() tea.Cmd {
	s.gen++
	s.loaded = false
	s.events, s.maxSeq = nil, 0
	s.tbl.cursor, s.tbl.offset = 0, 0
	s.rows()
	return s.be.loadAudit(s.gen, s.filter.vault(0), false)
}

// applyFilter resolves the typed names against the loaded lists. A name that
// matches nothing is an error shown in place, not an empty screen.
func (s *auditScreen) applyFilter() tea.Cmd {
	f := auditFilter{
		agent:  strings.TrimSpace(s.inputs[0].Value()),
		cred:   strings.TrimSpace(s.inputs[1].Value()),
		status: strings.ToLower(strings.TrimSpace(s.inputs[2].Value())),
	}
	if f.agent != "" {
		for _, a := range s.agents {
			if strings.EqualFold(a.Name, f.agent) || a.ID == f.agent {
				f.agentID, f.agent = a.ID, a.Name
			}
		}
		if f.agentID == "" {
			s.err = "No agent is named \"" + f.agent + "\"."
			return nil
		}
	}
	if f.cred != "" {
		for _, c := range s.creds {
			if strings.EqualFold(c.Name, f.cred) || c.ID == f.cred {
				f.credID, f.cred = c.ID, c.Name
			}
		}
		if f.credID == "" {
			s.err = "No credential is named \"" + f.cred + "\"."
			return nil
		}
	}
	switch st := f.status; {
	case st == "":
	case st == agentkeys.DecisionAllowed || st == agentkeys.DecisionDenied || st == agentkeys.DecisionError || st == agentkeys.DecisionPending:
		f.decision = st
	case len(st) == 3 && st[1:] == "xx" && st[0] >= '1' && st[0] <= '5':
		f.class = int(st[0] - '0')
	default:
		n, err := strconv.Atoi(st)
		if err != nil || n < 100 || n > 599 {
			s.err = "Status must be a code (404), a class (4xx), or allowed, denied, error, pending."
			return nil
		}
		f.code = n
	}
	s.filter, s.mode, s.err = f, auditList, ""
	s.restoreInputs()
	return s.reload()
}

func (s *auditScreen) View() string {
	st := s.st
	if s.mode == auditDetail {
		return s.detailView()
	}
	var b strings.Builder
	state := "live"
	if !s.active {
		state = "paused"
	}
	count := plural(len(s.events), "event") + " · " + state
	if !s.loaded {
		count = "loading…"
		if s.err != "" {
			count = "not loaded"
		}
	}
	b.WriteString(st.Title.Render("Audit") + "  " + st.Dim.Render(count) + "\n")
	if s.mode == auditFiltering {
		return b.String() + s.filterView()
	}
	if !s.filter.empty() {
		b.WriteString(st.Warning.Render(truncate("Filter: "+s.filter.String()+"  (x clears)", s.width)) + "\n")
	} else {
		b.WriteString(st.Dim.Render(truncate("Every proxied request, newest first. Header values and bodies are never recorded.", s.width)) + "\n")
	}
	empty := ""
	if s.loaded {
		empty = "No requests yet: they appear here as agents use the proxy."
		if !s.filter.empty() {
			empty = "No requests match the filter."
		}
	}
	b.WriteString(s.tbl.view(st, empty) + "\n")
	if s.err != "" {
		b.WriteString(errorLines(st, s.err, s.width, 2))
	}
	return b.String()
}

func (s *auditScreen) detailView() string {
	e := s.detail
	st := s.st
	loc := s.be.opts.Location
	row := func(k, v string) string { return st.Dim.Render(pad(k, 14)) + v + "\n" }
	var b strings.Builder
	b.WriteString(st.Title.Render("Request "+e.RequestID) + "\n\n")
	b.WriteString(row("Time", e.Time.In(loc).Format("2006-01-02 15:04:05.000 MST")))
	b.WriteString(row("Agent", orDash(e.AgentName)+st.Dim.Render("  "+e.AgentID)))
	b.WriteString(row("Credential", orDash(e.CredentialName)+st.Dim.Render("  "+e.CredentialID)))
	b.WriteString(row("Method", e.Method))
	b.WriteString(row("Host", e.Host))
	b.WriteString(row("Path", e.Path))
	b.WriteString(row("Status", statusText(e)))
	b.WriteString(row("Decision", e.Decision))
	if e.Code != "" {
		b.WriteString(row("Error code", e.Code))
	}
	b.WriteString(row("Duration", strconv.FormatFloat(durationMs(e), 'f', 1, 64)+" ms"))
	b.WriteString(row("Bytes", "in "+strconv.FormatInt(e.BytesIn, 10)+" · out "+strconv.FormatInt(e.BytesOut, 10)))
	b.WriteString(row("Event", e.ID+st.Dim.Render("  seq "+strconv.FormatInt(e.Seq, 10))))
	b.WriteString("\n" + st.Dim.Render("The query string, header values and bodies are never recorded."))
	return st.Box.Render(wrap(b.String(), min(s.width-4, 96)))
}

// filterView is the filter form, one field a line.
func (s *auditScreen) filterView() string {
	st := s.st
	var b strings.Builder
	b.WriteString("\n" + st.Title.Render("Filter the audit log") + "\n\n")
	labels := []string{"Agent", "Credential", "Status"}
	for i, in := range s.inputs {
		marker, l := "  ", st.Label
		if i == s.focus {
			marker, l = "› ", st.FocusLabel
		}
		b.WriteString(truncate(marker+l.Render(pad(labels[i], 12))+"["+in.View()+"]", s.width) + "\n")
	}
	b.WriteString("\n" + st.Dim.Render(wrap("Names match exactly (any case). Status: a code (404), a class (4xx), or allowed, denied, error, pending. Leave a field empty to match everything.", s.width)))
	if s.err != "" {
		b.WriteString("\n\n" + st.Error.Render(wrap("✗ "+s.err, s.width)))
	}
	return b.String()
}

// clockOrDate is the time of day for today's events and the date for older
// ones (the details show both).
func clockOrDate(t, now time.Time) string {
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("Jan 02")
}
