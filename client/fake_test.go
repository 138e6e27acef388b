package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

// The fake server implements the agreed REST API (/api/v1) and /v1/proxy
// over a real local vault and the real proxy handler. It lets the client be
// tested against the whole protocol without the server package; the same
// tests run against the real server in server_test.go.

// fakeServer is a running fake with its workspace key.
type fakeServer struct {
	srv   *httptest.Server
	vault *testkit.Vault
	key   string
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	v := testkit.OpenVault(t, testkit.VaultOptions{})
	f := &fakeServer{vault: v, key: v.WorkspaceKey}
	f.srv = httptest.NewServer(f.handler(v.Handler))
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := agentkeys.ErrorCode(err)
	status := agentkeys.StatusForCode(code)
	w.Header().Set(agentkeys.HeaderError, code)
	writeJSON(w, status, map[string]any{"error": agentkeys.ErrorMessage(err), "code": code, "status": status})
}

// decode reads a JSON body strictly, as the real server does.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "bad JSON body")
	}
	return nil
}

func (f *fakeServer) handler(ph http.Handler) http.Handler {
	v := f.vault
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", ph)
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/credentials", func(w http.ResponseWriter, r *http.Request) {
		cs, err := v.ListCredentials(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 200, map[string]any{"credentials": cs})
	})
	api.HandleFunc("POST /api/v1/credentials", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name, Type, Value, Service, Username, Password, Param string
			AllowedHosts                                          []string
			Headers                                               []agentkeys.Header
			ExpiresAt                                             *time.Time
		}
		if err := decode(r, &in); err != nil {
			writeErr(w, err)
			return
		}
		ci := &agentkeys.CredentialInput{Name: in.Name, Type: agentkeys.CredentialType(in.Type), AllowedHosts: in.AllowedHosts, Service: in.Service,
			Secret:    agentkeys.Secret{Value: in.Value, Username: in.Username, Password: in.Password, Headers: in.Headers, Param: in.Param},
			ExpiresAt: in.ExpiresAt}
		c, err := v.CreateCredential(r.Context(), ci)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 201, c)
	})
	credByID := func(r *http.Request) (*agentkeys.Credential, error) {
		c, err := v.FindCredential(r.Context(), r.PathValue("id"))
		if err == nil && c.ID != r.PathValue("id") {
			return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "credential not found")
		}
		return c, err
	}
	api.HandleFunc("GET /api/v1/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, err := credByID(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 200, c)
	})
	api.HandleFunc("PATCH /api/v1/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name                             *string
			AllowedHosts                     *[]string
			Value, Username, Password, Param *string
			Headers                          *[]agentkeys.Header
			ExpiresAt                        json.RawMessage
		}
		if err := decode(r, &in); err != nil {
			writeErr(w, err)
			return
		}
		upd := &agentkeys.CredentialUpdate{Name: in.Name}
		if len(in.ExpiresAt) > 0 {
			upd.ExpiresAt = &time.Time{}
			if string(in.ExpiresAt) != "null" {
				if err := json.Unmarshal(in.ExpiresAt, upd.ExpiresAt); err != nil {
					writeErr(w, agentkeys.Errorf(agentkeys.EINVALID, "bad expiresAt"))
					return
				}
			}
		}
		if in.AllowedHosts != nil {
			upd.AllowedHosts = append([]string{}, (*in.AllowedHosts)...)
		}
		if in.Value != nil || in.Username != nil || in.Password != nil || in.Headers != nil || in.Param != nil {
			s := &agentkeys.Secret{}
			str := func(p *string) string {
				if p == nil {
					return ""
				}
				return *p
			}
			s.Value, s.Username, s.Password, s.Param = str(in.Value), str(in.Username), str(in.Password), str(in.Param)
			if in.Headers != nil {
				s.Headers = *in.Headers
			}
			upd.Secret = s
		}
		c, err := v.UpdateCredential(r.Context(), r.PathValue("id"), upd)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 200, c)
	})
	api.HandleFunc("DELETE /api/v1/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := v.DeleteCredential(r.Context(), r.PathValue("id")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(204)
	})
	api.HandleFunc("GET /api/v1/agents", func(w http.ResponseWriter, r *http.Request) {
		as, err := v.ListAgents(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 200, map[string]any{"agents": as})
	})
	api.HandleFunc("POST /api/v1/agents", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if err := decode(r, &in); err != nil {
			writeErr(w, err)
			return
		}
		a, err := v.CreateAgent(r.Context(), in.Name)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 201, a)
	})
	api.HandleFunc("GET /api/v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) {
		a, err := v.FindAgent(r.Context(), r.PathValue("id"))
		if err == nil && a.ID != r.PathValue("id") {
			err = agentkeys.Errorf(agentkeys.ENOTFOUND, "agent not found")
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 200, a)
	})
	api.HandleFunc("DELETE /api/v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := v.DeleteAgent(r.Context(), r.PathValue("id")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(204)
	})
	api.HandleFunc("POST /api/v1/agents/{id}/credentials", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			CredentialID string     `json:"credentialId"`
			ExpiresAt    *time.Time `json:"expiresAt"`
		}
		if err := decode(r, &in); err != nil {
			writeErr(w, err)
			return
		}
		var until time.Time
		if in.ExpiresAt != nil {
			until = *in.ExpiresAt
		}
		g, err := v.AssignCredentialUntil(r.Context(), r.PathValue("id"), in.CredentialID, until)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, 201, g)
	})
	api.HandleFunc("DELETE /api/v1/agents/{id}/credentials/{cid}", func(w http.ResponseWriter, r *http.Request) {
		if err := v.RevokeCredential(r.Context(), r.PathValue("id"), r.PathValue("cid")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(204)
	})
	api.HandleFunc("GET /api/v1/workspace/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := v.Status(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		st.Mode, st.Location, st.KeySource = "", "", ""
		writeJSON(w, 200, map[string]any{"workspace": st})
	})
	api.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		num := func(k string) int64 { n, _ := strconv.ParseInt(q.Get(k), 10, 64); return n }
		flt := agentkeys.AuditFilter{AgentID: q.Get("agentId"), CredentialID: q.Get("credentialId"), Decision: q.Get("decision"),
			Status: int(num("status")), Limit: int(num("limit")), BeforeSeq: num("before"), AfterSeq: num("after")}
		evs, err := v.ListAudit(r.Context(), flt)
		if err != nil {
			writeErr(w, err)
			return
		}
		var next int64
		if len(evs) > 0 && flt.AfterSeq == 0 {
			next = evs[len(evs)-1].Seq
		}
		writeJSON(w, 200, map[string]any{"events": evs, "nextBefore": next})
	})
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") || strings.TrimPrefix(auth, "Bearer ") != f.key {
			writeErr(w, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "missing or invalid API key"))
			return
		}
		if _, pattern := api.Handler(r); pattern == "" {
			writeErr(w, agentkeys.Errorf(agentkeys.ENOTFOUND, "no such route"))
			return
		}
		api.ServeHTTP(w, r)
	})
	return mux
}
