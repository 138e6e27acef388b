package vaulttest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// auditFixture makes a known set of requests: bot-a with cred-a 3 times
// (200), bot-b with cred-b twice (upstream 404), and one request of bot-a
// refused for its destination; then waits until no event is pending.
type auditFixture struct {
	v              agentkeys.Vault
	up             *upstream
	agentA, agentB *agentkeys.Agent
	credA, credB   *agentkeys.Credential
}

func (s *suite) auditFixture(t *testing.T) *auditFixture {
	t.Helper()
	f := &auditFixture{v: s.proxyVault(t), up: newUpstream(t)}
	f.credA = mustCreateCredential(t, f.v, apiKey("cred-a", "audit-secret-a", f.up.host))
	f.credB = mustCreateCredential(t, f.v, &agentkeys.CredentialInput{Name: "cred-b", Type: agentkeys.QueryParam,
		AllowedHosts: []string{f.up.host}, Secret: agentkeys.Secret{Param: "key", Value: "audit-secret-b"}})
	f.agentA = mustCreateAgent(t, f.v, "bot-a")
	f.agentB = mustCreateAgent(t, f.v, "bot-b")
	ta := mustAssign(t, f.v, f.agentA.ID, f.credA.ID).ProxyToken
	tb := mustAssign(t, f.v, f.agentB.ID, f.credB.ID).ProxyToken
	for i := 0; i < 3; i++ {
		mustSend(t, f.v, &agentkeys.ProxyRequest{Token: ta, URL: f.up.url(fmt.Sprintf("/a/%d?secret=q", i))})
	}
	for i := 0; i < 2; i++ {
		resp, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: tb, Method: "DELETE", URL: f.up.url("/missing?x=1")})
		mustNoErr(t, err, "Proxy")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	}
	_, _, err := send(t, f.v, &agentkeys.ProxyRequest{Token: ta, URL: "https://evil.example/x"})
	wantCode(t, err, agentkeys.EDESTINATION)
	waitFor(t, "6 completed audit events", func() bool {
		evs, err := f.v.ListAudit(t.Context(), agentkeys.AuditFilter{})
		mustNoErr(t, err, "ListAudit")
		if len(evs) != 6 {
			return false
		}
		for _, e := range evs {
			if e.Decision == agentkeys.DecisionPending {
				return false
			}
		}
		return true
	})
	return f
}

func listAudit(t *testing.T, v agentkeys.Vault, f agentkeys.AuditFilter) []*agentkeys.AuditEvent {
	t.Helper()
	evs, err := v.ListAudit(t.Context(), f)
	mustNoErr(t, err, "ListAudit")
	return evs
}

