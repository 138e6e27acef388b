package server

import (
	"net/http"
	"net/url"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// invitationAnswer is an invitation as the API shows it in the answer that
// creates or re-sends it: with an acceptUrl (whose token query parameter is
// the invitation token) when no email carried it.
type invitationAnswer struct {
	*store.Invitation
	AcceptURL string `json:"acceptUrl,omitempty"`
	// EmailSent is true when the invitation went out by email; EmailError
	// says why it did not (the invitation stays, and acceptUrl is given).
	EmailSent  bool   `json:"emailSent"`
	EmailError string `json:"emailError,omitempty"`
}

// deliver emails the invitation when a mailer is configured, and otherwise
// (or when sending fails) puts the link in the answer.
func (s *Server) deliver(r *http.Request, a *agentkeys.Actor, inv *store.Invitation) invitationAnswer {
	out := invitationAnswer{Invitation: inv}
	link := s.acceptURL(r, inv.Token)
	if s.cfg.Mailer == nil {
		out.AcceptURL = link
		return out
	}
	ws, err := s.store.WorkspaceInfo(r.Context(), a.WorkspaceID)
	if err == nil {
		err = s.cfg.Mailer.Send(r.Context(), inv.Email, "You are invited to "+ws.Name+" on agentkeys", invitationMail(a.Email, ws.Name, inv, link))
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "invitation email not sent", "invitation", inv.ID, "error", agentkeys.ErrorMessage(err))
		out.AcceptURL, out.EmailError = link, agentkeys.ErrorMessage(err)+": the invitation stays; pass the acceptUrl on yourself, or re-send it"
		return out
	}
	out.EmailSent = true
	return out
}

// invitationMail is the text of an invitation email.
func invitationMail(from, workspace string, inv *store.Invitation, link string) string {
	return from + " invited you to the workspace \"" + workspace + "\" on agentkeys, as " + string(inv.Role) + ".\n\n" +
		"To accept, open this link or run `agentkeys team accept '<link>'` (you set a password if you are new,\n" +
		"or give yours if you already have an account):\n\n" + link + "\n\n" +
		"The invitation expires on " + inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC") + ". If you did not expect it, ignore this email.\n"
}

type invitationRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

// acceptURL is the link an invited person follows: the dashboard's
// accept page (set a password, or give yours, and be signed in), which
// `agentkeys team accept '<link>'` takes too (it reads the server from the
// link and POSTs the token to /api/v1/invitations/accept).
func (s *Server) acceptURL(r *http.Request, token string) string {
	return s.linkBase(r) + "/invitations/accept?token=" + url.QueryEscape(token)
}

// linkBase is the address links in answers and emails point to:
// Config.PublicURL, else the server's URL as this request reached it.
func (s *Server) linkBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return s.baseURL(r)
}

// listInvitations answers GET /api/v1/invitations.
func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	invs, err := s.store.ListInvitations(r.Context(), a.WorkspaceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitations": invs})
	return nil
}

// createInvitation answers POST /api/v1/invitations {"email","role"}.
func (s *Server) createInvitation(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in invitationRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	role, err := agentkeys.ParseRole(in.Role)
	if err != nil {
		return err
	}
	inv, err := s.store.CreateInvitation(r.Context(), a, in.Email, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.deliver(r, a, inv))
	return nil
}

// resendInvitation answers POST /api/v1/invitations/{id}/resend: a new link
// and a new expiry; the old link stops working.
func (s *Server) resendInvitation(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	inv, err := s.store.ResendInvitation(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.deliver(r, a, inv))
	return nil
}

// cancelInvitation answers DELETE /api/v1/invitations/{id}.
func (s *Server) cancelInvitation(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.store.CancelInvitation(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type acceptRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// acceptInvitation answers POST /api/v1/invitations/accept
// {"token","password"}: public, throttled as login is.
func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request) error {
	var in acceptRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing token: give the token of the invitation link")
	}
	if err := s.throttle(w, r, "login", s.cfg.LoginPerIP, s.cfg.LoginPerEmail, ""); err != nil {
		return err
	}
	release, err := s.hashing(w)
	if err != nil {
		return err
	}
	defer release()
	out, err := s.store.AcceptInvitation(r.Context(), in.Token, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// invitationByToken answers GET /api/v1/invitations/accept?token=…, where
// the link in an invitation leads: what the invitation is, and how to
// accept it. Public; throttled as accepting is.
func (s *Server) invitationByToken(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "token")
	if err != nil {
		return err
	}
	token := q.Get("token")
	if token == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing token: open the link of the invitation email")
	}
	if err := s.throttle(w, r, "login", s.cfg.LoginPerIP, s.cfg.LoginPerEmail, ""); err != nil {
		return err
	}
	inv, err := s.store.LookupInvitation(r.Context(), token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"invitation": inv,
		"howToAccept": "open " + s.linkBase(r) + "/invitations/accept?token=… in a browser, or run: agentkeys team accept '<that link>', " +
			"or POST {\"token\", \"password\"} to this URL; a new user sets a password, an existing one gives theirs",
	})
	return nil
}
