package dashboard

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// credentialPageSize is how many credentials one page of the list shows.
const credentialPageSize = 50

// credentialList is one page of GET /api/v1/credentials.
type credentialList struct {
	Credentials []*agentkeys.Credential
	NextCursor  string
	PrevCursor  string
}

// listCredentials reads one page of credentials whose names contain q.
func (d *Dashboard) listCredentials(r *http.Request, s *session, q, cursor string, limit int) (*credentialList, int, error) {
	v := url.Values{"limit": {strconv.Itoa(limit)}}
	if q != "" {
		v.Set("q", q)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	var out credentialList
	status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials?"+v.Encode(), nil, &out)
	return &out, status, err
}

type credentialsPage struct {
	Rows       []credentialRow
	Query      string
	Next, Prev string // the pager's links ("" for none)
}

// credentialRow is a credential as the list shows it.
type credentialRow struct {
	*agentkeys.Credential
	Status string // "active", "expired" or "needs re-auth"
}

func (d *Dashboard) credentials(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	list, status, err := d.listCredentials(r, s, q, r.URL.Query().Get("cursor"), credentialPageSize)
	if err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	p := credentialsPage{Query: q}
	now := time.Now()
	for _, c := range list.Credentials {
		row := credentialRow{Credential: c, Status: "active"}
		switch {
		case c.OAuth != nil && c.OAuth.Status == agentkeys.OAuthError:
			row.Status = "needs re-auth"
		case c.Expired(now):
			row.Status = "expired"
		}
		p.Rows = append(p.Rows, row)
	}
	page := func(cursor string) string {
		if cursor == "" {
			return ""
		}
		v := url.Values{"cursor": {cursor}}
		if q != "" {
			v.Set("q", q)
		}
		return "/credentials?" + v.Encode()
	}
	p.Next, p.Prev = page(list.NextCursor), page(list.PrevCursor)
	v := view{Title: "Credentials", Current: "credentials", Data: p}
	if r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Target") == "credential-list" {
		d.fragment(w, r, http.StatusOK, "credentials", "credential_list", s, v)
		return
	}
	d.render(w, r, http.StatusOK, "credentials", s, v)
}

// credentialOptions answers the name searches of the assign picker and
// the audit filter: <option>s of at most pickerMax credentials whose names
// contain the typed text (the "credential" parameter).
func (d *Dashboard) credentialOptions(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("credential"))
	list, status, err := d.listCredentials(r, s, q, "", pickerMax)
	if err != nil {
		w.WriteHeader(status)
		return
	}
	d.fragment(w, r, http.StatusOK, "credentials", "credential_options", s, view{Data: list.Credentials})
}

// typeTab is one auth type of the Add Credential form, in the seed's words.
type typeTab struct {
	Type, Title, Says string
}

var typeTabs = []typeTab{
	{"API_KEY", "API Key", "A single secret sent as Authorization: Bearer header. Works with Stripe, Resend, Twilio, and most APIs."},
	{"COOKIE", "Cookie", "Browser cookies for services without API keys — Twitter/X, LinkedIn, etc. Supports paste-all mode for easy import from DevTools."},
	{"BASIC_AUTH", "Basic Auth", "Username + password pair for Jira, Twilio, Jenkins, Elasticsearch, and enterprise tools."},
	{"CUSTOM_HEADER", "Custom Headers", "One or more custom HTTP headers. For Anthropic (x-api-key), Cloudflare, Supabase, and APIs with non-standard auth."},
	{"QUERY_PARAM", "Query Parameter", "Auth value appended to URL. Used by Google Maps, Telegram Bot API, and legacy APIs."},
	{"oauth", "Connect OAuth", "Connect services with one click. AgentKeys handles the OAuth flow, stores tokens encrypted, and auto-refreshes them before expiry."},
}

// emptyHeaderRows is how many header rows the form has without JavaScript
// (app.js's "Add header" button adds more).
const emptyHeaderRows = 3

// credentialForm is the Add or Edit Credential form as it was filled in.
// It never holds a secret: those fields are always rendered empty.
type credentialForm struct {
	Edit                                       bool
	ID                                         string // when editing
	Name, Type, AllowedHosts, Param, ExpiresAt string
	HeaderNames                                []string // header names typed (values are secrets)
	Tabs                                       []typeTab
	// SentAs names, when editing, the headers or the query parameter the
	// stored value is sent under (never the value); "" when unknown.
	SentAs string
}

