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
// hashed at once.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Signup == SignupClosed {
		return agentkeys.Errorf(agentkeys.EFORBIDDEN, "sign-up is closed on this server: ask its operator for a workspace (`agentkeys serve create-workspace`)")
	}
	var in signupRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	select {
	case s.signups <- struct{}{}:
		defer func() { <-s.signups }()
	default:
		w.Header().Set("Retry-After", "1")
		return agentkeys.Errorf(agentkeys.ERATELIMIT, "too many sign-ups at once: try again in a second")
	}
	ws, err := s.store.CreateWorkspace(r.Context(), store.NewWorkspace{Email: in.Email, Password: in.Password, RequirePassword: true, Name: in.Workspace})
	if err != nil {
		return err
	}
	var out signupResponse
	out.Workspace.ID, out.Workspace.Name, out.APIKey = ws.ID, ws.Name, ws.APIKey
	writeJSON(w, http.StatusCreated, out)
	return nil
}
