package dashboard

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 50

// stopPolling is the status that tells htmx to stop an every-N-seconds
// trigger.
const stopPolling = 286

// auditDecisions are the decision filter's choices ("" is any).
var auditDecisions = []string{agentkeys.DecisionAllowed, agentkeys.DecisionDenied, agentkeys.DecisionError, agentkeys.DecisionAdmin}

// auditFilter is the audit page's filter form as typed. Agent is an agent's
// id (a select); Credential a credential's name (a name field, as a
// workspace may have thousands); From and To are UTC dates, To inclusive.
type auditFilter struct {
	Agent, Credential, Decision, From, To string
	Before                                int64
}

func readAuditFilter(q url.Values) auditFilter {
	f := auditFilter{Agent: q.Get("agent"), Credential: strings.TrimSpace(q.Get("credential")), Decision: q.Get("decision"),
		From: q.Get("from"), To: q.Get("to")}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	return f
}

// values is the filter as the page's query (before and after left out).
func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"agent": f.Agent, "credential": f.Credential, "decision": f.Decision, "from": f.From, "to": f.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// live reports whether events arriving now can match the filter: the page
// is the newest one and the range reaches today.
func (f auditFilter) live(now time.Time) bool {
	if f.Before > 0 {
		return false
	}
	to, err := time.Parse("2006-01-02", f.To)
	return f.To == "" || err == nil && !to.Before(now.UTC().Truncate(24*time.Hour))
}

// apiQuery is the filter as GET /api/v1/audit's parameters; the credential
// name is resolved to its id. Returns the API's error (and its status) for
// a name that matches no credential, EINVALID for a bad date or decision.
func (d *Dashboard) apiQuery(r *http.Request, s *session, f auditFilter) (url.Values, int, error) {
	q := url.Values{}
	if f.Agent != "" {
		q.Set("agentId", f.Agent)
	}
	if f.Credential != "" {
		var c agentkeys.Credential
		if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/credentials/"+url.PathEscape(f.Credential), nil, &c); err != nil {
			return nil, st, err
		}
		q.Set("credentialId", c.ID)
	}
	if f.Decision != "" {
		if !slices.Contains(auditDecisions, f.Decision) {
			return nil, http.StatusBadRequest, agentkeys.Errorf(agentkeys.EINVALID, "decision must be one of %s", strings.Join(auditDecisions, ", "))
		}
		q.Set("decision", f.Decision)
	}
	for _, p := range []struct {
		name, date string
		days       int
	}{{"since", f.From, 0}, {"until", f.To, 1}} {
		if p.date == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", p.date)
		if err != nil {
			return nil, http.StatusBadRequest, agentkeys.Errorf(agentkeys.EINVALID, "%q is not a date (YYYY-MM-DD)", p.date)
		}
		q.Set(p.name, t.AddDate(0, 0, p.days).Format(time.RFC3339))
	}
	return q, 0, nil
}

type auditPage struct {
	Filter   auditFilter
	Agents   []*agentkeys.Agent
	Events   []*agentkeys.AuditEvent
	Older    string // the next page's link; "" on the last
	Newest   string // the first page's link, when this is an older one
	Poll     string // the live rows' URL; "" when no new event can match
	Columns  int
	Decision []string
}

type auditAnswer struct {
	Events     []*agentkeys.AuditEvent
	NextBefore int64
}

func (d *Dashboard) audit(w http.ResponseWriter, r *http.Request, s *session) {
	f := readAuditFilter(r.URL.Query())
	p := auditPage{Filter: f, Columns: 7, Decision: auditDecisions}
	var as struct{ Agents []*agentkeys.Agent }
	if s.actor.Can(agentkeys.PermViewCredentials) { // the agent filter's names
		if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/agents", nil, &as); err != nil {
			d.failErr(w, r, s, st, err)
			return
		}
	}
	p.Agents = as.Agents
	v := view{Title: "Audit", Current: "audit", Data: &p}
	q, st, err := d.apiQuery(r, s, f)
	if err != nil {
		v.Error = agentkeys.ErrorMessage(err)
		d.render(w, r, st, "audit", s, v)
		return
	}
	q.Set("limit", strconv.Itoa(auditPageSize))
	if f.Before > 0 {
		q.Set("before", strconv.FormatInt(f.Before, 10))
	}
	var out auditAnswer
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
		if st == http.StatusForbidden {
			d.failErr(w, r, s, st, err)
			return
		}
		v.Error = agentkeys.ErrorMessage(err)
		d.render(w, r, st, "audit", s, v)
		return
	}
	p.Events = out.Events
	fv := f.values()
	if out.NextBefore > 0 {
		older := f.values()
		older.Set("before", strconv.FormatInt(out.NextBefore, 10))
		p.Older = "/audit?" + older.Encode()
	}
	if f.Before > 0 {
		p.Newest = "/audit?" + fv.Encode()
	}
	if f.live(time.Now()) {
		p.Poll = pollURL(fv, p.Events, 0)
	}
	d.render(w, r, http.StatusOK, "audit", s, v)
}

// pollURL asks for the events newer than the newest of evs (or than after
// when evs is empty).
func pollURL(filter url.Values, evs []*agentkeys.AuditEvent, after int64) string {
	for _, e := range evs {
		after = max(after, e.Seq)
	}
	v := url.Values{}
	for k, s := range filter {
		v[k] = s
	}
	v.Set("after", strconv.FormatInt(after, 10))
	return "/audit/rows?" + v.Encode()
}

// auditRows answers the live table's poll (htmx, every 5 s): the events
// newer than after that match the filter, newest first, after a new
// poller row asking for those newer still.
func (d *Dashboard) auditRows(w http.ResponseWriter, r *http.Request, s *session) {
	f := readAuditFilter(r.URL.Query())
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil || after < 0 || f.Before > 0 {
		http.Error(w, "after must be a sequence number from the audit page", http.StatusBadRequest)
		return
	}
	if !f.live(time.Now()) { // htmx stops polling on 286
		w.WriteHeader(stopPolling)
		return
	}
	q, st, err := d.apiQuery(r, s, f)
	if err != nil {
		http.Error(w, agentkeys.ErrorMessage(err), st)
		return
	}
	q.Set("limit", "100")
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	var out auditAnswer
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
		http.Error(w, agentkeys.ErrorMessage(err), st)
		return
	}
	if after > 0 { // with after= the API answers oldest first
		slices.Reverse(out.Events)
	}
	p := auditPage{Filter: f, Events: out.Events, Columns: 7, Poll: pollURL(f.values(), out.Events, after)}
	d.fragment(w, r, http.StatusOK, "audit", "audit_live", s, view{Data: &p})
}
