package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// listMembers answers GET /api/v1/members.
func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ms, err := s.store.ListMembers(r.Context(), a.WorkspaceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
	return nil
}

type roleRequest struct {
	Role string `json:"role"`
}

// setRole answers PATCH /api/v1/members/{userId} {"role"}.
func (s *Server) setRole(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in roleRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	role, err := agentkeys.ParseRole(in.Role)
	if err != nil {
		return err
	}
	m, err := s.store.SetRole(r.Context(), a, r.PathValue("userId"), role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// removeMember answers DELETE /api/v1/members/{userId}: removing a member
// (owner, admin), or any member leaving (their own user id).
func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.store.RemoveMember(r.Context(), a, r.PathValue("userId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
