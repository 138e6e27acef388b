package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

type credentialsPage struct {
	Credentials []*agentkeys.Credential
	Now         time.Time
}

func (d *Dashboard) credentials(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct{ Credentials []*agentkeys.Credential }
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials", nil, &out); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "credentials", s, view{Title: "Credentials", Current: "credentials",
		Data: credentialsPage{Credentials: out.Credentials, Now: time.Now()}})
}

// credentialForm is the Add Credential form as it was filled in (never a
// secret: those fields are always rendered empty).
type credentialForm struct {
	Name, Type, AllowedHosts, Param, Username, ExpiresAt string
	Types                                                []agentkeys.CredentialType
}

var formTypes = []agentkeys.CredentialType{agentkeys.APIKey, agentkeys.Cookie, agentkeys.BasicAuth, agentkeys.CustomHeader, agentkeys.QueryParam}

func (d *Dashboard) newCredential(w http.ResponseWriter, r *http.Request, s *session) {
	t := r.URL.Query().Get("type")
	if t == "" {
		t = string(agentkeys.APIKey)
	}
	d.render(w, r, http.StatusOK, "credential_new", s, view{Title: "Add Credential", Current: "credentials",
		Data: credentialForm{Type: t, Types: formTypes}})
}

func (d *Dashboard) createCredential(w http.ResponseWriter, r *http.Request, s *session) {
	f := credentialForm{Name: r.PostFormValue("name"), Type: r.PostFormValue("type"), AllowedHosts: r.PostFormValue("allowedHosts"),
		Param: r.PostFormValue("param"), Username: r.PostFormValue("username"), ExpiresAt: r.PostFormValue("expiresAt"), Types: formTypes}
	in := agentkeys.CredentialRequest{Name: f.Name, Type: f.Type, AllowedHosts: fields(f.AllowedHosts),
		Value: r.PostFormValue("value"), Username: f.Username, Password: r.PostFormValue("password"), Param: f.Param}
	var err error
	if in.Headers, err = parseHeaders(r.PostFormValue("headers")); err == nil && f.ExpiresAt != "" {
		var t time.Time
		if t, err = time.Parse("2006-01-02", f.ExpiresAt); err != nil {
			err = agentkeys.Errorf(agentkeys.EINVALID, "expiry %q is not a date (YYYY-MM-DD)", f.ExpiresAt)
		}
		in.ExpiresAt = &t
	}
	if err == nil {
		_, err = d.cfg.API(r, s.actor, "POST", "/api/v1/credentials", in, nil)
	}
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "credential_new", s, view{Title: "Add Credential", Current: "credentials",
			Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

// fields splits a list typed with commas, spaces or newlines.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(s string) ([]agentkeys.Header, error) {
	var out []agentkeys.Header
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "each header line must read Name: value")
		}
		out = append(out, agentkeys.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return out, nil
}

func (d *Dashboard) confirmDeleteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	var c agentkeys.Credential
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(r.PathValue("id")), nil, &c); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "confirm", s, view{Title: "Delete credential", Current: "credentials",
		Data: confirmPage{What: "credential", Name: c.Name, Action: "/credentials/" + url.PathEscape(c.ID) + "/delete"}})
}

func (d *Dashboard) deleteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	if status, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/credentials/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}
