package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// pickItem is one choice of a picker.
type pickItem struct {
	id     string
	label  string
	detail string
}

// picker chooses one item from a list held in memory; typing narrows it.
type picker struct {
	st     *styles
	title  string
	note   string
	items  []pickItem
	shown  []pickItem
	filter textinput.Model
	tbl    table
	width  int
}

func newPicker(st *styles, title, note string, items []pickItem, width, height int) *picker {
	f := textinput.New()
	f.Prompt = "/ "
	f.Placeholder = "type to narrow"
	f.Cursor.SetMode(cursor.CursorStatic)
	f.Focus()
	p := &picker{st: st, title: title, note: note, items: items, filter: f,
		tbl: table{cols: []column{{title: "NAME", flex: 1, min: 16}, {title: "", flex: 1, min: 10}}}}
	p.setSize(width, height)
	p.apply()
	return p
}

func (p *picker) setSize(w, h int) {
	p.width = w
	p.filter.Width = max(w-4, 10)
	p.tbl.setSize(w, h-5)
}

func (p *picker) apply() {
	q := strings.ToLower(strings.TrimSpace(p.filter.Value()))
	p.shown = p.shown[:0]
	var rows [][]string
	for _, it := range p.items {
		if q != "" && !strings.Contains(strings.ToLower(it.label), q) {
			continue
		}
		p.shown = append(p.shown, it)
		rows = append(rows, []string{it.label, it.detail})
	}
	p.tbl.setRows(rows)
}

// update handles a key: chosen is set on enter, cancelled on esc.
func (p *picker) update(msg tea.KeyMsg) (chosen *pickItem, cancelled bool, cmd tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		return nil, true, nil
	case tea.KeyEnter:
		if p.tbl.cursor < len(p.shown) {
			it := p.shown[p.tbl.cursor]
			return &it, false, nil
		}
		return nil, false, nil
	case tea.KeyUp, tea.KeyDown, tea.KeyPgUp, tea.KeyPgDown, tea.KeyHome, tea.KeyEnd:
		p.tbl.move(msg)
		return nil, false, nil
	}
	p.filter, cmd = p.filter.Update(msg)
	p.apply()
	return nil, false, cmd
}

func (p *picker) helpKeys() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "move")),
		keys.Select, keys.Back,
	}
}

func (p *picker) view() string {
	var b strings.Builder
	b.WriteString(p.st.Title.Render(truncate(p.title, p.width)) + "\n")
	b.WriteString(p.st.Dim.Render(truncate(p.note, p.width)) + "\n")
	b.WriteString(truncate(p.filter.View(), p.width) + "\n")
	empty := "Nothing matches."
	if len(p.items) == 0 {
		empty = "Nothing to choose from."
	}
	b.WriteString(p.tbl.view(p.st, empty))
	return b.String()
}
