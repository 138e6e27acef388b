package dashboard

import (
	"net/http"
	"time"

	"github.com/agentkeys/agentkeys"
)

type authForm struct {
	Email, Workspace string
	Token            string
}

func (d *Dashboard) signupPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "signup", nil, view{Title: "Sign up", Data: authForm{Token: d.formToken(w, r)}})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "login", nil, view{Title: "Log in", Data: authForm{Token: d.formToken(w, r)}})
}

type signedUp struct {
	Workspace struct{ ID, Name string }
	APIKey    string
}

func (d *Dashboard) signup(w http.ResponseWriter, r *http.Request) {
	f := authForm{Email: r.PostFormValue("email"), Workspace: r.PostFormValue("workspace"), Token: d.formToken(w, r)}
	in := map[string]string{"email": f.Email, "password": r.PostFormValue("password"), "workspace": f.Workspace}
	var out signedUp
	status, err := d.cfg.API(r, nil, "POST", "/api/v1/signup", in, &out)
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "signup", nil, view{Title: "Sign up", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	if status == http.StatusAccepted { // the server sends email: confirm first
		d.render(w, r, http.StatusAccepted, "login", nil, view{Title: "Log in", Notice: "Check your email to confirm your sign-up, then log in.", Data: authForm{Token: f.Token}})
		return
	}
	s, err := d.startSession(w, r, f.Email, in["password"], out.Workspace.ID)
	if err != nil {
		d.failErr(w, r, nil, 0, err)
		return
	}
	d.render(w, r, http.StatusCreated, "welcome", s, view{Title: "Welcome", Data: out})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	f := authForm{Email: r.PostFormValue("email"), Token: d.formToken(w, r)}
	if _, err := d.startSession(w, r, f.Email, r.PostFormValue("password"), ""); err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "login", nil, view{Title: "Log in", Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

type loggedIn struct {
	User       struct{ ID string }
	Workspaces []struct{ ID string }
}

// startSession checks the password through the API's log-in route (its
// throttles and its one message for unknown emails and wrong passwords),
// ends any session the browser had and starts a new one in workspace wsID
// (the first of the user's when "").
func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, email, password, wsID string) (*session, error) {
	var out loggedIn
	if _, err := d.cfg.API(r, nil, "POST", "/api/v1/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return nil, err
	}
	if wsID == "" {
		if len(out.Workspaces) == 0 {
			return nil, agentkeys.Errorf(agentkeys.EFORBIDDEN, "you are not a member of any workspace on this server: ask an admin for an invitation")
		}
		wsID = out.Workspaces[0].ID
	}
	if old, err := r.Cookie(d.cookieName(r)); err == nil && old.Value != "" {
		if err := d.cfg.Sessions.DeleteSession(r.Context(), old.Value); err != nil {
			return nil, err
		}
	}
	id, err := d.cfg.Sessions.CreateSession(r.Context(), out.User.ID, wsID)
	if err != nil {
		return nil, err
	}
	return d.adopt(w, r, id)
}

// adopt gives the browser session id's cookie and returns that session.
func (d *Dashboard) adopt(w http.ResponseWriter, r *http.Request, id string) (*session, error) {
	d.setCookie(w, r, d.cookieName(r), id, int(d.cfg.Policy.Absolute/time.Second))
	a, err := d.cfg.Sessions.SessionActor(r.Context(), id, d.cfg.Policy)
	if err != nil {
		return nil, err
	}
	return &session{id: id, actor: a}, nil
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := d.cfg.Sessions.DeleteSession(r.Context(), s.id); err != nil {
		d.failErr(w, r, s, 0, err)
		return
	}
	d.setCookie(w, r, d.cookieName(r), "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
