package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/agentkeys/agentkeys"
)

// acceptForm is the page an invitation link opens: what the invitation is
// (Info nil when the token opens none) and the form to accept it.
type acceptForm struct {
	Token     string // the invitation token (from the link)
	FormToken string // the double-submit CSRF token
	Info      *invitationInfo
}

// invitationInfo is what the API tells a token's holder.
type invitationInfo struct {
	Email, Workspace string
	Role             agentkeys.Role
	ExpiresAt        time.Time
	Expired          bool
}

// lookup asks the API what token opens. An expired invitation is refused
// here as accepting it would be (EINVALID, nothing written).
func (d *Dashboard) lookup(r *http.Request, token string) (*invitationInfo, int, error) {
	var out struct{ Invitation invitationInfo }
	st, err := d.cfg.API(r, nil, "GET", "/api/v1/invitations/accept?token="+url.QueryEscape(token), nil, &out)
	if err != nil {
		return nil, st, err
	}
	if out.Invitation.Expired {
		return nil, http.StatusBadRequest, agentkeys.Errorf(agentkeys.EINVALID, "this invitation expired on %s: ask the workspace's owner or an admin to re-send it",
			out.Invitation.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return &out.Invitation, st, nil
}

// acceptPage answers GET /invitations/accept?token=…: the invitation and a
// password field (a new user chooses one, an existing user gives theirs),
// or, for an unknown, used, cancelled or expired token, the API's refusal
// with its status.
func (d *Dashboard) acceptPage(w http.ResponseWriter, r *http.Request) {
	f := acceptForm{Token: r.URL.Query().Get("token"), FormToken: d.formToken(w, r)}
	info, st, err := d.lookup(r, f.Token)
	if err != nil {
		d.render(w, r, st, "invitation_accept", nil, view{Title: "Invitation", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	f.Info = info
	d.render(w, r, http.StatusOK, "invitation_accept", nil, view{Title: "Join " + info.Workspace, Data: f})
}

// accept answers POST /invitations/accept {token, password, csrf}: joins
// through the API, then starts a session in the workspace joined and shows
// its new API key once.
func (d *Dashboard) accept(w http.ResponseWriter, r *http.Request) {
	f := acceptForm{Token: r.PostFormValue("token"), FormToken: d.formToken(w, r)}
	password := r.PostFormValue("password")
	var out struct {
		Workspace struct{ ID, Name string }
		Email     string
		APIKey    string
	}
	st, err := d.cfg.API(r, nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": f.Token, "password": password}, &out)
	if err != nil {
		f.Info, _, _ = d.lookup(r, f.Token) // still open (a wrong password): the form again
		d.render(w, r, st, "invitation_accept", nil, view{Title: "Invitation", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	var welcome signedUp
	welcome.Workspace.ID, welcome.Workspace.Name, welcome.APIKey = out.Workspace.ID, out.Workspace.Name, out.APIKey
	s, err := d.startSession(w, r, out.Email, password, out.Workspace.ID)
	if err != nil { // joined, but not signed in (a throttled log-in): say so, and show the key
		d.render(w, r, http.StatusCreated, "welcome", nil, view{Title: "Welcome",
			Notice: "You joined " + out.Workspace.Name + ", but could not be signed in (" + agentkeys.ErrorMessage(err) + "): log in to continue.", Data: welcome})
		return
	}
	d.render(w, r, http.StatusCreated, "welcome", s, view{Title: "Welcome", Data: welcome})
}
