package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key binding of the app, in one place. Screens pick the
// bindings that work on them for the help line; the root handles the global
// ones (screen switching, help, quit).
type keyMap struct {
	// global
	Quit      key.Binding
	ForceQuit key.Binding
	Help      key.Binding
	NextTab   key.Binding
	PrevTab   key.Binding
	Screen1   key.Binding
	Screen2   key.Binding
	Screen3   key.Binding
	Screen4   key.Binding
	Back      key.Binding

	// lists
	Move     key.Binding // help only: the short form of Up and Down
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Filter   key.Binding
	Refresh  key.Binding
	Open     key.Binding

	// actions
	Add      key.Binding
	Edit     key.Binding
	Delete   key.Binding
	Assign   key.Binding
	Revoke   key.Binding
	Copy     key.Binding
	Confirm  key.Binding
	Cancel   key.Binding
	Close    key.Binding
	Select   key.Binding
	ClearFil key.Binding

	// forms
	NextField  key.Binding
	PrevField  key.Binding
	Submit     key.Binding
	CycleType  key.Binding
	AddHeader  key.Binding
	DropHeader key.Binding
	Apply      key.Binding
}

// keys is the app's keymap.
var keys = keyMap{
	Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
	ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
	Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "all keys")),
	NextTab:   key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next screen")),
	PrevTab:   key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous screen")),
	Screen1:   key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "credentials")),
	Screen2:   key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "agents")),
	Screen3:   key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "audit")),
	Screen4:   key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "status")),
	Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),

	Move:     key.NewBinding(key.WithKeys("up", "down", "k", "j"), key.WithHelp("↑/↓", "move")),
	Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "page up")),
	PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+d", " "), key.WithHelp("pgdn", "page down")),
	Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first")),
	Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last")),
	Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
	Refresh:  key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "reload")),
	Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),

	Add:      key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new")),
	Edit:     key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit")),
	Delete:   key.NewBinding(key.WithKeys("d", "delete"), key.WithHelp("d", "delete")),
	Assign:   key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "assign")),
	Revoke:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "revoke")),
	Copy:     key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "copy token")),
	Confirm:  key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes, do it")),
	Cancel:   key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "cancel")),
	Close:    key.NewBinding(key.WithKeys("esc", "enter"), key.WithHelp("enter/esc", "close")),
	Select:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),
	ClearFil: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "clear filter")),

	NextField:  key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab/↓", "next field")),
	PrevField:  key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab/↑", "previous field")),
	Submit:     key.NewBinding(key.WithKeys("ctrl+s"), key.WithHelp("ctrl+s", "save")),
	CycleType:  key.NewBinding(key.WithKeys("left", "right"), key.WithHelp("←/→", "change type")),
	AddHeader:  key.NewBinding(key.WithKeys("ctrl+n"), key.WithHelp("ctrl+n", "add header")),
	DropHeader: key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "drop header")),
	Apply:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
}

// globalKeys are the bindings shown on every screen after its own.
func globalKeys() []key.Binding {
	return []key.Binding{keys.NextTab, keys.Help, keys.Quit}
}

// globalFullKeys is the global column of the full help.
func globalFullKeys() []key.Binding {
	return []key.Binding{keys.NextTab, keys.PrevTab, keys.Screen1, keys.Screen2, keys.Screen3, keys.Screen4, keys.Help, keys.Quit, keys.ForceQuit}
}
