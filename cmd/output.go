package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/agentkeys/agentkeys"
)

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows for people (aligned columns with a header) when stdout
// is a terminal, and for scripts (tab-separated, no header) otherwise. For
// people it fits the terminal's width (see fit) unless wide is set; piped
// output is never changed.
type table struct {
	ios    *IOStreams
	header []string
	rows   [][]string
	cols   []colFit // one per column, or nil: never fitted
	wide   bool
}

// colFit says how a column may give way when a table is wider than the
// terminal: id columns are first shortened to a unique prefix (which still
// works as an argument), then flexible columns are cut to no less than min
// characters, ending in "…", and last droppable columns go.
type colFit struct {
	id   bool
	drop bool
	flex bool
	min  int
}

func newTable(ios *IOStreams, header ...string) *table {
	return &table{ios: ios, header: header}
}

// add appends a row. Cells are made safe for a terminal (SafeText): they
// hold names and audit fields from storage.
func (t *table) add(cells ...string) {
	for i := range cells {
		cells[i] = agentkeys.SafeText(cells[i])
	}
	t.rows = append(t.rows, cells)
}

// cellReplacer keeps a cell on its line and in its column in piped output.
var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ")

// tableGap is the space between columns.
const tableGap = 2

func (t *table) render() error {
	if !t.ios.IsStdoutTTY() {
		// One buffered write, not one per line: 10,000 rows are 10,000
		// system calls otherwise.
		w := bufio.NewWriterSize(t.ios.Out, 64<<10)
		for _, r := range t.rows {
			for i, c := range r {
				if i > 0 {
					w.WriteByte('\t')
				}
				cellReplacer.WriteString(w, c)
			}
			w.WriteByte('\n')
		}
		return w.Flush()
	}
	if w := t.ios.Width(); w > 0 && !t.wide && t.cols != nil {
		t.fit(w)
	}
	tw := tabwriter.NewWriter(t.ios.Out, 0, 4, tableGap, ' ', 0)
	// Bold codes would upset tabwriter's widths, so the header is plain
	// upper case.
	if t.header != nil {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fit makes the table no wider than width columns, where it can.
func (t *table) fit(width int) {
	widths := func() ([]int, int) {
		ws := make([]int, len(t.header))
		for i, h := range t.header {
			ws[i] = utf8.RuneCountInString(h)
		}
		for _, r := range t.rows {
			for i, c := range r {
				ws[i] = max(ws[i], utf8.RuneCountInString(c))
			}
		}
		total := tableGap * (len(ws) - 1)
		for _, w := range ws {
			total += w
		}
		return ws, total
	}
	ws, total := widths()
	if total <= width {
		return
	}
	for i, c := range t.cols {
		if c.id {
			ids := make([]string, len(t.rows))
			for j, r := range t.rows {
				ids[j] = r[i]
			}
			for j, short := range shortIDs(ids) {
				t.rows[j][i] = short
			}
		}
	}
	if ws, total = widths(); total <= width {
		return
	}
	for total > width {
		widest := -1
		for i, c := range t.cols {
			if c.flex && ws[i] > max(c.min, utf8.RuneCountInString(t.header[i])) && (widest < 0 || ws[i] > ws[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // as narrow as they go: columns are dropped next
		}
		ws[widest]--
		total--
	}
	for i := len(t.cols) - 1; i >= 0 && total > width; i-- {
		if t.cols[i].drop {
			t.header = append(t.header[:i:i], t.header[i+1:]...)
			for j, r := range t.rows {
				t.rows[j] = append(r[:i:i], r[i+1:]...)
			}
			t.cols = append(t.cols[:i:i], t.cols[i+1:]...)
			ws, total = append(ws[:i:i], ws[i+1:]...), total-ws[i]-tableGap
		}
	}
	for _, r := range t.rows {
		for i := range r {
			r[i] = truncate(r[i], ws[i])
		}
	}
}

// truncate cuts s to n characters, the last one "…", when it is longer.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n || n < 1 {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// formatTime is relative for people ("3m ago") and RFC 3339 for scripts.
func formatTime(ios *IOStreams, now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !ios.IsStdoutTTY() {
		return t.UTC().Format(time.RFC3339)
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Local().Format("2006-01-02 15:04")
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
	return t.Local().Format("2006-01-02")
}