// Tab is the form's type as a tab (title and the seed's description).
func (f credentialForm) Tab() typeTab {
	for _, t := range typeTabs {
		if t.Type == f.Type {
			return t
		}
	}
	return typeTab{Type: f.Type, Title: f.Type}
}

// headerRow is one row of the Custom Headers form: its number (from 1)
// and the name typed (its value is a secret, never shown).
type headerRow struct {
	N    int
	Name string
}

// HeaderRows are the header rows to show: those typed, then empty ones up
// to emptyHeaderRows.
func (f credentialForm) HeaderRows() []headerRow {
	var rows []headerRow
	for i, n := range f.HeaderNames {
		rows = append(rows, headerRow{i + 1, n})
	}
	for len(rows) < emptyHeaderRows {
		rows = append(rows, headerRow{len(rows) + 1, ""})
	}
	return rows
}

func (d *Dashboard) newCredential(w http.ResponseWriter, r *http.Request, s *session) {
	t := r.URL.Query().Get("type")
	if strings.EqualFold(t, "oauth") {
		d.oauthForm(w, r, s, http.StatusOK, oauthForm{Name: r.URL.Query().Get("name"), Provider: r.URL.Query().Get("provider")}, "")
		return
	}
	f := credentialForm{Type: string(agentkeys.APIKey), Tabs: typeTabs}
	if ct, err := agentkeys.ParseCredentialType(t); err == nil && ct != agentkeys.OAuth {
		f.Type = string(ct)
	}
	d.render(w, r, http.StatusOK, "credential_form", s, view{Title: "Add Credential", Current: "credentials", Data: f})
}

// readForm reads the fields every credential form has and the secret
// fields of its type: a secret field left empty is left out (on Edit: the
// value is kept).
func readForm(r *http.Request, f *credentialForm) (sec agentkeys.CredentialRequest, err error) {
	f.Name, f.AllowedHosts = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("allowedHosts")
	f.Param, f.ExpiresAt = r.PostFormValue("param"), r.PostFormValue("expiresAt")
	sec.Username, sec.Password, sec.Param = r.PostFormValue("username"), r.PostFormValue("password"), f.Param
	sec.Value = r.PostFormValue("value")
	names, values := r.PostForm["headerName"], r.PostForm["headerValue"]
	for i, n := range names {
		n = strings.TrimSpace(n)
		v := ""
		if i < len(values) {
			v = values[i]
		}
		if n == "" && strings.TrimSpace(v) == "" {
			continue
		}
		f.HeaderNames = append(f.HeaderNames, n)
		if n == "" {
			return sec, agentkeys.Errorf(agentkeys.EINVALID, "header %d has a value but no name: give each header a name such as X-Api-Key", i+1)
		}
		sec.Headers = append(sec.Headers, agentkeys.Header{Name: n, Value: v})
	}
	if f.Type == string(agentkeys.Cookie) && strings.TrimSpace(sec.Value) != "" {
		if sec.Value, err = cookieValue(sec.Value); err != nil {
			return sec, err
		}
	}
	return sec, nil
}

// expiry reads the form's date (YYYY-MM-DD): the credential stops working
// at 00:00 UTC that day. nil for "".
func expiry(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "expiry %q is not a date (YYYY-MM-DD)", s)
	}
	return &t, nil
}

