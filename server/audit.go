package server

import (
	"net/http"
	"sort"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// auditPage is GET /api/v1/audit's answer. NextBefore is the before= of the
// next (older) page, or 0 when there is none or the caller follows with
// after=.
type auditPage struct {
	Events     []*agentkeys.AuditEvent `json:"events"`
	NextBefore int64                   `json:"nextBefore"`
}

// listAudit answers GET /api/v1/audit: proxied requests and admin actions
// (decision "admin") in one log, ordered by their shared sequence number.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	q, err := query(r, "agentId", "credentialId", "status", "decision", "limit", "before", "after", "since", "until")
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
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			if *p.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return agentkeys.Errorf(agentkeys.EINVALID, "query parameter %s must be an RFC 3339 time, such as 2026-06-01T00:00:00Z", p.name)
			}
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return agentkeys.Errorf(agentkeys.EINVALID, "the time range ends before it starts: give an until later than since")
	}
	want := f.Limit
	if want == 0 {
		want = 100
	}
	evs, err := s.auditEvents(r, a, f, want)
	if err != nil {
		return err
	}
	page := auditPage{Events: evs}
	if f.AfterSeq == 0 && len(evs) == want && len(evs) > 0 {
		page.NextBefore = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// auditEvents merges the proxied requests matching f with the admin events
// (which only an unfiltered list, or decision=admin, includes), newest
// first (oldest first with after=), at most want.
func (s *Server) auditEvents(r *http.Request, a *agentkeys.Actor, f agentkeys.AuditFilter, want int) ([]*agentkeys.AuditEvent, error) {
	af := store.AdminEventFilter{BeforeSeq: f.BeforeSeq, AfterSeq: f.AfterSeq, Limit: want, Since: f.Since, Until: f.Until}
	if f.Decision == agentkeys.DecisionAdmin {
		if f.AgentID != "" || f.CredentialID != "" || f.Status != 0 {
			return []*agentkeys.AuditEvent{}, nil
		}
		return s.store.ListAdminEvents(r.Context(), a.WorkspaceID, af)
	}
	evs, err := s.vault(r, a).ListAudit(r.Context(), f)
	if err != nil || f.AgentID != "" || f.CredentialID != "" || f.Status != 0 || f.Decision != "" {
		return evs, err
	}
	admin, err := s.store.ListAdminEvents(r.Context(), a.WorkspaceID, af)
	if err != nil || len(admin) == 0 {
		return evs, err
	}
	all := append(evs, admin...)
	asc := f.AfterSeq > 0
	sort.Slice(all, func(i, j int) bool {
		if asc {
			return all[i].Seq < all[j].Seq
		}
		return all[i].Seq > all[j].Seq
	})
	if len(all) > want {
		all = all[:want]
	}
	return all, nil
}