func wantDescending(t *testing.T, evs []*agentkeys.AuditEvent) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq >= evs[i-1].Seq {
			t.Fatalf("events not newest first: seq %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
}

func (s *suite) testListAudit(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		v := s.vault(t)
		if evs := listAudit(t, v, agentkeys.AuditFilter{}); len(evs) != 0 {
			t.Fatalf("new vault has %d audit events", len(evs))
		}
	})
	f := s.auditFixture(t)
	t.Run("Fields", func(t *testing.T) {
		evs := listAudit(t, f.v, agentkeys.AuditFilter{})
		wantDescending(t, evs)
		var ok, notFound, denied int
		for _, e := range evs {
			if e.ID == "" || e.RequestID == "" || e.Time.IsZero() || e.Seq <= 0 || e.Method == "" {
				t.Errorf("event lacks id, request id, time, seq or method: %+v", e)
			}
			if strings.Contains(e.Path, "?") || strings.Contains(e.Path, "secret") {
				t.Errorf("event path %q carries the query string", e.Path)
			}
			switch {
			case e.Decision == agentkeys.DecisionAllowed && e.Status == 200:
				ok++
				if e.AgentID != f.agentA.ID || e.AgentName != "bot-a" || e.CredentialID != f.credA.ID || e.CredentialName != "cred-a" ||
					e.Method != "GET" || e.Host != f.up.host || !strings.HasPrefix(e.Path, "/a/") || e.BytesOut != int64(len("hello from upstream")) {
					t.Errorf("allowed event = %+v", e)
				}
			case e.Decision == agentkeys.DecisionAllowed && e.Status == 404:
				notFound++
				if e.AgentID != f.agentB.ID || e.CredentialID != f.credB.ID || e.Method != "DELETE" || e.Path != "/missing" {
					t.Errorf("404 event = %+v", e)
				}
			case e.Decision == agentkeys.DecisionDenied:
				denied++
				if e.Code != agentkeys.EDESTINATION || e.Status != 403 || e.AgentID != f.agentA.ID {
					t.Errorf("denied event = %+v", e)
				}
			default:
				t.Errorf("unexpected event %+v", e)
			}
		}
		if ok != 3 || notFound != 2 || denied != 1 {
			t.Fatalf("got %d ok, %d not found, %d denied; want 3, 2, 1", ok, notFound, denied)
		}
		wantNoSecret(t, "audit events", evs, "audit-secret-a", "audit-secret-b")
	})
	filters := []struct {
		name string
		f    func() agentkeys.AuditFilter
		want int
	}{
		{"FilterAgent", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{AgentID: f.agentB.ID} }, 2},
		{"FilterCredential", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{CredentialID: f.credA.ID} }, 4},
		{"FilterStatus", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{Status: 404} }, 2},
		{"FilterDecision", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{Decision: agentkeys.DecisionDenied} }, 1},
		{"FilterCombined", func() agentkeys.AuditFilter {
			return agentkeys.AuditFilter{AgentID: f.agentA.ID, Decision: agentkeys.DecisionAllowed}
		}, 3},
		{"FilterNoMatch", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{AgentID: unknownAgent} }, 0},
		{"Limit", func() agentkeys.AuditFilter { return agentkeys.AuditFilter{Limit: 2} }, 2},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			flt := tc.f()
			evs := listAudit(t, f.v, flt)
			if len(evs) != tc.want {
				t.Fatalf("got %d events, want %d", len(evs), tc.want)
			}
			wantDescending(t, evs)
			for _, e := range evs {
				if flt.AgentID != "" && e.AgentID != flt.AgentID || flt.CredentialID != "" && e.CredentialID != flt.CredentialID ||
					flt.Status != 0 && e.Status != flt.Status || flt.Decision != "" && e.Decision != flt.Decision {
					t.Fatalf("event %+v does not match filter %+v", e, flt)
				}
			}
		})
	}
	t.Run("ErrNegative", func(t *testing.T) {
		v := s.vault(t)
		for _, f := range []agentkeys.AuditFilter{{Limit: -1}, {BeforeSeq: -1}, {AfterSeq: -1}, {Status: -1}} {
			_, err := v.ListAudit(t.Context(), f)
			wantCode(t, err, agentkeys.EINVALID)
		}
	})
	t.Run("BeforeSeqPagesNewestFirst", func(t *testing.T) {
		all := listAudit(t, f.v, agentkeys.AuditFilter{})
		var paged []*agentkeys.AuditEvent
		before := int64(0)
		for page := 0; page < 10; page++ {
			evs := listAudit(t, f.v, agentkeys.AuditFilter{BeforeSeq: before, Limit: 4})
			if len(evs) == 0 {
				break
			}
			paged = append(paged, evs...)
			before = evs[len(evs)-1].Seq
		}
		if len(paged) != len(all) {
			t.Fatalf("paging returned %d events, want %d", len(paged), len(all))
		}
		for i := range all {
			if paged[i].ID != all[i].ID {
				t.Fatalf("page order differs at %d", i)
			}
		}
		wantDescending(t, paged)
	})
	t.Run("AfterSeqFollowsOldestFirst", func(t *testing.T) {
		all := listAudit(t, f.v, agentkeys.AuditFilter{})
		after := all[3].Seq // the third newest is the cut
		evs := listAudit(t, f.v, agentkeys.AuditFilter{AfterSeq: after})
		if len(evs) != 3 {
			t.Fatalf("got %d events after seq %d, want 3", len(evs), after)
		}
		for i, e := range evs {
			if e.Seq <= after || (i > 0 && e.Seq <= evs[i-1].Seq) {
				t.Fatalf("events after %d not oldest first: %d", after, e.Seq)
			}
		}
		if evs[2].ID != all[0].ID {
			t.Fatalf("last followed event %s, want the newest %s", evs[2].ID, all[0].ID)
		}
		// A new request appears when following from the newest seq.
		last := all[0].Seq
		tok := mustAssign(t, f.v, f.agentA.ID, f.credA.ID).ProxyToken
		mustSend(t, f.v, &agentkeys.ProxyRequest{Token: tok, URL: f.up.url("/followed")})
		waitFor(t, "the new event to complete", func() bool {
			evs := listAudit(t, f.v, agentkeys.AuditFilter{AfterSeq: last})
			return len(evs) > 0 && evs[len(evs)-1].Path == "/followed" && evs[len(evs)-1].Decision == agentkeys.DecisionAllowed
		})
	})
}