func (d *Dashboard) createCredential(w http.ResponseWriter, r *http.Request, s *session) {
	f := credentialForm{Type: r.PostFormValue("type"), Tabs: typeTabs}
	in, err := readForm(r, &f)
	in.Name, in.Type, in.AllowedHosts = f.Name, f.Type, fields(f.AllowedHosts)
	if err == nil {
		in.ExpiresAt, err = expiry(f.ExpiresAt)
	}
	if err == nil {
		_, err = d.cfg.API(r, s.actor, "POST", "/api/v1/credentials", in, nil)
	}
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "credential_form", s, view{Title: "Add Credential", Current: "credentials",
			Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

func (d *Dashboard) editCredential(w http.ResponseWriter, r *http.Request, s *session) {
	var c agentkeys.Credential
	if status, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(r.PathValue("id")), nil, &c); err != nil {
		d.failErr(w, r, s, status, err)
		return
	}
	f := credentialForm{Edit: true, ID: c.ID, Name: c.Name, Type: string(c.Type), AllowedHosts: strings.Join(c.AllowedHosts, ", ")}
	switch {
	case len(c.HeaderNames) > 0:
		f.SentAs = "the headers " + strings.Join(c.HeaderNames, ", ")
	case c.ParamName != "":
		f.SentAs = "the query parameter " + c.ParamName
	}
	if c.ExpiresAt != nil {
		f.ExpiresAt = c.ExpiresAt.UTC().Format("2006-01-02")
	}
	d.render(w, r, http.StatusOK, "credential_form", s, view{Title: "Edit " + c.Name, Current: "credentials", Data: f})
}

// updateCredential PATCHes name, allowed hosts and expiry, and the value
// when any secret field was filled in (blank keeps it).
func (d *Dashboard) updateCredential(w http.ResponseWriter, r *http.Request, s *session) {
	f := credentialForm{Edit: true, ID: r.PathValue("id"), Type: r.PostFormValue("type")}
	in, err := readForm(r, &f)
	p := agentkeys.CredentialPatch{Name: &f.Name, ExpiresAt: agentkeys.OptionalTime{Set: true}}
	hosts := fields(f.AllowedHosts)
	p.AllowedHosts = &hosts
	if err == nil {
		p.ExpiresAt.Time, err = expiry(f.ExpiresAt)
	}
	if in.Value != "" || in.Username != "" || in.Password != "" || len(in.Headers) > 0 || (in.Param != "" && f.Type == string(agentkeys.QueryParam)) {
		p.Value, p.Username, p.Password, p.Headers = &in.Value, &in.Username, &in.Password, &in.Headers
		if f.Type == string(agentkeys.QueryParam) {
			p.Param = &in.Param
		}
	}
	if err == nil {
		_, err = d.cfg.API(r, s.actor, "PATCH", "/api/v1/credentials/"+url.PathEscape(f.ID), p, nil)
	}
	if err != nil {
		d.render(w, r, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), "credential_form", s, view{Title: "Edit credential", Current: "credentials",
			Error: agentkeys.ErrorMessage(err), Data: f})
		return
	}
	http.Redirect(w, r, "/credentials", http.StatusSeeOther)
}

// oauthForm is the Connect OAuth form.
type oauthForm struct {
	Name, Provider, Scopes string
	Providers              []agentkeys.OAuthProvider
	Tabs                   []typeTab
	AuthorizeURL           string // set once started: the page to continue to
}

func (d *Dashboard) oauthForm(w http.ResponseWriter, r *http.Request, s *session, status int, f oauthForm, msg string) {
	f.Providers = append(append([]agentkeys.OAuthProvider{}, agentkeys.OAuthProviders...),
		agentkeys.OAuthProvider{Name: agentkeys.CustomOAuthProvider, Title: "Custom (the OAuth app your server's operator configured)"})
	f.Tabs = typeTabs
	d.render(w, r, status, "credential_oauth", s, view{Title: "Connect OAuth", Current: "credentials", Error: msg, Data: f})
}

// connectOAuth starts the connection (POST /api/v1/oauth/{provider}/start)
// and sends the browser on to the provider: a page whose link app.js
// follows at once. (A redirect answering the form would be blocked by the
// CSP's form-action 'self' in browsers that apply it to redirects.)
func (d *Dashboard) connectOAuth(w http.ResponseWriter, r *http.Request, s *session) {
	f := oauthForm{Name: strings.TrimSpace(r.PostFormValue("name")), Provider: r.PostFormValue("provider"), Scopes: r.PostFormValue("scopes")}
	if f.Provider == "" {
		d.oauthForm(w, r, s, http.StatusBadRequest, f, "Choose a provider to connect.")
		return
	}
	in := map[string]any{"name": f.Name}
	if sc := fields(f.Scopes); len(sc) > 0 {
		in["scopes"] = sc
	}
	var out struct{ AuthorizeURL string }
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/oauth/"+url.PathEscape(f.Provider)+"/start", in, &out); err != nil {
		d.oauthForm(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), f, agentkeys.ErrorMessage(err))
		return
	}
	f.AuthorizeURL = out.AuthorizeURL
	d.render(w, r, http.StatusOK, "credential_oauth", s, view{Title: "Connect OAuth", Current: "credentials", Data: f})
}

// fields splits a list typed with commas, spaces or newlines.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
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
