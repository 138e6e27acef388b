package tui

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// column is one column of a table: a fixed width, or a share of the space
// left over (flex > 0, with min as its floor).
type column struct {
	title string
	width int
	flex  int
	min   int
}

// table is a cursor over rows already in memory. Moving the cursor never
// calls the vault: screens load their rows once and on changes.
type table struct {
	cols   []column
	widths []int
	rows   [][]string
	cursor int
	offset int
	height int // rows visible, header excluded
	width  int
}

const cellGap = 2

// setSize lays the columns out for width and shows height rows.
func (t *table) setSize(width, height int) {
	t.width = width
	t.height = max(height, 1)
	t.widths = make([]int, len(t.cols))
	fixed, flex := 2, 0 // 2: the selection marker
	for i, c := range t.cols {
		if i > 0 {
			fixed += cellGap
		}
		if c.flex == 0 {
			t.widths[i] = c.width
			fixed += c.width
		} else {
			flex += c.flex
		}
	}
	left := max(width-fixed, 0)
	used := 0
	for i, c := range t.cols {
		if c.flex > 0 {
			t.widths[i] = max(left*c.flex/flex, c.min)
			used += t.widths[i]
		}
	}
	// A column raised to its minimum is paid for by the others above theirs.
	for used > left {
		widest := -1
		for i, c := range t.cols {
			if c.flex > 0 && t.widths[i] > c.min && (widest < 0 || t.widths[i]-c.min > t.widths[widest]-t.cols[widest].min) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		t.widths[widest]--
		used--
	}
	t.clamp()
}

// setRows replaces the rows, keeping the cursor in range.
func (t *table) setRows(rows [][]string) {
	t.rows = rows
	t.clamp()
}

func (t *table) clamp() {
	if t.cursor >= len(t.rows) {
		t.cursor = len(t.rows) - 1
	}
	if t.cursor < 0 {
		t.cursor = 0
	}
	if t.offset > t.cursor {
		t.offset = t.cursor
	}
	if t.height > 0 && t.cursor >= t.offset+t.height {
		t.offset = t.cursor - t.height + 1
	}
	if maxOff := max(len(t.rows)-t.height, 0); t.offset > maxOff {
		t.offset = maxOff
	}
	if t.offset < 0 {
		t.offset = 0
	}
}

// move handles the list navigation keys; it reports whether msg was one.
func (t *table) move(msg tea.KeyMsg) bool {
	switch {
	case key.Matches(msg, keys.Up):
		t.cursor--
	case key.Matches(msg, keys.Down):
		t.cursor++
	case key.Matches(msg, keys.PageUp):
		t.cursor -= t.height
	case key.Matches(msg, keys.PageDown):
		t.cursor += t.height
	case key.Matches(msg, keys.Top):
		t.cursor = 0
	case key.Matches(msg, keys.Bottom):
		t.cursor = len(t.rows) - 1
	default:
		return false
	}
	t.clamp()
	return true
}

func (t *table) line(cells []string) string {
	var b strings.Builder
	for i, w := range t.widths {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", cellGap))
		}
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		b.WriteString(pad(cell, w))
	}
	return b.String()
}

// view renders the header and the visible rows; empty is shown when there
// are no rows.
func (t *table) view(st *styles, empty string) string {
	titles := make([]string, len(t.cols))
	for i, c := range t.cols {
		titles[i] = c.title
	}
	lines := []string{st.Header.Render("  " + t.line(titles))}
	if len(t.rows) == 0 {
		lines = append(lines, st.Dim.Render("  "+empty))
	}
	end := min(t.offset+t.height, len(t.rows))
	for i := t.offset; i < end; i++ {
		l := t.line(t.rows[i])
		if i == t.cursor {
			lines = append(lines, st.Selected.Render("› "+l))
		} else {
			lines = append(lines, "  "+l)
		}
	}
	return strings.Join(lines, "\n")
}

// position is "3/120" for the status line.
func (t *table) position() string {
	if len(t.rows) == 0 {
		return "0/0"
	}
	return itoa(t.cursor+1) + "/" + itoa(len(t.rows))
}

// pad truncates s to w cells (with an ellipsis) and pads it with spaces.
func pad(s string, w int) string {
	if w <= 0 {
		return ""
	}
	s = ansi.Truncate(s, w, "…")
	if n := ansi.StringWidth(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// truncate shortens s to w cells with an ellipsis.
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

func itoa(n int) string { return strconv.Itoa(n) }

// plainError turns an error into the words shown in place: the message of
// an agentkeys.Error, which says what to do next, or a plain description;
// made safe for the terminal (it may quote a server's words).
func plainError(err error) string {
	return agentkeys.SafeText(errorText(err))
}

func errorText(err error) string {
	var e *agentkeys.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "the vault did not answer in time; press ctrl+r to try again"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	default:
		return err.Error()
	}
}

// errorLines renders "✗ msg" in the error style, word-wrapped to w cells and
// at most n lines (the last cut with an ellipsis), so the end of a message —
// what to do next — is seen on narrow terminals.
func errorLines(st *styles, msg string, w, n int) string {
	if w <= 0 {
		return ""
	}
	lines := strings.Split(ansi.Wrap("✗ "+msg, w, ""), "\n")
	if len(lines) > n {
		lines = lines[:n]
		lines[n-1] = ansi.Truncate(lines[n-1], w-1, "") + "…"
	}
	for i, l := range lines {
		lines[i] = st.Error.Render(strings.TrimRight(l, " "))
	}
	return strings.Join(lines, "\n")
}

// wrap word-wraps s to width w.
func wrap(s string, w int) string {
	if w <= 0 {
		return s
	}
	return lipgloss.NewStyle().Width(w).Render(s)
}

// ago says how long before now t was, in the largest whole unit.
func ago(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return itoa(int(d/time.Hour)) + "h ago"
	default:
		return itoa(int(d/(24*time.Hour))) + "d ago"
	}
}

// expires is a credential's expiry for the list: "never", "expired",
// "in 5h", "in 12d": at most 8 cells.
func expires(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Hour:
		return "in " + itoa(int(d/time.Minute)+1) + "m"
	case d < 48*time.Hour:
		return "in " + itoa(int(d/time.Hour)) + "h"
	case d < 9999*24*time.Hour:
		return "in " + itoa(int(d/(24*time.Hour))) + "d"
	}
	return "later"
}

// plural is "1 credential", "2 credentials".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return itoa(n) + " " + noun + "s"
}
