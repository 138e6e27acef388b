package dashboard

import (
	"net/http"
	"time"

	"github.com/agentkeys/agentkeys"
)

// workspacePage is Settings → Workspace: the workspace, the rename and
// Create Workspace forms as they were filled in, and the user's other
// workspaces.
type workspacePage struct {
	Workspace struct {
		ID, Name, Plan string
		CreatedAt      time.Time
	}
	Rename, NewName string
	Workspaces      []workspaceChoice
}

func (d *Dashboard) workspace(w http.ResponseWriter, r *http.Request, s *session) {
	d.workspaceWith(w, r, s, http.StatusOK, view{}, workspacePage{})
}

func (d *Dashboard) workspaceWith(w http.ResponseWriter, r *http.Request, s *session, status int, v view, p workspacePage) {
	var out struct {
		Workspace struct {
			ID, Name, Plan string
			CreatedAt      time.Time
		}
	}
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/workspace", nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p.Workspace = out.Workspace
	if p.Rename == "" {
		p.Rename = p.Workspace.Name
	}
	wss, st, err := d.userWorkspaces(r, s)
	if err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p.Workspaces = wss
	v.Title, v.Current, v.Data = "Workspace", "settings/workspace", p
	d.render(w, r, status, "workspace", s, v)
}

// workspaceFailed shows the API's refusal on the Workspace page, with its
// status and the forms as they were.
func (d *Dashboard) workspaceFailed(w http.ResponseWriter, r *http.Request, s *session, err error, p workspacePage) {
	d.workspaceWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), view{Error: agentkeys.ErrorMessage(err)}, p)
}

func (d *Dashboard) renameWorkspace(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostFormValue("name")
	if _, err := d.cfg.API(r, s.actor, "PATCH", "/api/v1/workspace", map[string]string{"name": name}, nil); err != nil {
		d.workspaceFailed(w, r, s, err, workspacePage{Rename: name})
		return
	}
	http.Redirect(w, r, "/settings/workspace", http.StatusSeeOther)
}

// createWorkspace makes a workspace the user owns, switches the session to
// it and shows its first API key once.
func (d *Dashboard) createWorkspace(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostFormValue("name")
	var out signedUp
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/workspaces", map[string]string{"name": name}, &out); err != nil {
		d.workspaceFailed(w, r, s, err, workspacePage{NewName: name})
		return
	}
	ns, err := d.moveSession(w, r, s, out.Workspace.ID)
	if err != nil {
		d.failErr(w, r, s, 0, err)
		return
	}
	d.render(w, r, http.StatusCreated, "welcome", ns, view{Title: "Welcome", Data: out})
}

func (d *Dashboard) confirmDeleteWorkspace(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct{ Workspace struct{ Name string } }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/workspace", nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.render(w, r, http.StatusOK, "settings_confirm", s, view{Title: "Delete workspace", Current: "settings/workspace", Data: settingsConfirm{
		Heading: "Delete the workspace “" + out.Workspace.Name + "”?", Button: "Delete workspace", Cancel: "/settings/workspace",
		Text: "Every credential, agent, proxy token, API key, invitation and audit row of this workspace is deleted, and every member loses it, at once. " +
			"This cannot be undone.",
		Action: "/settings/workspace/delete", Typed: out.Workspace.Name}})
}

// deleteWorkspace deletes the session's workspace when the typed
// confirmation is its name (the API checks it: anything else is refused
// and nothing is deleted), then lands in another of the user's workspaces
// or on the log-in page.
func (d *Dashboard) deleteWorkspace(w http.ResponseWriter, r *http.Request, s *session) {
	others, st, err := d.userWorkspaces(r, s)
	if err == nil {
		st, err = d.cfg.API(r, s.actor, "DELETE", "/api/v1/workspace", map[string]string{"confirm": r.PostFormValue("confirm")}, nil)
	}
	if err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.landElsewhere(w, r, s, others, "The workspace was deleted.")
}
