package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
)

func (s *Server) workspaceStatus(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	st, err := s.vault(r, a).Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"workspace": st})
	return nil
}
