package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/agentkeys/agentkeys"
)

// apiKey is one API key as the API lists it (Key only in the answer that
// creates or rotates it).
type apiKey struct {
	ID, Name, UserID, Email string
	Role                    agentkeys.Role
	CreatedAt               time.Time
	Key                     string
}

// keysPage is Settings → API Keys: every member's keys (never a value) and
// the create form as it was filled in.
type keysPage struct {
	Keys []apiKey
	Name string
}

func (d *Dashboard) apiKeys(w http.ResponseWriter, r *http.Request, s *session) {
	d.apiKeysWith(w, r, s, http.StatusOK, "", "")
}

func (d *Dashboard) apiKeysWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg, name string) {
	var out struct{ APIKeys []apiKey }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/api-keys", nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.render(w, r, status, "keys", s, view{Title: "API Keys", Current: "settings/api-keys", Error: msg, Data: keysPage{Keys: out.APIKeys, Name: name}})
}

// keysFailed shows the API's refusal: on the API Keys page when the role
// may see it, else on the error page (both with the API's status).
func (d *Dashboard) keysFailed(w http.ResponseWriter, r *http.Request, s *session, err error, name string) {
	status := agentkeys.StatusForCode(agentkeys.ErrorCode(err))
	if !s.actor.Can(agentkeys.PermManageAPIKeys) {
		d.failErr(w, r, s, status, err)
		return
	}
	d.apiKeysWith(w, r, s, status, agentkeys.ErrorMessage(err), name)
}

// keyShown is the one-time display of a new or rotated key.
type keyShown struct {
	Key  apiKey
	What string // "created" or "rotated"
}

func (d *Dashboard) createAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostFormValue("name")
	var k apiKey
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/api-keys", map[string]string{"name": name}, &k); err != nil {
		d.keysFailed(w, r, s, err, name)
		return
	}
	d.render(w, r, http.StatusCreated, "keys_shown", s, view{Title: "New API key", Current: "settings/api-keys", Data: keyShown{Key: k, What: "created"}})
}

func (d *Dashboard) rotateAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	var k apiKey
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/api-keys/"+url.PathEscape(r.PathValue("id"))+"/rotate", nil, &k); err != nil {
		d.keysFailed(w, r, s, err, "")
		return
	}
	d.render(w, r, http.StatusOK, "keys_shown", s, view{Title: "Rotated API key", Current: "settings/api-keys", Data: keyShown{Key: k, What: "rotated"}})
}

func (d *Dashboard) confirmRevokeAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct{ APIKeys []apiKey }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/api-keys", nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	for _, k := range out.APIKeys {
		if k.ID == r.PathValue("id") {
			d.render(w, r, http.StatusOK, "settings_confirm", s, view{Title: "Revoke API key", Current: "settings/api-keys", Data: settingsConfirm{
				Heading: "Revoke the API key “" + k.Name + "” of " + k.Email + "?", Button: "Revoke key", Cancel: "/settings/api-keys",
				Text:   "Everything using it (the CLI, scripts, the MCP server) is refused from the next call. This cannot be undone.",
				Action: "/settings/api-keys/" + url.PathEscape(k.ID) + "/revoke"}})
			return
		}
	}
	d.fail(w, r, s, http.StatusNotFound, "No API key "+r.PathValue("id")+" in this workspace: see Settings → API Keys.")
}

func (d *Dashboard) revokeAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/api-keys/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.keysFailed(w, r, s, err, "")
		return
	}
	http.Redirect(w, r, "/settings/api-keys", http.StatusSeeOther)
}
