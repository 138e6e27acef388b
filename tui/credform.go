package tui

import (
	"slices"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

type fieldKind int

const (
	fieldText fieldKind = iota
	fieldSecret
	fieldType
)

// formField is one line of the add-credential form.
type formField struct {
	id    string // name, type, service, value, username, password, param, hname, hvalue, hosts
	label string
	hint  string
	kind  fieldKind
	in    textinput.Model
}

// typeHelp says, for each type, how the value is sent.
var typeHelp = map[agentkeys.CredentialType]string{
	agentkeys.APIKey:       "sent as Authorization: Bearer <key>",
	agentkeys.Cookie:       "sent as Cookie: a=b; c=d",
	agentkeys.BasicAuth:    "sent as Authorization: Basic",
	agentkeys.CustomHeader: "sent as the headers you give",
	agentkeys.QueryParam:   "added to the URL as ?name=value",
	agentkeys.OAuth:        "access token, sent as Bearer",
}

// credForm is the add-credential form. Its fields follow the chosen type;
// secret fields echo bullets. The form validates with the same rules as every
// vault (CredentialInput.Normalize) before it asks the vault to write.
type credForm struct {
	st          *styles
	typ         agentkeys.CredentialType
	fields      []formField
	focus       int
	headers     int // number of header pairs (CUSTOM_HEADER)
	autoHosts   string
	hostsEdited bool
	err         string
	busy        bool
	width       int
	height      int // lines the form may take; 0: no limit
	// editing is the credential being edited (nil: adding one). Then the
	// type is fixed, there is no service field, and empty value fields
	// keep the current value.
	editing *agentkeys.Credential
}

// newEditForm is the form on an existing credential: name and allowed hosts
// filled in, value fields empty.
func newEditForm(st *styles, width, height int, c *agentkeys.Credential) *credForm {
	f := &credForm{st: st, typ: c.Type, headers: 1, width: width, height: height, editing: c}
	f.rebuild(map[string]string{"name": c.Name, "hosts": strings.Join(c.AllowedHosts, ", ")})
	f.hostsEdited = true // never replaced by a preset
	f.focusField(0)
	return f
}

func newCredForm(st *styles, width, height int) *credForm {
	f := &credForm{st: st, typ: agentkeys.APIKey, headers: 1, width: width, height: height}
	f.rebuild(nil)
	f.focusField(0)
	return f
}

func newInput(kind fieldKind, placeholder string) textinput.Model {
	in := textinput.New()
	in.Prompt = ""
	in.Placeholder = placeholder
	in.CharLimit = 8192
	in.Cursor.SetMode(cursor.CursorStatic)
	if kind == fieldSecret {
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
	}
	return in
}

// rebuild lays out the fields for f.typ, keeping values of fields that
// exist in both layouts (by id and position).
func (f *credForm) rebuild(old map[string]string) {
	if old == nil {
		old = map[string]string{}
	}
	add := func(id, label, hint string, kind fieldKind, placeholder string) {
		ff := formField{id: id, label: label, hint: hint, kind: kind}
		if kind != fieldType {
			ff.in = newInput(kind, placeholder)
			ff.in.SetValue(old[id])
		}
		f.fields = append(f.fields, ff)
	}
	f.fields = nil
	add("name", "Name", "", fieldText, "e.g. Resend Production")
	add("type", "Type", "", fieldType, "")
	if f.editing == nil {
		add("service", "Service", "a known service fills the allowed hosts", fieldText, "optional: resend, stripe, github…")
	} else {
		// Empty value fields keep the current value; the placeholders say so.
		add = func(id, label, hint string, kind fieldKind, placeholder string) {
			ff := formField{id: id, label: label, hint: hint, kind: kind}
			if kind != fieldType {
				if id != "hosts" && id != "name" {
					placeholder = "empty: keep the current value"
				}
				ff.in = newInput(kind, placeholder)
				ff.in.SetValue(old[id])
			}
			f.fields = append(f.fields, ff)
		}
	}
	switch f.typ {
	case agentkeys.APIKey:
		add("value", "API key", "", fieldSecret, "paste the key")
	case agentkeys.OAuth:
		add("value", "Access token", "", fieldSecret, "paste the access token")
	case agentkeys.Cookie:
		add("value", "Cookies", "", fieldSecret, "paste the Cookie header: a=b; c=d")
	case agentkeys.BasicAuth:
		add("username", "Username", "", fieldText, "")
		add("password", "Password", "", fieldSecret, "")
	case agentkeys.CustomHeader:
		for i := 0; i < f.headers; i++ {
			n := itoa(i + 1)
			add("hname"+n, "Header "+n+" name", "", fieldText, "x-api-key")
			add("hvalue"+n, "Header "+n+" value", "", fieldSecret, "")
		}
	case agentkeys.QueryParam:
		add("param", "Parameter", "", fieldText, "e.g. api_key")
		add("value", "Value", "", fieldSecret, "")
	}
	add("hosts", "Allowed hosts", "comma-separated; *.example.com for subdomains", fieldText, "api.example.com")
	f.setWidth(f.width)
}

func (f *credForm) values() map[string]string {
	m := map[string]string{}
	for _, ff := range f.fields {
		if ff.kind != fieldType {
			m[ff.id] = ff.in.Value()
		}
	}
	return m
}

func (f *credForm) get(id string) string {
	for _, ff := range f.fields {
		if ff.id == id {
			return ff.in.Value()
		}
	}
	return ""
}

func (f *credForm) set(id, v string) {
	for i := range f.fields {
		if f.fields[i].id == id {
			f.fields[i].in.SetValue(v)
		}
	}
}

// setSize sets the width and the number of lines the form may take.
func (f *credForm) setSize(w, h int) {
	f.height = h
	f.setWidth(w)
}

func (f *credForm) setWidth(w int) {
	f.width = w
	for i := range f.fields {
		f.fields[i].in.Width = max(min(w-25, 60), 10)
	}
}

func (f *credForm) focusField(i int) {
	if i < 0 {
		i = len(f.fields) - 1
	}
	if i >= len(f.fields) {
		i = 0
	}
	for j := range f.fields {
		f.fields[j].in.Blur()
	}
	f.focus = i
	if f.fields[i].kind != fieldType {
		f.fields[i].in.Focus()
	}
}

// wipe clears every field, so no secret stays in the model after the form
// closes.
func (f *credForm) wipe() {
	for i := range f.fields {
		f.fields[i].in.SetValue("")
		f.fields[i].in.Reset()
	}
}

// setType switches the credential type and re-lays out the fields.
func (f *credForm) setType(t agentkeys.CredentialType) {
	if t == f.typ {
		return
	}
	old := f.values()
	f.typ = t
	f.rebuild(old)
	f.focusField(1)
}

func (f *credForm) cycleType(dir int) {
	if f.editing != nil {
		return // the type of a credential cannot change
	}
	types := agentkeys.CredentialTypes
	i := 0
	for j, t := range types {
		if t == f.typ {
			i = j
		}
	}
	f.setType(types[(i+dir+len(types))%len(types)])
}

// refreshHosts fills the allowed hosts from the preset named by the service
// field, or recognised from the name, until the user edits them.
func (f *credForm) refreshHosts() {
	cur := f.get("hosts")
	if f.hostsEdited && strings.TrimSpace(cur) != "" {
		return
	}
	auto := ""
	if svc := strings.TrimSpace(f.get("service")); svc != "" {
		if p, ok := agentkeys.LookupPreset(svc); ok {
			auto = strings.Join(p.Hosts, ", ")
		}
	} else if p, ok := agentkeys.RecognisePreset(f.get("name")); ok {
		auto = strings.Join(p.Hosts, ", ")
	}
	f.autoHosts = auto
	f.hostsEdited = false
	f.set("hosts", auto)
}

// input builds the CredentialInput the form describes.
func (f *credForm) input() *agentkeys.CredentialInput {
	in := &agentkeys.CredentialInput{
		Name:    f.get("name"),
		Type:    f.typ,
		Service: strings.TrimSpace(f.get("service")),
	}
	for _, h := range strings.FieldsFunc(f.get("hosts"), func(r rune) bool { return r == ',' || r == ' ' }) {
		in.AllowedHosts = append(in.AllowedHosts, h)
	}
	switch f.typ {
	case agentkeys.APIKey, agentkeys.OAuth, agentkeys.Cookie:
		in.Secret.Value = strings.TrimSpace(f.get("value"))
	case agentkeys.BasicAuth:
		in.Secret.Username = strings.TrimSpace(f.get("username"))
		in.Secret.Password = f.get("password")
	case agentkeys.QueryParam:
		in.Secret.Param = strings.TrimSpace(f.get("param"))
		in.Secret.Value = strings.TrimSpace(f.get("value"))
	case agentkeys.CustomHeader:
		for i := 1; i <= f.headers; i++ {
			n := itoa(i)
			name, value := strings.TrimSpace(f.get("hname"+n)), strings.TrimSpace(f.get("hvalue"+n))
			if name == "" && value == "" {
				continue
			}
			in.Secret.Headers = append(in.Secret.Headers, agentkeys.Header{Name: name, Value: value})
		}
	}
	return in
}

// validate checks the form with the vault's own rules. It returns the input
// to send, or "" and sets f.err.
func (f *credForm) validate() (*agentkeys.CredentialInput, bool) {
	if f.editing != nil {
		return f.validateEdit()
	}
	in := f.input()
	check := *in
	check.AllowedHosts = append([]string(nil), in.AllowedHosts...)
	check.Secret.Headers = append([]agentkeys.Header(nil), in.Secret.Headers...)
	if err := check.Normalize(); err != nil {
		msg := plainError(err)
		// The vault's messages name CLI flags; say it the form's way.
		msg = strings.ReplaceAll(msg, "give one with --name", "type one in the Name field")
		if strings.Contains(msg, "has no allowed hosts") {
			msg = "no allowed hosts: type the hosts this credential may be sent to (api.example.com, *.example.com), or a known service (" + strings.Join(agentkeys.PresetNames(), ", ") + ")"
		}
		f.err = msg
		return nil, false
	}
	f.err = ""
	return in, true
}

// secretGiven reports whether any value field of the form is filled in.
func (f *credForm) secretGiven() bool {
	for _, ff := range f.fields {
		if ff.kind == fieldSecret || ff.id == "username" || ff.id == "param" || strings.HasPrefix(ff.id, "hname") {
			if strings.TrimSpace(ff.in.Value()) != "" {
				return true
			}
		}
	}
	return false
}

// validateEdit checks an edit: the name and hosts with the vault's rules,
// and, when any value field is filled in, the whole new value for the type.
func (f *credForm) validateEdit() (*agentkeys.CredentialInput, bool) {
	in := f.input()
	if _, err := agentkeys.ValidateName("credential", in.Name); err != nil {
		f.err = strings.ReplaceAll(plainError(err), "give one with --name", "type one in the Name field")
		return nil, false
	}
	if len(in.AllowedHosts) == 0 {
		f.err = "no allowed hosts: type the hosts this credential may be sent to (api.example.com, *.example.com)"
		return nil, false
	}
	if _, err := agentkeys.ParseAllowedHosts(in.AllowedHosts); err != nil {
		f.err = plainError(err)
		return nil, false
	}
	if f.secretGiven() {
		if err := in.Secret.Validate(f.typ); err != nil {
			f.err = plainError(err) + " (or leave every value field empty to keep the current value)"
			return nil, false
		}
	}
	f.err = ""
	return in, true
}

// changes is the update an edit form's input makes: the name and hosts
// when they differ, the value when any value field was filled in.
func (f *credForm) changes(in *agentkeys.CredentialInput) *agentkeys.CredentialUpdate {
	upd := &agentkeys.CredentialUpdate{}
	if name := strings.TrimSpace(in.Name); name != f.editing.Name {
		upd.Name = &name
	}
	if strings.Join(in.AllowedHosts, ",") != strings.Join(f.editing.AllowedHosts, ",") {
		upd.AllowedHosts = in.AllowedHosts
	}
	if f.secretGiven() {
		sec := in.Secret
		upd.Secret = &sec
	}
	return upd
}

// update handles a key in the form. submit is true when the user asked to
// save and the form is valid; then in is what to create.
func (f *credForm) update(msg tea.Msg) (in *agentkeys.CredentialInput, submit bool, cmd tea.Cmd) {
	km, isKey := msg.(tea.KeyMsg)
	if !isKey {
		return nil, false, nil
	}
	if f.busy {
		return nil, false, nil
	}
	cur := &f.fields[f.focus]
	switch {
	case key.Matches(km, keys.Submit):
		in, ok := f.validate()
		return in, ok, nil
	case km.Type == tea.KeyEnter:
		if f.focus == len(f.fields)-1 {
			in, ok := f.validate()
			return in, ok, nil
		}
		f.focusField(f.focus + 1)
		return nil, false, nil
	case key.Matches(km, keys.NextField):
		f.focusField(f.focus + 1)
		return nil, false, nil
	case key.Matches(km, keys.PrevField):
		f.focusField(f.focus - 1)
		return nil, false, nil
	case f.typ == agentkeys.CustomHeader && key.Matches(km, keys.AddHeader):
		old := f.values()
		f.headers++
		f.rebuild(old)
		f.focusField(f.index("hname" + itoa(f.headers)))
		return nil, false, nil
	case f.typ == agentkeys.CustomHeader && key.Matches(km, keys.DropHeader) && f.headers > 1:
		f.dropHeader()
		return nil, false, nil
	}
	if cur.kind == fieldType {
		switch km.String() {
		case "left", "h":
			f.cycleType(-1)
		case "right", "l", " ":
			f.cycleType(1)
		}
		return nil, false, nil
	}
	before := cur.in.Value()
	cur.in, cmd = cur.in.Update(km)
	if cur.in.Value() != before {
		switch cur.id {
		case "name", "service":
			f.refreshHosts()
		case "hosts":
			f.hostsEdited = cur.in.Value() != f.autoHosts
		}
	}
	return nil, false, cmd
}

func (f *credForm) index(id string) int {
	for i, ff := range f.fields {
		if ff.id == id {
			return i
		}
	}
	return 0
}

// dropHeader removes the header pair the focus is on (or the last one).
func (f *credForm) dropHeader() {
	id := f.fields[f.focus].id
	drop := f.headers
	if strings.HasPrefix(id, "hname") || strings.HasPrefix(id, "hvalue") {
		n := strings.TrimLeft(id, "hnamevlu")
		for i := 1; i <= f.headers; i++ {
			if itoa(i) == n {
				drop = i
			}
		}
	}
	old := f.values()
	shifted := map[string]string{}
	for k, v := range old {
		shifted[k] = v
	}
	for i := drop; i < f.headers; i++ {
		shifted["hname"+itoa(i)] = old["hname"+itoa(i+1)]
		shifted["hvalue"+itoa(i)] = old["hvalue"+itoa(i+1)]
	}
	f.headers--
	f.rebuild(shifted)
	f.focusField(f.index("hname" + itoa(min(drop, f.headers))))
}

// helpKeys lists the form's keys: those of the focused field and the type
// first, so a narrow help line drops the field moves (tab is what everyone
// tries) rather than them; save and back are always shown.
func (f *credForm) helpKeys() []key.Binding {
	var ks []key.Binding
	if f.fields[f.focus].kind == fieldType {
		ks = append(ks, keys.CycleType)
	}
	if f.typ == agentkeys.CustomHeader {
		ks = append(ks, keys.AddHeader)
		if f.headers > 1 {
			ks = append(ks, keys.DropHeader)
		}
	}
	return append(ks, keys.NextField, keys.PrevField, keys.Submit, keys.Back)
}

func (f *credForm) view() string {
	st := f.st
	var lines []string
	focusFrom, focusTo := 0, 0 // the focused field's lines
	for i, ff := range f.fields {
		if i == f.focus {
			focusFrom = len(lines)
		}
		marker, label := "  ", st.Label
		if i == f.focus {
			marker, label = "› ", st.FocusLabel
		}
		var value string
		switch ff.kind {
		case fieldType:
			value = "‹ " + string(f.typ) + " ›  " + st.Dim.Render(typeHelp[f.typ])
		default:
			// Filled or empty, every box is as wide as the input.
			v := ff.in.View()
			value = "[" + v + strings.Repeat(" ", max(0, ff.in.Width+1-lipgloss.Width(v))) + "]"
		}
		if ff.kind == fieldType && f.editing != nil {
			value = string(f.typ) + " (fixed)  " + st.Dim.Render(typeHelp[f.typ])
		}
		line := marker + label.Render(pad(ff.label, 19)) + value
		lines = append(lines, truncate(line, f.width))
		if ff.id == "value" && f.typ == agentkeys.Cookie && ff.in.Value() != "" {
			names := cookieNames(ff.in.Value())
			note := "no cookies recognised yet: paste name=value; name2=value2"
			if len(names) > 0 {
				note = itoa(len(names)) + " cookies: " + strings.Join(names, ", ")
			}
			lines = append(lines, truncate(strings.Repeat(" ", 21)+st.Dim.Render(note), f.width))
		}
		if i == f.focus && ff.hint != "" {
			lines = append(lines, truncate(strings.Repeat(" ", 21)+st.Dim.Render(ff.hint), f.width))
		}
		if i == f.focus {
			focusTo = len(lines)
		}
	}
	var footer string
	switch {
	case f.busy:
		footer = st.Dim.Render("Saving…")
	case f.err != "":
		footer = wrap(st.Error.Render("✗ "+f.err), f.width)
	default:
		footer = st.Dim.Render("Secret fields are hidden as you type and never shown again.")
	}
	// Title, blank line, fields, blank line, footer. When that is taller than
	// the screen, the fields scroll so the focused one and the footer (where
	// errors appear) stay in view.
	if room := f.height - 3 - lipgloss.Height(footer); f.height > 0 && room >= 3 && len(lines) > room {
		off := max(min(focusTo-room, focusFrom), 0)
		off = min(off, len(lines)-room)
		above, below := off > 0, off+room < len(lines)
		lines = slices.Clone(lines[off : off+room])
		if above && focusFrom > off {
			lines[0] = st.Dim.Render("  ↑ more fields")
		}
		if below && focusTo < off+room {
			lines[room-1] = st.Dim.Render("  ↓ more fields")
		}
	}
	title := "Add a credential"
	if f.editing != nil {
		title = "Edit " + f.editing.Name
	}
	return st.Title.Render(title) + "\n\n" + strings.Join(lines, "\n") + "\n\n" + footer
}

// cookieNames lists the names of the name=value pairs in a pasted Cookie
// header. A part without '=' is skipped: it may be a bare secret pasted by
// mistake, and names are the only thing the form ever echoes.
func cookieNames(v string) []string {
	var names []string
	for _, part := range strings.Split(v, ";") {
		name, _, ok := strings.Cut(strings.TrimSpace(part), "=")
		if name = strings.TrimSpace(name); ok && name != "" {
			names = append(names, name)
		}
	}
	return names
}
