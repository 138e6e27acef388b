package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// listCredentials answers GET /api/v1/credentials: without parameters every
// credential, as always; with any of limit, cursor and q one page of them
// (store.CredentialQuery) and the cursors of the pages either side.
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	q, err := query(r, "limit", "cursor", "q")
	if err != nil {
		return err
	}
	if len(q) == 0 {
		cs, err := s.vault(r, a).ListCredentials(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"credentials": cs})
		return nil
	}
	limit := 0
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxCredentialPage {
			return agentkeys.Errorf(agentkeys.EINVALID, "query parameter limit must be a whole number from 1 to %d", store.MaxCredentialPage)
		}
		limit = n
	}
	page, err := s.vault(r, a).ListCredentialsPage(r.Context(), store.CredentialQuery{Name: strings.TrimSpace(q.Get("q")), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credentialPage{Credentials: page.Credentials, NextCursor: page.Next, PrevCursor: page.Prev})
	return nil
}

// credentialPage is a paged GET /api/v1/credentials answer.
type credentialPage struct {
	Credentials []*agentkeys.Credential `json:"credentials"`
	NextCursor  string                  `json:"nextCursor,omitempty"`
	PrevCursor  string                  `json:"prevCursor,omitempty"`
}

func (s *Server) createCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var in agentkeys.CredentialRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	// The type is required (the seed's example names it; the Vault
	// contract refuses an empty one): it decides how the value is injected,
	// so the server does not guess it.
	if strings.TrimSpace(in.Type) == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing type: give one of %s", agentkeys.CredentialTypeList(", "))
	}
	c, err := s.vault(r, a).CreateCredential(r.Context(), &agentkeys.CredentialInput{
		Name: in.Name, Type: agentkeys.CredentialType(in.Type), AllowedHosts: in.AllowedHosts, Service: in.Service,
		Secret:    agentkeys.Secret{Value: in.Value, Username: in.Username, Password: in.Password, Headers: in.Headers, Param: in.Param, RawResponses: in.RawResponses},
		ExpiresAt: in.ExpiresAt,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// getCredential answers GET /api/v1/credentials/{id}; {id} may also be the
// credential's name (case-insensitively), as Vault.FindCredential allows.
// Unlike the list, the answer names a CUSTOM_HEADER's headers and a
// QUERY_PARAM's parameter (headerNames, paramName), never their values.
func (s *Server) getCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	c, err := s.vault(r, a).FindCredential(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	var p agentkeys.CredentialPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	upd := &agentkeys.CredentialUpdate{Name: p.Name}
	if p.AllowedHosts != nil {
		upd.AllowedHosts = append([]string{}, *p.AllowedHosts...) // [] stays non-nil: a (refused) empty allowlist
	}
	if p.ExpiresAt.Set {
		upd.ExpiresAt = &time.Time{} // null: cleared
		if p.ExpiresAt.Time != nil {
			upd.ExpiresAt = p.ExpiresAt.Time
		}
	}
	if p.Value != nil || p.Username != nil || p.Password != nil || p.Headers != nil || p.Param != nil {
		sec := agentkeys.Secret{Value: deref(p.Value), Username: deref(p.Username), Password: deref(p.Password), Param: deref(p.Param)}
		if p.Headers != nil {
			sec.Headers = *p.Headers
		}
		upd.Secret = &sec
	}
	c, err := s.vault(r, a).UpdateCredential(r.Context(), r.PathValue("id"), upd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	if err := s.vault(r, a).DeleteCredential(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
