package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// listAPIKeys answers GET /api/v1/api-keys: every member's keys, never
// their values.
func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ks, err := s.store.ListAPIKeys(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"apiKeys": ks})
	return nil
}

// createAPIKey answers POST /api/v1/api-keys {"name"}: a new key for the
// caller's own membership, its value shown this once.
func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in nameRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	k, err := s.store.CreateAPIKey(r.Context(), a, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, k)
	return nil
}

// revokeAPIKey answers DELETE /api/v1/api-keys/{id}.
func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.store.RevokeAPIKey(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateAPIKey answers POST /api/v1/api-keys/{id}/rotate: the new value,
// shown once; the old one stops working at once.
func (s *Server) rotateAPIKey(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	k, err := s.store.RotateAPIKey(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
