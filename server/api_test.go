package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestAPI_Flow walks the seed's API on both databases: create, read,
// update, assign, proxy, audit, status, revoke, delete.
func TestAPI_Flow(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			_, key := s.signup("Acme")

			c := s.createCredential(key, "Upstream", "flow-secret-1", up.host())
			if c.Type != agentkeys.APIKey || len(c.AllowedHosts) != 1 || c.AllowedHosts[0] != up.host() || !strings.HasPrefix(c.ID, "cred_") {
				t.Fatalf("credential = %+v", c)
			}
			var list struct{ Credentials []agentkeys.Credential }
			s.do("GET", "/api/v1/credentials", key, nil).decode(t, &list)
			if len(list.Credentials) != 1 || list.Credentials[0].ID != c.ID {
				t.Fatalf("list = %+v", list)
			}
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).want(t, 200, "")
			s.do("GET", "/api/v1/credentials/upstream", key, nil).want(t, 200, "") // by name

			a := s.do("PATCH", "/api/v1/credentials/"+c.ID, key, map[string]any{"name": "Renamed", "value": "flow-secret-2"})
			a.want(t, 200, "")
			var renamed agentkeys.Credential
			a.decode(t, &renamed)
			if renamed.Name != "Renamed" || renamed.ID != c.ID {
				t.Fatalf("patched = %s", a.body)
			}

			ag := s.createAgent(key, "bot")
			g := s.assign(key, ag.ID, c.ID)
			var agent agentkeys.Agent
			s.do("GET", "/api/v1/agents/"+ag.ID, key, nil).decode(t, &agent)
			if len(agent.Credentials) != 1 || agent.Credentials[0].CredentialID != c.ID {
				t.Fatalf("agent = %+v", agent)
			}

			pa := proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/v1/x?q=1")
			pa.want(t, 200, "")
			if string(pa.body) != "upstream ok" || up.received()[0] != "Bearer flow-secret-2" {
				t.Fatalf("proxied: %s, upstream saw %q", pa.body, up.received())
			}
			// The workspace key opens a credential by name.
			proxyGet(t, s.url, key, "renamed", up.URL+"/by-name").want(t, 200, "")

			var st struct{ Workspace agentkeys.WorkspaceStatus }
			s.do("GET", "/api/v1/workspace/status", key, nil).decode(t, &st)
			if st.Workspace.Name != "Acme" || st.Workspace.Mode != agentkeys.ModeRemote || st.Workspace.Plan != "unlimited" ||
				st.Workspace.Usage.Credentials != 1 || st.Workspace.Usage.Agents != 1 || st.Workspace.Location != s.url {
				t.Fatalf("status = %+v", st.Workspace)
			}

			waitAudit(t, s, key, 2)
			var page struct {
				Events     []agentkeys.AuditEvent
				NextBefore int64
			}
			s.do("GET", "/api/v1/audit?limit=1", key, nil).decode(t, &page)
			if len(page.Events) != 1 || page.NextBefore != page.Events[0].Seq || page.Events[0].Path != "/by-name" {
				t.Fatalf("audit page = %+v", page)
			}
			s.do("GET", "/api/v1/audit?agentId="+ag.ID+"&decision=allowed", key, nil).decode(t, &page)
			if len(page.Events) != 1 || page.Events[0].AgentID != ag.ID || page.Events[0].Path != "/v1/x" || page.NextBefore != 0 {
				t.Fatalf("audit by agent = %+v", page)
			}

			s.do("DELETE", "/api/v1/agents/"+ag.ID+"/credentials/"+c.ID, key, nil).want(t, 204, "")
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/").want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("DELETE", "/api/v1/agents/"+ag.ID, key, nil).want(t, 204, "")
			s.do("DELETE", "/api/v1/credentials/"+c.ID, key, nil).want(t, 204, "")
			s.do("GET", "/api/v1/credentials/"+c.ID, key, nil).want(t, 404, agentkeys.ENOTFOUND)
		})
	}
}

// waitAudit waits until the workspace has n audit events, none pending.
func waitAudit(t *testing.T, s *testServer, key string, n int) []agentkeys.AuditEvent {
	t.Helper()
	var page struct{ Events []agentkeys.AuditEvent }
	for i := 0; i < 500; i++ {
		s.do("GET", "/api/v1/audit", key, nil).decode(t, &page)
		done := len(page.Events) == n
		for _, e := range page.Events {
			done = done && e.Decision != agentkeys.DecisionPending
		}
		if done {
			return page.Events
		}
		sleepBriefly()
	}
	t.Fatalf("audit has %d events (%+v), want %d completed", len(page.Events), page.Events, n)
	return nil
}

