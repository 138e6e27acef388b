package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentkeys/agentkeys"
)

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows for people (aligned columns with a header) when stdout
// is a terminal, and for scripts (tab-separated, no header) otherwise.
type table struct {
	ios    *IOStreams
	header []string
	rows   [][]string
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

func (t *table) render() error {
	if !t.ios.IsStdoutTTY() {
		for _, r := range t.rows {
			for i := range r {
				r[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(r[i])
			}
			if _, err := fmt.Fprintln(t.ios.Out, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(t.ios.Out, 0, 4, 2, ' ', 0)
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
