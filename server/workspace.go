package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

func (s *Server) workspaceStatus(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	st, err := s.vault(r, a).Status(r.Context())
	if err != nil {
		return err
	}
	st.Role = a.Role
	writeJSON(w, http.StatusOK, map[string]any{"workspace": st})
	return nil
}

// listWorkspaces answers GET /api/v1/workspaces: every workspace the
// caller's user belongs to, with their role in each.
func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ws, err := s.store.UserWorkspaces(r.Context(), a.UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"workspaces": ws})
	return nil
}

type nameRequest struct {
	Name string `json:"name"`
}

// createWorkspace answers POST /api/v1/workspaces {"name"}: a new workspace
// whose owner is the caller's user, and an API key for it (shown once), in
// sign-up's shape.
func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in nameRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	ws, err := s.store.CreateWorkspaceFor(r.Context(), a, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created(ws))
	return nil
}

// workspaceAnswer is GET/PATCH /api/v1/workspace's answer: the workspace
// and the caller's role in it.
type workspaceAnswer struct {
	Workspace *store.WorkspaceInfo `json:"workspace"`
	Role      agentkeys.Role       `json:"role"`
	User      callerUser           `json:"user"`
}

// callerUser is the member the API key belongs to.
type callerUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	info, err := s.store.WorkspaceInfo(r.Context(), a.WorkspaceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceAnswer{Workspace: info, Role: a.Role, User: callerUser{a.UserID, a.Email}})
	return nil
}

func (s *Server) updateWorkspace(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in nameRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	info, err := s.store.RenameWorkspace(r.Context(), a, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceAnswer{Workspace: info, Role: a.Role, User: callerUser{a.UserID, a.Email}})
	return nil
}

type deleteWorkspaceRequest struct {
	Confirm string `json:"confirm"`
}

// deleteWorkspace answers DELETE /api/v1/workspace {"confirm": "<name>"}.
func (s *Server) deleteWorkspace(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in deleteWorkspaceRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := s.store.DeleteWorkspace(r.Context(), a, in.Confirm); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
