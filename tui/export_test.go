package tui

import tea "github.com/charmbracelet/bubbletea"

// IsTick reports whether msg is the audit screen's poll timer, which
// synchronous test drivers must not follow (it would poll forever).
func IsTick(msg tea.Msg) bool {
	_, ok := msg.(auditTickMsg)
	return ok
}

// PollNow returns the message the audit screen's timer would deliver now.
func PollNow(m tea.Model) tea.Msg {
	a := m.(*Model).screens[ScreenAudit].(*auditScreen)
	return auditTickMsg{gen: a.gen}
}
