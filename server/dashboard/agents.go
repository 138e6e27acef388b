package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// pickerMax is the most credentials the Assign Credential picker lists as
// a <select>; a workspace with more gets a name field instead, with the
// names that match what is typed offered by htmx (a <datalist> filled from
// GET /credentials/options) and resolved by the server when posted.
const pickerMax = 25

// agentsPerPage is how many agents a page of /agents shows (each with its
// assignments and an Assign form: about 2.6 KB of HTML an agent).
const agentsPerPage = 20

type agentsPage struct {
	Agents     []*agentkeys.Agent
	Total      int    // agents in the workspace
	Prev, Next string // links to the neighbouring pages, "" at either end
	// Credentials are the workspace's credentials when it has at most
	// pickerMax; Search is set when it has more.
	Credentials []*agentkeys.Credential
	Search      bool
}

func (d *Dashboard) agents(w http.ResponseWriter, r *http.Request, s *session) {
	d.agentsWith(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) agentsWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	var as struct{ Agents []*agentkeys.Agent }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/agents", nil, &as); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			d.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("page %q is not a page number (1, 2, …): follow the Next and Previous links", v))
			return
		}
		page = n
	}
	cs, st, err := d.listCredentials(r, s, "", "", pickerMax)
	if err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p := agentsPage{Total: len(as.Agents), Credentials: cs.Credentials, Search: cs.NextCursor != ""}
	from := min((page-1)*agentsPerPage, len(as.Agents))
	to := min(from+agentsPerPage, len(as.Agents))
	p.Agents = as.Agents[from:to]
	if page > 1 {
		p.Prev = "/agents?page=" + strconv.Itoa(min(page-1, max(1, (len(as.Agents)+agentsPerPage-1)/agentsPerPage)))
	}
	if to < len(as.Agents) {
		p.Next = "/agents?page=" + strconv.Itoa(page+1)
	}
	if p.Search {
		p.Credentials = nil
	}
	d.render(w, r, status, "agents", s, view{Title: "Agents", Current: "agents", Error: msg, Data: p})
}

func (d *Dashboard) createAgent(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/agents", map[string]string{"name": r.PostFormValue("name")}, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}

// tokenPage shows a new proxy token, once, with the seed's curl example.
type tokenPage struct {
	Agent, Credential, Token, ProxyURL, Target string
}

func (d *Dashboard) assign(w http.ResponseWriter, r *http.Request, s *session) {
	var g agentkeys.Grant
	credID := r.PostFormValue("credentialId")
	if credID == "" { // the name field of a workspace with many credentials
		credID = strings.TrimSpace(r.PostFormValue("credential"))
	}
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/agents/"+url.PathEscape(r.PathValue("id"))+"/credentials",
		map[string]string{"credentialId": credID}, &g); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	var ag agentkeys.Agent
	var c agentkeys.Credential
	_, _ = d.cfg.API(r, s.actor, "GET", "/api/v1/agents/"+url.PathEscape(g.AgentID), nil, &ag)
	_, _ = d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(g.CredentialID), nil, &c)
	target := "https://api.example.com/"
	if len(c.AllowedHosts) > 0 && !strings.Contains(c.AllowedHosts[0], "*") {
		target = "https://" + c.AllowedHosts[0] + "/"
	}
	d.render(w, r, http.StatusCreated, "token", s, view{Title: "Proxy token", Current: "agents",
		Data: tokenPage{Agent: ag.Name, Credential: c.Name, Token: g.ProxyToken, ProxyURL: d.cfg.BaseURL(r) + "/v1/proxy", Target: target}})
}

func (d *Dashboard) revoke(w http.ResponseWriter, r *http.Request, s *session) {
	p := "/api/v1/agents/" + url.PathEscape(r.PathValue("id")) + "/credentials/" + url.PathEscape(r.PathValue("credentialId"))
	if _, err := d.cfg.API(r, s.actor, "DELETE", p, nil, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}

func (d *Dashboard) confirmDeleteAgent(w http.ResponseWriter, r *http.Request, s *session) {
	var ag agentkeys.Agent
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/agents/"+url.PathEscape(r.PathValue("id")), nil, &ag); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	d.render(w, r, http.StatusOK, "confirm", s, view{Title: "Delete agent", Current: "agents",
		Data: confirmPage{What: "agent", Name: ag.Name, Action: "/agents/" + url.PathEscape(ag.ID) + "/delete"}})
}

func (d *Dashboard) deleteAgent(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := d.cfg.API(r, s.actor, "DELETE", "/api/v1/agents/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		d.agentsWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err))
		return
	}
	http.Redirect(w, r, "/agents", http.StatusSeeOther)
}
