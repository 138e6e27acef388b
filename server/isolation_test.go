package server_test

import (
	"fmt"
	"net/http"
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
			// B has a webhook endpoint with a delivery (no dispatcher runs:
			// it stays pending); A has one of its own.
			var whAns struct{ Webhook struct{ ID string } }
			s.do("POST", "/api/v1/webhooks", keyB, map[string]any{"url": "https://hooks.example.com/b-hook", "events": []string{"credential.expired"}}).decode(t, &whAns)
			whB := whAns.Webhook.ID
			s.do("POST", "/api/v1/webhooks/"+whB+"/test", keyB, nil).want(t, 202, "")
			var dsB struct{ Deliveries []struct{ ID string } }
			s.do("GET", "/api/v1/webhooks/"+whB+"/deliveries", keyB, nil).decode(t, &dsB)
			if whB == "" || len(dsB.Deliveries) != 1 {
				t.Fatalf("B's webhook %q, deliveries %+v", whB, dsB)
			}
			dB := dsB.Deliveries[0].ID
			s.do("POST", "/api/v1/webhooks", keyA, map[string]any{"url": "https://hooks.example.com/a-hook", "events": []string{"credential.expired"}}).decode(t, &whAns)
			whA := whAns.Webhook.ID

			// B syncs a vault; A's key reaches none of it (sync routes
			// also need a device token, which is scoped by workspace).
			vaultB := "sv_" + strings.Repeat("b", 32)
			syncB := "/api/v1/sync/vaults/" + vaultB
			var devB struct{ DeviceToken string }
			s.do("POST", syncB+"/devices", keyB, map[string]any{"label": ""}).decode(t, &devB)

			type call struct {
				method, path string
				body         any
				status       int
			}
			idB, cB := agentB.ID, credB.ID
			var membersB struct{ Members []struct{ UserID string } }
			s.do("GET", "/api/v1/members", keyB, nil).decode(t, &membersB)
			userB := membersB.Members[0].UserID
			var keysB struct{ APIKeys []struct{ ID string } }
			s.do("GET", "/api/v1/api-keys", keyB, nil).decode(t, &keysB)
			keyIDB := keysB.APIKeys[0].ID
			var inv struct{ ID string }
			s.do("POST", "/api/v1/invitations", keyB, map[string]any{"email": "b-invitee@example.com", "role": "member"}).decode(t, &inv)
			invB := inv.ID
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
				"POST /api/v1/login":                  nil, // public; answers only the caller's own workspaces
				"POST /api/v1/signup/confirm":         nil, // public; makes a new workspace
				"GET /api/v1/workspaces":              {{"GET", "/api/v1/workspaces", nil, 200}},
				"POST /api/v1/workspaces":             nil, // creates a new workspace; takes no id
				"GET /api/v1/workspace":               {{"GET", "/api/v1/workspace", nil, 200}},
				"PATCH /api/v1/workspace":             nil, // the caller's own workspace only; takes no id
				"DELETE /api/v1/workspace":            {{"DELETE", "/api/v1/workspace", map[string]any{"confirm": "Beta"}, 400}},
				"GET /api/v1/members":                 {{"GET", "/api/v1/members", nil, 200}},
				"PATCH /api/v1/members/{userId}": {
					{"PATCH", "/api/v1/members/" + userB, map[string]any{"role": "member"}, 404}},
				"DELETE /api/v1/members/{userId}": {
					{"DELETE", "/api/v1/members/" + userB, nil, 404}},
				"GET /api/v1/invitations":  {{"GET", "/api/v1/invitations", nil, 200}},
				"POST /api/v1/invitations": nil, // invites into the caller's own workspace
				"POST /api/v1/invitations/{id}/resend": {
					{"POST", "/api/v1/invitations/" + invB + "/resend", nil, 404}},
				"DELETE /api/v1/invitations/{id}": {
					{"DELETE", "/api/v1/invitations/" + invB, nil, 404}},
				"POST /api/v1/invitations/accept": nil, // public; checked by the invitation tests
				"GET /api/v1/invitations/accept":  nil, // public; by token only
				"GET /api/v1/api-keys":            {{"GET", "/api/v1/api-keys", nil, 200}},
				"POST /api/v1/api-keys":           nil, // a key for the caller's own membership
				"DELETE /api/v1/api-keys/{id}": {
					{"DELETE", "/api/v1/api-keys/" + keyIDB, nil, 404}},
				"POST /api/v1/api-keys/{id}/rotate": {
					{"POST", "/api/v1/api-keys/" + keyIDB + "/rotate", nil, 404}},
				"GET /api/v1/webhooks": {
					{"GET", "/api/v1/webhooks", nil, 200}},
				"POST /api/v1/webhooks": nil, // creates in A; takes no id
				"GET /api/v1/webhooks/{id}": {
					{"GET", "/api/v1/webhooks/" + whB, nil, 404}},
				"PATCH /api/v1/webhooks/{id}": {
					{"PATCH", "/api/v1/webhooks/" + whB, map[string]any{"enabled": false}, 404}},
				"DELETE /api/v1/webhooks/{id}": {
					{"DELETE", "/api/v1/webhooks/" + whB, nil, 404}},
				"POST /api/v1/webhooks/{id}/rotate-secret": {
					{"POST", "/api/v1/webhooks/" + whB + "/rotate-secret", nil, 404}},
				"POST /api/v1/webhooks/{id}/test": {
					{"POST", "/api/v1/webhooks/" + whB + "/test", nil, 404}},
				"GET /api/v1/webhooks/{id}/deliveries": {
					{"GET", "/api/v1/webhooks/" + whB + "/deliveries", nil, 404},
					{"GET", "/api/v1/webhooks/" + whA + "/deliveries", nil, 200}},
				"POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver": {
					{"POST", "/api/v1/webhooks/" + whB + "/deliveries/" + dB + "/redeliver", nil, 404},
					{"POST", "/api/v1/webhooks/" + whA + "/deliveries/" + dB + "/redeliver", nil, 404}},
				"GET /api/v1/openapi.json": nil, // public, no workspace data
				// Billing acts on the caller's own workspace and takes no id;
				// the webhook's workspace comes from Stripe's signed event.
				"GET /api/v1/billing":           nil,
				"POST /api/v1/billing/checkout": nil,
				"POST /api/v1/billing/portal":   nil,
				"POST /api/v1/billing/webhook":  nil,
				"GET /healthz":                  nil,
				"GET /readyz":                   nil,
				" /v1/proxy":                    nil, // checked below with A's key and B's credential name
				" /to/":                         nil, // base-URL mode: pxr_ tokens only
				// Registering under B's vault id makes a vault of A's own.
				"POST /api/v1/sync/vaults/{vault}/devices":            {{"POST", syncB + "/devices", map[string]any{"label": ""}, 201}},
				"GET /api/v1/sync/vaults/{vault}/devices":             {{"GET", syncB + "/devices", nil, 401}},
				"DELETE /api/v1/sync/vaults/{vault}/devices/{device}": {{"DELETE", syncB + "/devices/dev_x", nil, 401}},
				"GET /api/v1/sync/vaults/{vault}/changes":             {{"GET", syncB + "/changes", nil, 401}},
				"POST /api/v1/sync/vaults/{vault}/changes":            {{"POST", syncB + "/changes", map[string]any{"records": []any{}}, 401}},
				"DELETE /api/v1/sync/vaults/{vault}":                  {{"DELETE", syncB, nil, 401}},
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
				for _, leak := range []string{idB, cB, "b-cred", "b-bot", "Beta", "/b-only", "beta-secret", userB, keyIDB, invB, "beta@example.com", "b-invitee", whB, dB, "b-hook", "webhook.test"} {
					sent := c.path + fmt.Sprint(c.body)
					if strings.Contains(string(a.body), leak) && !strings.Contains(sent, leak) {
						t.Errorf("%s %s with A's key shows B's %q: %s", c.method, c.path, leak, a.body)
					}
				}
			}
			// A's key with B's device token: refused, B's vault untouched.
			req, _ := http.NewRequest("GET", s.url+syncB+"/changes", nil)
			req.Header.Set("Authorization", "Bearer "+keyA)
			req.Header.Set("X-Agentkeys-Device", devB.DeviceToken)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
				t.Fatalf("A's key with B's device token: %v %v", resp, err)
			} else {
				resp.Body.Close()
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
			var hookB struct{ Webhook struct{ Enabled bool } }
			s.do("GET", "/api/v1/webhooks/"+whB, keyB, nil).decode(t, &hookB)
			if !hookB.Webhook.Enabled {
				t.Fatal("A's key disabled B's webhook")
			}
			s.do("GET", "/api/v1/webhooks/"+whB+"/deliveries", keyB, nil).decode(t, &dsB)
			if len(dsB.Deliveries) != 1 {
				t.Fatalf("B's deliveries after A's calls: %+v", dsB)
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
