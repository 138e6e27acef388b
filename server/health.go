package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys/internal/version"
)

// healthz is 200 with the server's version (internal/version) while the
// process runs.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version.Version()})
	return nil
}

// readyz is 200 when the database answers (the server key was checked
// when the store opened); 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
