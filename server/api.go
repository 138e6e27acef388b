package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// decode reads one JSON object into v. Unknown fields — which include the
// fields a caller may not set, such as id, workspaceId and createdAt — are
// refused with EINVALID, as are a missing body, bad JSON and trailing data;
// a body over the limit is ETOOLARGE.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errTrailing
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
		}
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ae *agentkeys.Error
	var pe *time.ParseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &pe):
		return agentkeys.Errorf(agentkeys.EINVALID, "a time is not in RFC 3339 form: give one such as 2026-06-01T00:00:00Z")
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return agentkeys.Errorf(agentkeys.EINVALID, "missing JSON body")
	case errors.As(err, &te):
		return agentkeys.Errorf(agentkeys.EINVALID, "field %q has the wrong type (want %s)", te.Field, te.Type)
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTrailing):
		return agentkeys.Errorf(agentkeys.EINVALID, "the body is not one valid JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return agentkeys.Errorf(agentkeys.EINVALID, "field %s is unknown or may not be set", field)
	}
	return agentkeys.Errorf(agentkeys.EINVALID, "the body is not valid JSON for this endpoint")
}

var errTrailing = errors.New("trailing data after the JSON object")

// query reads the allowed query parameters; any other is EINVALID.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q := r.URL.Query()
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "unknown query parameter %q", k)
		}
	}
	return q, nil
}

// noQuery refuses query parameters on endpoints that take none.
func noQuery(r *http.Request) error {
	_, err := query(r)
	return err
}

func intParam(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, agentkeys.Errorf(agentkeys.EINVALID, "query parameter %s must be a non-negative integer", name)
	}
	return n, nil
}

// ---- credentials ----

// credentialRequest is POST /api/v1/credentials.
type credentialRequest struct {
	Name         string             `json:"name"`
	Type         string             `json:"type"`
	Value        string             `json:"value"`
	AllowedHosts []string           `json:"allowedHosts"`
	Service      string             `json:"service"`
	Username     string             `json:"username"`
	Password     string             `json:"password"`
	Headers      []agentkeys.Header `json:"headers"`
	Param        string             `json:"param"`
	// ExpiresAt (RFC 3339), when given, is when the credential stops working.
	ExpiresAt *time.Time `json:"expiresAt"`
}

// credentialPatch is PATCH /api/v1/credentials/{id}: absent fields stay;
// any of the value fields replaces the whole value, re-sealed.
type credentialPatch struct {
	Name         *string             `json:"name"`
	AllowedHosts []string            `json:"allowedHosts"`
	Value        *string             `json:"value"`
	Username     *string             `json:"username"`
	Password     *string             `json:"password"`
	Headers      *[]agentkeys.Header `json:"headers"`
	Param        *string             `json:"param"`
	// ExpiresAt: absent leaves it, null clears it, RFC 3339 sets it.
	ExpiresAt optionalTime `json:"expiresAt"`
}

// optionalTime is a JSON time that tells absent (Set false) from null
// (Set, Time nil).
type optionalTime struct {
	Set  bool
	Time *time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *optionalTime) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Time = nil
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "expiresAt must be an RFC 3339 time such as 2026-06-01T00:00:00Z, or null to clear it")
	}
	o.Time = &t
	return nil
}

func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := noQuery(r); err != nil {
		return err
	}
	cs, err := ws.ListCredentials(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": cs})
	return nil
}

func (s *Server) createCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	var in credentialRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	// The type is required (the seed's example names it; the Vault
	// contract refuses an empty one): it decides how the value is injected,
	// so the server does not guess it.
	if strings.TrimSpace(in.Type) == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing type: give one of %s", agentkeys.CredentialTypeList(", "))
	}
	c, err := ws.CreateCredential(r.Context(), &agentkeys.CredentialInput{
		Name: in.Name, Type: agentkeys.CredentialType(in.Type), AllowedHosts: in.AllowedHosts, Service: in.Service,
		Secret:    agentkeys.Secret{Value: in.Value, Username: in.Username, Password: in.Password, Headers: in.Headers, Param: in.Param},
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
func (s *Server) getCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	c, err := ws.FindCredential(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	var p credentialPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	upd := &agentkeys.CredentialUpdate{Name: p.Name, AllowedHosts: p.AllowedHosts}
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
	c, err := ws.UpdateCredential(r.Context(), r.PathValue("id"), upd)
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

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := ws.DeleteCredential(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- agents ----

type agentRequest struct {
	Name string `json:"name"`
}

type assignRequest struct {
	CredentialID string `json:"credentialId"`
	// ExpiresAt (RFC 3339), when given, is when the new token stops working.
	ExpiresAt *time.Time `json:"expiresAt"`
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := noQuery(r); err != nil {
		return err
	}
	as, err := ws.ListAgents(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": as})
	return nil
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	var in agentRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	a, err := ws.CreateAgent(r.Context(), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// getAgent answers GET /api/v1/agents/{id}; {id} may also be the agent's
// name, as Vault.FindAgent allows.
func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	a, err := ws.FindAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := ws.DeleteAgent(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) assignCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	var in assignRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.CredentialID) == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing credentialId")
	}
	var expiresAt time.Time
	if in.ExpiresAt != nil {
		expiresAt = *in.ExpiresAt
	}
	g, err := ws.AssignCredentialUntil(r.Context(), r.PathValue("id"), in.CredentialID, expiresAt)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *Server) revokeCredential(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := ws.RevokeCredential(r.Context(), r.PathValue("id"), r.PathValue("credentialId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- workspace, audit ----

func (s *Server) workspaceStatus(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	if err := noQuery(r); err != nil {
		return err
	}
	st, err := ws.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"workspace": st})
	return nil
}

// auditPage is GET /api/v1/audit's answer. NextBefore is the before= of the
// next (older) page, or 0 when there is none or the caller follows with
// after=.
type auditPage struct {
	Events     []*agentkeys.AuditEvent `json:"events"`
	NextBefore int64                   `json:"nextBefore"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error {
	q, err := query(r, "agentId", "credentialId", "status", "decision", "limit", "before", "after")
	if err != nil {
		return err
	}
	f := agentkeys.AuditFilter{AgentID: q.Get("agentId"), CredentialID: q.Get("credentialId"), Decision: q.Get("decision")}
	var status, limit int64
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"status", &status}, {"limit", &limit}, {"before", &f.BeforeSeq}, {"after", &f.AfterSeq}} {
		if *p.dst, err = intParam(q, p.name); err != nil {
			return err
		}
	}
	if status > 999 || limit > agentkeys.MaxAuditLimit {
		return agentkeys.Errorf(agentkeys.EINVALID, "status must be an HTTP status and limit at most %d", agentkeys.MaxAuditLimit)
	}
	f.Status, f.Limit = int(status), int(limit)
	evs, err := ws.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	page := auditPage{Events: evs}
	want := f.Limit
	if want == 0 {
		want = 100
	}
	if f.AfterSeq == 0 && len(evs) == want && len(evs) > 0 {
		page.NextBefore = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// ---- sign-up, health ----

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

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
