package dashboard

import (
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// settingsPages are the Settings sub-pages in the order of the sub-nav,
// each with the permission that shows it.
var settingsPages = []struct {
	Name, Label string
	Perm        agentkeys.Permission
}{
	{"team", "Team", agentkeys.PermViewWorkspace},
	{"api-keys", "API Keys", agentkeys.PermManageAPIKeys},
	{"webhooks", "Webhooks", agentkeys.PermConfigureWebhooks},
	{"billing", "Billing", agentkeys.PermManageBilling},
	{"workspace", "Workspace", agentkeys.PermViewWorkspace},
}

// settingsLink is one entry of the Settings sub-nav.
type settingsLink struct {
	Href, Label string
	Current     bool
}

// SettingsPage is the Settings sub-page a view shows ("team", "api-keys",
// …), or "" outside Settings. A page's Current may be "settings/team" or
// just "team".
func (v *view) SettingsPage() string {
	name := strings.TrimPrefix(v.Current, "settings/")
	for _, p := range settingsPages {
		if p.Name == name {
			return name
		}
	}
	return ""
}

// InSettings reports whether the main nav marks Settings.
func (v *view) InSettings() bool { return v.Current == "settings" || v.SettingsPage() != "" }

// SettingsLinks is the Settings sub-nav the view's role may see (the API
// refuses the rest anyway).
func (v *view) SettingsLinks() []settingsLink {
	var out []settingsLink
	cur := v.SettingsPage()
	for _, p := range settingsPages {
		if v.Actor.Can(p.Perm) {
			out = append(out, settingsLink{Href: "/settings/" + p.Name, Label: p.Label, Current: p.Name == cur})
		}
	}
	return out
}

// settings sends /settings to the first sub-page the role may see.
func (d *Dashboard) settings(w http.ResponseWriter, r *http.Request, s *session) {
	links := (&view{Actor: s.actor}).SettingsLinks()
	if len(links) == 0 {
		d.fail(w, r, s, http.StatusForbidden, "Your role has no settings to show.")
		return
	}
	http.Redirect(w, r, links[0].Href, http.StatusSeeOther)
}

// switcher is the header's workspace switcher: the member's workspaces.
type switcher struct {
	Name       string // the current workspace's
	Workspaces []workspaceChoice
	More       bool // more than maxSwitcher: the rest are on Settings → Workspace
}

type workspaceChoice struct {
	ID, Name string
	Role     agentkeys.Role
}

// maxSwitcher caps the switcher's options (page weight).
const maxSwitcher = 100

// switcher reads the member's workspaces for the header (nil when the API
// does not answer: the header then shows no switcher).
func (d *Dashboard) switcher(r *http.Request, s *session) *switcher {
	wss, _, err := d.userWorkspaces(r, s)
	if err != nil {
		return nil
	}
	sw := &switcher{}
	for i, w := range wss {
		if w.ID == s.actor.WorkspaceID {
			sw.Name = w.Name
		}
		if i < maxSwitcher || w.ID == s.actor.WorkspaceID {
			sw.Workspaces = append(sw.Workspaces, w)
		} else {
			sw.More = true
		}
	}
	return sw
}

// switchWorkspace moves the session to the workspace the switcher names
// (the store checks membership) under a new session id, and lands on
// Credentials. A workspace the user is not in is refused with 403 and the
// session stays where it was.
func (d *Dashboard) switchWorkspace(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.moveSession(w, r, s, r.PostFormValue("workspace")); err != nil {
		d.failErr(w, r, s, 0, err)
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

// moveSession switches s to wsID, sets the new session cookie and returns
// the moved session.
func (d *Dashboard) moveSession(w http.ResponseWriter, r *http.Request, s *session, wsID string) (*session, error) {
	id, err := d.cfg.Sessions.SwitchSession(r.Context(), s.id, wsID, d.cfg.Policy)
	if err != nil {
		return nil, err
	}
	return d.adopt(w, r, id)
}

// landElsewhere is where a session goes when its workspace is gone for
// this user (deleted, or left): a new session in the first of others (the
// user's workspaces read before), else the log-in page with notice.
func (d *Dashboard) landElsewhere(w http.ResponseWriter, r *http.Request, s *session, others []workspaceChoice, notice string) {
	_ = d.cfg.Sessions.DeleteSession(r.Context(), s.id) // already gone with the membership; make sure
	for _, ws := range others {
		if ws.ID == s.actor.WorkspaceID {
			continue
		}
		id, err := d.cfg.Sessions.CreateSession(r.Context(), s.actor.UserID, ws.ID)
		if err != nil {
			continue // left or deleted meanwhile: try the next
		}
		d.setCookie(w, r, d.cookieName(r), id, int(d.cfg.Policy.Absolute/time.Second))
		http.Redirect(w, r, "/credentials", http.StatusSeeOther)
		return
	}
	d.setCookie(w, r, d.cookieName(r), "", -1)
	d.render(w, r, http.StatusOK, "login", nil, view{Title: "Log in", Notice: notice + " You are not a member of any other workspace: log in again when you are invited to one.",
		Data: authForm{Token: d.formToken(w, r)}})
}

// userWorkspaces lists the signed-in user's workspaces.
func (d *Dashboard) userWorkspaces(r *http.Request, s *session) ([]workspaceChoice, int, error) {
	var out struct{ Workspaces []workspaceChoice }
	st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/workspaces", nil, &out)
	return out.Workspaces, st, err
}

// settingsConfirm is the confirmation page of a destructive settings
// action; Typed, when set, is what the person must type (the workspace's
// name) into the field named "confirm".
type settingsConfirm struct {
	Heading, Text, Action, Button, Cancel string
	Typed                                 string
}
