package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

type signupRequest struct {
	Email     string `json:"email"`
	Password  string `json:"password"`
	Workspace string `json:"workspace"`
}

type signupResponse struct {
	Workspace struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"workspace"`
	APIKey string `json:"apiKey"`
}

// signup answers POST /api/v1/signup: a new user, workspace and key (shown
// once). 403 when sign-up is closed; 429 when too many sign-ups are being
// hashed at once, or too many came from the client's address or for the
// email (throttle.go).
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Signup == SignupClosed {
		return agentkeys.Errorf(agentkeys.EFORBIDDEN, "sign-up is closed on this server: ask its operator for a workspace (`agentkeys serve create-workspace`)")
	}
	var in signupRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := s.throttle(w, r, "signup", s.cfg.SignupPerIP, s.cfg.SignupPerEmail, in.Email); err != nil {
		return err
	}
	release, err := s.hashing(w)
	if err != nil {
		return err
	}
	defer release()
	if s.cfg.Mailer != nil {
		return s.signupByEmail(w, r, in)
	}
	ws, err := s.store.CreateWorkspace(r.Context(), store.NewWorkspace{Email: in.Email, Password: in.Password, RequirePassword: true, Name: in.Workspace})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created(ws))
	return nil
}

// signupPending is sign-up's answer on a server that sends email: the same
// whether or not the email has an account.
type signupPending struct {
	Status string `json:"status"`
	Email  string `json:"email"`
}

// signupByEmail is sign-up when the server sends email: a new email gets a
// confirmation link (POST /api/v1/signup/confirm makes the account, its
// workspace and key), an email with an account gets a note saying so; the
// answer is 202 "check your email" either way, so it does not tell who has
// an account.
func (s *Server) signupByEmail(w http.ResponseWriter, r *http.Request, in signupRequest) error {
	p, err := s.store.StartSignup(r.Context(), store.NewWorkspace{Email: in.Email, Password: in.Password, Name: in.Workspace})
	if err != nil {
		return err
	}
	base := s.linkBase(r)
	subject, body := "Confirm your agentkeys sign-up", "Someone (you, we hope) signed up for agentkeys at "+base+
		" with this email. To create your account and workspace, confirm within 24 hours:\n\n"+
		"    curl -X POST "+base+"/api/v1/signup/confirm -d '{\"token\": \""+p.Token+"\"}'\n\n"+
		"The answer holds your workspace's API key (shown once). If it was not you, ignore this email.\n"
	if p.Exists {
		subject, body = "Your agentkeys sign-up", "Someone (you, we hope) tried to sign up for agentkeys at "+base+
			" with this email, which already has an account. Log in instead: agentkeys login --server "+base+" --email "+p.Email+
			"\n\nIf it was not you, you can ignore this email: nothing was changed.\n"
	}
	if err := s.cfg.Mailer.Send(r.Context(), p.Email, subject, body); err != nil {
		s.log.WarnContext(r.Context(), "sign-up email not sent", "error", agentkeys.ErrorMessage(err))
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "could not send the confirmation email: try again later")
	}
	writeJSON(w, http.StatusAccepted, signupPending{Status: "check your email", Email: p.Email})
	return nil
}

type confirmRequest struct {
	Token string `json:"token"`
}

// confirmSignup answers POST /api/v1/signup/confirm {"token"}: the
// account, its workspace and key, in sign-up's answer shape.
func (s *Server) confirmSignup(w http.ResponseWriter, r *http.Request) error {
	var in confirmRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing token: give the token of the confirmation email")
	}
	if err := s.throttle(w, r, "login", s.cfg.LoginPerIP, s.cfg.LoginPerEmail, ""); err != nil {
		return err
	}
	ws, err := s.store.ConfirmSignup(r.Context(), in.Token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created(ws))
	return nil
}

// created is a new workspace and its key in sign-up's answer shape.
func created(ws *store.CreatedWorkspace) signupResponse {
	var out signupResponse
	out.Workspace.ID, out.Workspace.Name, out.APIKey = ws.ID, ws.Name, ws.APIKey
	return out
}

// loginRequest is POST /api/v1/login. Without WorkspaceID the answer lists
// the user's workspaces; with it, a new API key for that membership.
type loginRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	WorkspaceID string `json:"workspaceId"`
	KeyName     string `json:"keyName"`
}

// loginResponse is the answer to a login: the user's workspaces, or (with
// workspaceId) that workspace, the role and a key shown once.
type loginResponse struct {
	User       *store.User           `json:"user"`
	Workspaces []store.UserWorkspace `json:"workspaces,omitempty"`
	Workspace  *store.UserWorkspace  `json:"workspace,omitempty"`
	APIKey     string                `json:"apiKey,omitempty"`
}

// login answers POST /api/v1/login: email and password (throttled per
// address and per email; one answer, 401 "wrong email or password", for an
// unknown email and a wrong password alike).
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var in loginRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := s.throttle(w, r, "login", s.cfg.LoginPerIP, s.cfg.LoginPerEmail, in.Email); err != nil {
		return err
	}
	release, err := s.hashing(w)
	if err != nil {
		return err
	}
	defer release()
	u, err := s.store.Login(r.Context(), in.Email, in.Password)
	if err != nil {
		return err
	}
	wss, err := s.store.UserWorkspaces(r.Context(), u.ID)
	if err != nil {
		return err
	}
	out := loginResponse{User: u}
	if in.WorkspaceID == "" {
		out.Workspaces = wss
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	for i := range wss {
		if wss[i].ID == in.WorkspaceID {
			out.Workspace = &wss[i]
		}
	}
	if out.Workspace == nil {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "you are not a member of workspace %q", in.WorkspaceID)
	}
	name := in.KeyName
	if name == "" {
		name = "login"
	}
	a := &agentkeys.Actor{Kind: agentkeys.ActorSession, UserID: u.ID, Email: u.Email, WorkspaceID: out.Workspace.ID, Role: out.Workspace.Role}
	k, err := s.store.CreateAPIKey(r.Context(), a, name)
	if err != nil {
		return err
	}
	out.APIKey = k.Key
	writeJSON(w, http.StatusCreated, out)
	return nil
}
