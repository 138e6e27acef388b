package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestTenantIsolation calls every route with workspace A's key and
// workspace B's ids: routes that take an id answer 404 and change nothing
// in B; list routes never show B's rows. Every route of the server must be
// in this table: a route added without a row here fails the test.
func TestTenantIsolation(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			_, keyA := s.signup("Alpha")
			_, keyB := s.signup("Beta")
			s.createCredential(keyA, "a-cred", "alpha-secret", up.host())
			s.createAgent(keyA, "a-bot")
			credB := s.createCredential(keyB, "b-cred", "beta-secret", up.host())
			agentB := s.createAgent(keyB, "b-bot")
			grantB := s.assign(keyB, agentB.ID, credB.ID)
			// B makes a request so it has an audit row.
			proxyGet(t, s.url, grantB.ProxyToken, "", up.URL+"/b-only").want(t, 200, "")
			waitAudit(t, s, keyB, 1)

			type call struct {
				method, path string
				body         any
				status       int
			}
			idB, cB := agentB.ID, credB.ID
			table := map[string][]call{
				"POST /api/v1/signup": nil, // creates a new workspace; takes no id
				"GET /api/v1/credentials": {{
					"GET", "/api/v1/credentials", nil, 200}},
				"POST /api/v1/credentials": nil, // creates in A; takes no id
				"GET /api/v1/credentials/{id}": {
					{"GET", "/api/v1/credentials/" + cB, nil, 404},
					{"GET", "/api/v1/credentials/b-cred", nil, 404}},
				"PATCH /api/v1/credentials/{id}": {
					{"PATCH", "/api/v1/credentials/" + cB, map[string]any{"name": "stolen", "value": "x"}, 404}},
				"DELETE /api/v1/credentials/{id}": {
					{"DELETE", "/api/v1/credentials/" + cB, nil, 404}},
				"GET /api/v1/agents": {
					{"GET", "/api/v1/agents", nil, 200}},
				"POST /api/v1/agents": nil,
				"GET /api/v1/agents/{id}": {
					{"GET", "/api/v1/agents/" + idB, nil, 404},
					{"GET", "/api/v1/agents/b-bot", nil, 404}},
				"DELETE /api/v1/agents/{id}": {
					{"DELETE", "/api/v1/agents/" + idB, nil, 404}},
				"POST /api/v1/agents/{id}/credentials": {
					{"POST", "/api/v1/agents/" + idB + "/credentials", map[string]any{"credentialId": cB}, 404}},
				"DELETE /api/v1/agents/{id}/credentials/{credentialId}": {
					{"DELETE", "/api/v1/agents/" + idB + "/credentials/" + cB, nil, 404}},
				"GET /api/v1/workspace/status": {
					{"GET", "/api/v1/workspace/status", nil, 200}},
				"GET /api/v1/audit": {
					{"GET", "/api/v1/audit", nil, 200},
					{"GET", "/api/v1/audit?agentId=" + idB, nil, 200},
					{"GET", "/api/v1/audit?credentialId=" + cB, nil, 200}},
				// Starts in A (the state is bound to A's workspace); takes no id.
				"POST /api/v1/oauth/{provider}/start": nil,
				"GET /api/v1/oauth/callback":          nil, // public: the state binds it (TestOAuth_ServerFlow)
				"GET /api/v1/openapi.json":            nil, // public, no workspace data
				"GET /healthz":                        nil,
				"GET /readyz":                         nil,
				" /v1/proxy":                          nil, // checked below with A's key and B's credential name
				" /to/":                               nil, // base-URL mode: pxr_ tokens only
			}
			covered := map[string]bool{}
			for _, rt := range s.srv.Routes() {
				k := rt.Method + " " + rt.Path
				covered[k] = true
				if _, ok := table[k]; !ok {
					t.Errorf("route %q is not in the tenant isolation table: add it", k)
				}
			}
			for k := range table {
				if !covered[k] {
					t.Errorf("the table names %q, which the server does not have", k)
				}
			}

			// Assigning B's credential to A's own agent, and revoking it.
			var agentsA struct{ Agents []agentkeys.Agent }
			s.do("GET", "/api/v1/agents", keyA, nil).decode(t, &agentsA)
			aBot := agentsA.Agents[0].ID
			calls := []call{
				{"POST", "/api/v1/agents/" + aBot + "/credentials", map[string]any{"credentialId": cB}, 404},
				{"DELETE", "/api/v1/agents/" + aBot + "/credentials/" + cB, nil, 404},
			}
			for _, cs := range table {
				calls = append(calls, cs...)
			}
			for _, c := range calls {
				a := s.do(c.method, c.path, keyA, c.body)
				if a.status != c.status {
					t.Errorf("%s %s with A's key = %d, want %d: %s", c.method, c.path, a.status, c.status, a.body)
				}
				// An id the caller sent may be echoed in the 404's message;
				// nothing else of B's may appear.
				for _, leak := range []string{idB, cB, "b-cred", "b-bot", "Beta", "/b-only", "beta-secret"} {
					sent := c.path + fmt.Sprint(c.body)
					if strings.Contains(string(a.body), leak) && !strings.Contains(sent, leak) {
						t.Errorf("%s %s with A's key shows B's %q: %s", c.method, c.path, leak, a.body)
					}
				}
			}
			// The workspace key of A cannot open B's credential by name.
			proxyGet(t, s.url, keyA, "b-cred", up.URL+"/").want(t, 404, agentkeys.ENOTFOUND)

			// B is untouched: its credential, agent, grant and token work.
			var credsB struct{ Credentials []agentkeys.Credential }
			s.do("GET", "/api/v1/credentials", keyB, nil).decode(t, &credsB)
			if len(credsB.Credentials) != 1 || credsB.Credentials[0].Name != "b-cred" {
				t.Fatalf("B's credentials = %+v", credsB)
			}
			var ag agentkeys.Agent
			s.do("GET", "/api/v1/agents/"+idB, keyB, nil).decode(t, &ag)
			if len(ag.Credentials) != 1 {
				t.Fatalf("B's agent lost its assignment: %+v", ag)
			}
			proxyGet(t, s.url, grantB.ProxyToken, "", up.URL+"/still").want(t, 200, "")
			if got := up.received(); got[len(got)-1] != "Bearer beta-secret" {
				t.Fatalf("B's value changed: upstream saw %q", got[len(got)-1])
			}
			var st struct{ Workspace agentkeys.WorkspaceStatus }
			s.do("GET", "/api/v1/workspace/status", keyA, nil).decode(t, &st)
			if st.Workspace.Usage.Credentials != 1 || st.Workspace.Usage.Agents != 1 || st.Workspace.Usage.RequestsThisMonth != 0 {
				t.Fatalf("A's status counts B's rows: %+v", st.Workspace.Usage)
			}
		})
	}
}
