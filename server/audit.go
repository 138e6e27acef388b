package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// auditPage is GET /api/v1/audit's answer. NextBefore is the before= of the
// next (older) page, or 0 when there is none or the caller follows with
// after=.
type auditPage struct {
	Events     []*agentkeys.AuditEvent `json:"events"`
	NextBefore int64                   `json:"nextBefore"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
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
	if status > 999 || limit > 1000 {
		return agentkeys.Errorf(agentkeys.EINVALID, "status must be an HTTP status and limit at most 1000")
	}
	f.Status, f.Limit = int(status), int(limit)
	evs, err := s.vault(r, a).ListAudit(r.Context(), f)
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
