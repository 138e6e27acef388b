package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

type agentRequest struct {
	Name string `json:"name"`
}

type assignRequest struct {
	CredentialID string `json:"credentialId"`
	// ExpiresAt (RFC 3339), when given, is when the new token stops working.
	ExpiresAt *time.Time `json:"expiresAt"`
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := noQuery(r); err != nil {
		return err
	}
	as, err := s.vault(r, a).ListAgents(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": as})
	return nil
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in agentRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	ag, err := s.vault(r, a).CreateAgent(r.Context(), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ag)
	return nil
}

// getAgent answers GET /api/v1/agents/{id}; {id} may also be the agent's
// name, as Vault.FindAgent allows.
func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ag, err := s.vault(r, a).FindAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.vault(r, a).DeleteAgent(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) assignCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in assignRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.CredentialID) == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing credentialId: give the credential's id or name")
	}
	// Both may be given by id or by name, as the CLI allows (and as the
	// not-found messages say). What reads as an id (cred_…, agent_…) goes to
	// the store as one, so an unknown id gets the store's message, the same
	// on every Vault.
	v := s.vault(r, a)
	credID, agentID := in.CredentialID, r.PathValue("id")
	if !strings.HasPrefix(credID, "cred_") {
		cred, err := v.FindCredential(r.Context(), credID)
		if err != nil {
			return err
		}
		credID = cred.ID
	}
	if !strings.HasPrefix(agentID, "agent_") {
		agent, err := v.FindAgent(r.Context(), agentID)
		if err != nil {
			return err
		}
		agentID = agent.ID
	}
	var expiresAt time.Time
	if in.ExpiresAt != nil {
		expiresAt = *in.ExpiresAt
	}
	g, err := v.AssignCredentialUntil(r.Context(), agentID, credID, expiresAt)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *Server) revokeCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.vault(r, a).RevokeCredential(r.Context(), r.PathValue("id"), r.PathValue("credentialId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