// TestAPI_Refusals: every refusal has its exact status and code, and
// nothing is written.
func TestAPI_Refusals(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, key := s.signup("Acme")
	c := s.createCredential(key, "Main", "v1", "api.example.com")
	ag := s.createAgent(key, "bot")
	big := `{"name":"x","value":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, method, path, key string
		body                    any
		status                  int
		code                    string
	}{
		{"NoKey", "GET", "/api/v1/credentials", "", nil, 401, agentkeys.EUNAUTHORIZED},
		{"BadKey", "GET", "/api/v1/credentials", agentkeys.NewWorkspaceKey(), nil, 401, agentkeys.EUNAUTHORIZED},
		{"ProxyTokenAsKey", "GET", "/api/v1/credentials", agentkeys.NewProxyToken(), nil, 401, agentkeys.EUNAUTHORIZED},
		{"UnknownField", "POST", "/api/v1/credentials", key, `{"name":"n","value":"v","allowedHosts":["a.example.com"],"color":"red"}`, 400, agentkeys.EINVALID},
		{"SetID", "POST", "/api/v1/credentials", key, `{"id":"cred_x","name":"n","value":"v","allowedHosts":["a.example.com"]}`, 400, agentkeys.EINVALID},
		{"SetWorkspaceID", "POST", "/api/v1/credentials", key, `{"workspaceId":"ws_x","name":"n","value":"v","allowedHosts":["a.example.com"]}`, 400, agentkeys.EINVALID},
		{"SetCreatedAt", "POST", "/api/v1/agents", key, `{"name":"n","createdAt":"2025-01-01T00:00:00Z"}`, 400, agentkeys.EINVALID},
		{"PatchID", "PATCH", "/api/v1/credentials/" + c.ID, key, `{"id":"cred_other"}`, 400, agentkeys.EINVALID},
		{"BadJSON", "POST", "/api/v1/credentials", key, `{"name":`, 400, agentkeys.EINVALID},
		{"TwoObjects", "POST", "/api/v1/agents", key, `{"name":"a"}{"name":"b"}`, 400, agentkeys.EINVALID},
		{"WrongType", "POST", "/api/v1/agents", key, `{"name":5}`, 400, agentkeys.EINVALID},
		{"NoBody", "POST", "/api/v1/agents", key, nil, 400, agentkeys.EINVALID},
		{"TooLarge", "POST", "/api/v1/credentials", key, big, 413, agentkeys.ETOOLARGE},
		{"NoHosts", "POST", "/api/v1/credentials", key, map[string]any{"name": "Unknown thing", "type": "API_KEY", "value": "v"}, 400, agentkeys.EINVALID},
		// The type is required, as the Vault contract says: a default would
		// pick how the secret is injected for the caller.
		{"NoType", "POST", "/api/v1/credentials", key, map[string]any{"name": "n", "value": "v", "allowedHosts": []string{"a.example.com"}}, 400, agentkeys.EINVALID},
		{"BlankType", "POST", "/api/v1/credentials", key, map[string]any{"name": "n", "type": " ", "value": "v", "allowedHosts": []string{"a.example.com"}}, 400, agentkeys.EINVALID},
		{"BadType", "POST", "/api/v1/credentials", key, map[string]any{"name": "n", "type": "PIGEON", "value": "v", "allowedHosts": []string{"a.example.com"}}, 400, agentkeys.EINVALID},
		{"DuplicateName", "POST", "/api/v1/credentials", key, map[string]any{"name": "MAIN", "type": "API_KEY", "value": "v", "allowedHosts": []string{"a.example.com"}}, 409, agentkeys.ECONFLICT},
		{"DuplicateAgent", "POST", "/api/v1/agents", key, map[string]any{"name": "BOT"}, 409, agentkeys.ECONFLICT},
		{"EmptyHosts", "PATCH", "/api/v1/credentials/" + c.ID, key, map[string]any{"allowedHosts": []string{}}, 400, agentkeys.EINVALID},
		{"PatchUnknown", "PATCH", "/api/v1/credentials/cred_nope", key, map[string]any{"name": "x"}, 404, agentkeys.ENOTFOUND},
		{"AssignUnknownCred", "POST", "/api/v1/agents/" + ag.ID + "/credentials", key, map[string]any{"credentialId": "cred_nope"}, 404, agentkeys.ENOTFOUND},
		{"AssignNoCred", "POST", "/api/v1/agents/" + ag.ID + "/credentials", key, map[string]any{}, 400, agentkeys.EINVALID},
		{"RevokeUnassigned", "DELETE", "/api/v1/agents/" + ag.ID + "/credentials/" + c.ID, key, nil, 404, agentkeys.ENOTFOUND},
		{"AuditBadLimit", "GET", "/api/v1/audit?limit=-1", key, nil, 400, agentkeys.EINVALID},
		{"AuditUnknownParam", "GET", "/api/v1/audit?sort=asc", key, nil, 400, agentkeys.EINVALID},
		{"UnknownRoute", "GET", "/api/v1/nothing", key, nil, 404, agentkeys.ENOTFOUND},
		{"WrongMethod", "PUT", "/api/v1/credentials", key, nil, 405, agentkeys.EINVALID},
		{"SignupShortPassword", "POST", "/api/v1/signup", "", map[string]string{"email": "b@example.com", "password": "short", "workspace": "B"}, 400, agentkeys.EINVALID},
		{"SignupBadEmail", "POST", "/api/v1/signup", "", map[string]string{"email": "not an email", "password": "long enough pw", "workspace": "B"}, 400, agentkeys.EINVALID},
		{"SignupTaken", "POST", "/api/v1/signup", "", map[string]string{"email": "acme@example.com", "password": "long enough pw", "workspace": "B"}, 409, agentkeys.ECONFLICT},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.do(tc.method, tc.path, tc.key, tc.body).want(t, tc.status, tc.code)
			wantState(t, s, key, []string{"Main"}, []string{"bot"})
		})
	}
}

// TestAPI_MethodNotAllowed: a known path with a method it does not take is
// 405 with the Allow header HTTP requires, listing the methods it takes.
func TestAPI_MethodNotAllowed(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, key := s.signup("Acme")
	for path, allow := range map[string]string{
		"/api/v1/credentials":                "GET, POST",
		"/api/v1/credentials/cred_x":         "GET, PATCH, DELETE",
		"/api/v1/agents/agent_x":             "GET, DELETE",
		"/api/v1/agents/agent_x/credentials": "POST",
		"/api/v1/signup":                     "POST",
	} {
		a := s.do("PUT", path, key, nil)
		a.want(t, 405, agentkeys.EINVALID)
		if got := a.header.Get("Allow"); got != allow {
			t.Errorf("PUT %s: Allow = %q, want %q", path, got, allow)
		}
	}
}

// wantState fails unless the workspace holds exactly these credentials
// and agents, the agents without assignments.
func wantState(t *testing.T, s *testServer, key string, creds, agents []string) {
	t.Helper()
	var cl struct{ Credentials []agentkeys.Credential }
	s.do("GET", "/api/v1/credentials", key, nil).decode(t, &cl)
	var al struct{ Agents []agentkeys.Agent }
	s.do("GET", "/api/v1/agents", key, nil).decode(t, &al)
	var got []string
	for _, c := range cl.Credentials {
		got = append(got, c.Name)
	}
	if strings.Join(got, ",") != strings.Join(creds, ",") {
		t.Fatalf("credentials = %q, want %q", got, creds)
	}
	got = nil
	for _, a := range al.Agents {
		got = append(got, a.Name)
		if len(a.Credentials) != 0 {
			t.Fatalf("agent %s has assignments %+v", a.Name, a.Credentials)
		}
	}
	if strings.Join(got, ",") != strings.Join(agents, ",") {
		t.Fatalf("agents = %q, want %q", got, agents)
	}
}

func TestAPI_SignupClosed(t *testing.T) {
	s := newTestServer(t, serverOpts{signupClosed: true})
	s.do("POST", "/api/v1/signup", "", map[string]string{"email": "a@example.com", "password": "long enough pw", "workspace": "A"}).
		want(t, http.StatusForbidden, agentkeys.EFORBIDDEN)
	var n int
	if err := s.store.DB().QueryRow(`SELECT COUNT(*) FROM workspaces`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("workspaces after refused sign-up = %d (%v)", n, err)
	}
	// The host can still create one directly.
	if _, err := s.store.CreateWorkspace(t.Context(), storeWorkspace("a@example.com", "A")); err != nil {
		t.Fatal(err)
	}
}

func TestAPI_Health(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.do("GET", "/healthz", "", nil).want(t, 200, "")
	s.do("GET", "/readyz", "", nil).want(t, 200, "")
	a := s.do("GET", "/api/v1/credentials", "", nil)
	if id := a.header.Get(agentkeys.HeaderRequestID); !strings.HasPrefix(id, "req_") || !strings.Contains(s.logs.String(), id) {
		t.Fatalf("request id %q not in the logs", id)
	}
	s.store.Close()
	s.do("GET", "/readyz", "", nil).want(t, 503, agentkeys.EUNAVAILABLE)
}

// TestLogs_RequestIDOnEveryLine: every log line written while serving a
// request (API calls, sign-up, proxied requests, refusals) carries its
// request_id; none carries a secret.
func TestLogs_RequestIDOnEveryLine(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	up := newUpstream(t)
	_, key := s.signup("Acme")
	c := s.createCredential(key, "svc", "log-secret-value", up.host())
	ag := s.createAgent(key, "bot")
	g := s.assign(key, ag.ID, c.ID)
	proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/ok").want(t, 200, "")
	proxyGet(t, s.url, g.ProxyToken, "", "https://evil.example/").want(t, 403, agentkeys.EDESTINATION)
	s.do("GET", "/api/v1/nothing", key, nil).want(t, 404, agentkeys.ENOTFOUND)
	s.do("GET", "/api/v1/credentials", "", nil).want(t, 401, agentkeys.EUNAUTHORIZED)
	waitAudit(t, s, key, 2)
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	served := 0
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		for _, secret := range []string{"log-secret-value", key, g.ProxyToken, "correct horse"} {
			if strings.Contains(l, secret) {
				t.Fatalf("log line carries a secret: %s", l)
			}
		}
		if rec["msg"] == "database migrated" {
			continue // startup, before any request
		}
		served++
		if id, _ := rec["request_id"].(string); !strings.HasPrefix(id, "req_") {
			t.Errorf("log line without request_id: %s", l)
		}
	}
	if served < 8 {
		t.Fatalf("only %d request log lines: %s", served, s.logs.String())
	}
}
