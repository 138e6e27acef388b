package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/agentkeys/agentkeys"
)

// member and invitation are the API's answers as the Team page shows them.
type member struct {
	UserID, Email string
	Role          agentkeys.Role
	JoinedAt      time.Time
}

type invitation struct {
	ID, Email         string
	Role              agentkeys.Role
	SentAt, ExpiresAt time.Time
	AcceptURL         string
	EmailSent         bool
	EmailError        string
}

// teamPage is Settings → Team: the members, the pending invitations (for
// those who may invite), the invite form as it was filled in, and a link
// just made (shown this once, when no email carried it).
type teamPage struct {
	Members     []member
	Invitations []invitation
	Roles       []agentkeys.Role
	Email, Role string
	Link        string
	Now         time.Time
}

func (d *Dashboard) team(w http.ResponseWriter, r *http.Request, s *session) {
	d.teamWith(w, r, s, http.StatusOK, view{}, teamPage{Role: string(agentkeys.RoleMember)})
}

// teamWith renders the Team page with v's error or notice and p's form.
func (d *Dashboard) teamWith(w http.ResponseWriter, r *http.Request, s *session, status int, v view, p teamPage) {
	var ms struct{ Members []member }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/members", nil, &ms); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p.Members, p.Roles, p.Now = ms.Members, agentkeys.Roles, time.Now()
	if s.actor.Can(agentkeys.PermInviteMembers) {
		var is struct{ Invitations []invitation }
		if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/invitations", nil, &is); err != nil {
			d.failErr(w, r, s, st, err)
			return
		}
		p.Invitations = is.Invitations
	}
	v.Title, v.Current, v.Data = "Team", "settings/team", p
	d.render(w, r, status, "team", s, v)
}

// teamFailed renders the Team page with the API's refusal and its status.
func (d *Dashboard) teamFailed(w http.ResponseWriter, r *http.Request, s *session, err error, p teamPage) {
	d.teamWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), view{Error: agentkeys.ErrorMessage(err)}, p)
}

func (d *Dashboard) invite(w http.ResponseWriter, r *http.Request, s *session) {
	f := teamPage{Email: r.PostFormValue("email"), Role: r.PostFormValue("role")}
	var inv invitation
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/invitations", map[string]string{"email": f.Email, "role": f.Role}, &inv); err != nil {
		d.teamFailed(w, r, s, err, f)
		return
	}
	d.invited(w, r, s, http.StatusCreated, "Invited", inv)
}

// invited shows the Team page after an invitation was sent or re-sent:
// where it went, or its link to pass on (shown this once).
func (d *Dashboard) invited(w http.ResponseWriter, r *http.Request, s *session, status int, what string, inv invitation) {
	v := view{Notice: what + " " + inv.Email + " as " + string(inv.Role) + ": an email with the link is on its way."}
	p := teamPage{Role: string(agentkeys.RoleMember)}
	if !inv.EmailSent {
		v.Notice = what + " " + inv.Email + " as " + string(inv.Role) + ". Send them the link below (shown only this once; re-send the invitation for a new one)."
		if inv.EmailError != "" {
			v.Notice = what + " " + inv.Email + " as " + string(inv.Role) + ", but " + inv.EmailError + "."
		}
		p.Link = inv.AcceptURL
	}
	d.teamWith(w, r, s, status, v, p)
}

func (d *Dashboard) resendInvitation(w http.ResponseWriter, r *http.Request, s *session) {
	var inv invitation
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/invitations/"+url.PathEscape(r.PathValue("id"))+"/resend", nil, &inv); err != nil {
		d.teamFailed(w, r, s, err, teamPage{Role: string(agentkeys.RoleMember)})
		return
	}
	d.invited(w, r, s, http.StatusOK, "Re-sent the invitation of", inv)
}

func (d *Dashboard) cancelInvitation(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/invitations/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.teamFailed(w, r, s, err, teamPage{Role: string(agentkeys.RoleMember)})
		return
	}
	http.Redirect(w, r, "/settings/team", http.StatusSeeOther)
}

func (d *Dashboard) setRole(w http.ResponseWriter, r *http.Request, s *session) {
	var m member
	if _, err := d.cfg.API(r, s.actor, "PATCH", "/api/v1/members/"+url.PathEscape(r.PathValue("userId")),
		map[string]string{"role": r.PostFormValue("role")}, &m); err != nil {
		d.teamFailed(w, r, s, err, teamPage{Role: string(agentkeys.RoleMember)})
		return
	}
	http.Redirect(w, r, "/settings/team", http.StatusSeeOther)
}

// memberNamed finds member userID of the session's workspace.
func (d *Dashboard) memberNamed(r *http.Request, s *session, userID string) (*member, int, error) {
	var ms struct{ Members []member }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/members", nil, &ms); err != nil {
		return nil, st, err
	}
	for _, m := range ms.Members {
		if m.UserID == userID {
			return &m, http.StatusOK, nil
		}
	}
	return nil, http.StatusNotFound, agentkeys.Errorf(agentkeys.ENOTFOUND, "no member %q in this workspace", userID)
}

func (d *Dashboard) confirmRemoveMember(w http.ResponseWriter, r *http.Request, s *session) {
	m, st, err := d.memberNamed(r, s, r.PathValue("userId"))
	if err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	c := settingsConfirm{Heading: "Remove " + m.Email + " from the workspace?", Button: "Remove member", Cancel: "/settings/team",
		Text:   "Their API keys and dashboard sessions in this workspace stop working at once. Invite them again to undo.",
		Action: "/settings/team/" + url.PathEscape(m.UserID) + "/remove"}
	if m.UserID == s.actor.UserID {
		c.Heading, c.Button = "Leave the workspace?", "Leave workspace"
		c.Text = "Your API keys and sessions in this workspace stop working at once; an owner or admin must invite you to come back."
	}
	d.render(w, r, http.StatusOK, "settings_confirm", s, view{Title: c.Button, Current: "settings/team", Data: c})
}

// removeMember removes a member, or lets the signed-in member leave (then
// the session lands in another of their workspaces, or on the log-in page).
func (d *Dashboard) removeMember(w http.ResponseWriter, r *http.Request, s *session) {
	userID := r.PathValue("userId")
	var others []workspaceChoice
	if userID == s.actor.UserID {
		others, _, _ = d.userWorkspaces(r, s)
	}
	if _, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/members/"+url.PathEscape(userID), nil, nil); err != nil {
		d.teamFailed(w, r, s, err, teamPage{Role: string(agentkeys.RoleMember)})
		return
	}
	if userID == s.actor.UserID {
		d.landElsewhere(w, r, s, others, "You left the workspace.")
		return
	}
	http.Redirect(w, r, "/settings/team", http.StatusSeeOther)
}
