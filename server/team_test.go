package server_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// team is a workspace with an owner, an admin and a member (each with their
// own API key, joined through invitations), and an outsider who owns
// another workspace.
type team struct {
	wsID                      string
	owner, admin, member, out string // API keys
	adminID, memberID         string // user ids
}

const teamPassword = "correct horse battery"

// invite makes email a member of the owner's workspace with role through an
// invitation, and returns their key and user id.
func (s *testServer) invite(ownerKey, email, role string) (key, userID string) {
	s.t.Helper()
	a := s.do("POST", "/api/v1/invitations", ownerKey, map[string]any{"email": email, "role": role})
	a.want(s.t, http.StatusCreated, "")
	var inv struct{ AcceptURL string }
	a.decode(s.t, &inv)
	token := inviteToken(s.t, inv.AcceptURL)
	acc := s.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": token, "password": teamPassword})
	acc.want(s.t, http.StatusCreated, "")
	var out struct {
		UserID string
		APIKey string
	}
	acc.decode(s.t, &out)
	if !agentkeys.IsWorkspaceKey(out.APIKey) || out.UserID == "" {
		s.t.Fatalf("accept answer = %s", acc.body)
	}
	return out.APIKey, out.UserID
}

func inviteToken(t *testing.T, acceptURL string) string {
	t.Helper()
	m := regexp.MustCompile(`[?&]token=([A-Za-z0-9_]+)`).FindStringSubmatch(acceptURL)
	if m == nil {
		t.Fatalf("acceptUrl %q has no token", acceptURL)
	}
	return m[1]
}

func newTeam(s *testServer) *team {
	s.t.Helper()
	tm := &team{}
	tm.wsID, tm.owner = s.signup("Team")
	tm.admin, tm.adminID = s.invite(tm.owner, "admin@example.com", "admin")
	tm.member, tm.memberID = s.invite(tm.owner, "member@example.com", "member")
	_, tm.out = s.signup("Other")
	return tm
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// wantPermission is the seed's matrix applied to the API, written out
// independently of the route table: a route whose permission differs, or
// a route missing here, fails TestRoleMatrix.
var wantPermission = map[string]agentkeys.Permission{
	"POST /api/v1/signup":                                          agentkeys.PermPublic,
	"POST /api/v1/signup/confirm":                                  agentkeys.PermPublic,
	"GET /api/v1/credentials":                                      agentkeys.PermViewCredentials,
	"POST /api/v1/credentials":                                     agentkeys.PermEditCredentials,
	"GET /api/v1/credentials/{id}":                                 agentkeys.PermViewCredentials,
	"PATCH /api/v1/credentials/{id}":                               agentkeys.PermEditCredentials,
	"DELETE /api/v1/credentials/{id}":                              agentkeys.PermDeleteCredentials,
	"GET /api/v1/agents":                                           agentkeys.PermViewCredentials,
	"POST /api/v1/agents":                                          agentkeys.PermEditAgents,
	"GET /api/v1/agents/{id}":                                      agentkeys.PermViewCredentials,
	"DELETE /api/v1/agents/{id}":                                   agentkeys.PermDeleteAgents,
	"POST /api/v1/agents/{id}/credentials":                         agentkeys.PermEditAgents,
	"DELETE /api/v1/agents/{id}/credentials/{credentialId}":        agentkeys.PermEditAgents,
	"GET /api/v1/workspace/status":                                 agentkeys.PermViewWorkspace,
	"GET /api/v1/audit":                                            agentkeys.PermViewAudit,
	"POST /api/v1/login":                                           agentkeys.PermPublic,
	"GET /api/v1/workspaces":                                       agentkeys.PermViewWorkspace,
	"POST /api/v1/workspaces":                                      agentkeys.PermCreateWorkspace,
	"GET /api/v1/workspace":                                        agentkeys.PermViewWorkspace,
	"PATCH /api/v1/workspace":                                      agentkeys.PermEditWorkspace,
	"DELETE /api/v1/workspace":                                     agentkeys.PermDeleteWorkspace,
	"GET /api/v1/members":                                          agentkeys.PermViewWorkspace,
	"PATCH /api/v1/members/{userId}":                               agentkeys.PermChangeRoles,
	"DELETE /api/v1/members/{userId}":                              agentkeys.PermRemoveMembers,
	"GET /api/v1/invitations":                                      agentkeys.PermInviteMembers,
	"POST /api/v1/invitations":                                     agentkeys.PermInviteMembers,
	"POST /api/v1/invitations/{id}/resend":                         agentkeys.PermInviteMembers,
	"DELETE /api/v1/invitations/{id}":                              agentkeys.PermInviteMembers,
	"GET /api/v1/invitations/accept":                               agentkeys.PermPublic,
	"POST /api/v1/invitations/accept":                              agentkeys.PermPublic,
	"GET /api/v1/api-keys":                                         agentkeys.PermManageAPIKeys,
	"POST /api/v1/api-keys":                                        agentkeys.PermManageAPIKeys,
	"DELETE /api/v1/api-keys/{id}":                                 agentkeys.PermManageAPIKeys,
	"POST /api/v1/api-keys/{id}/rotate":                            agentkeys.PermManageAPIKeys,
	"GET /api/v1/openapi.json":                                     agentkeys.PermPublic,
	"GET /healthz":                                                 agentkeys.PermPublic,
	"GET /readyz":                                                  agentkeys.PermPublic,
	" /v1/proxy":                                                   agentkeys.PermProxy,
	" /to/":                                                        agentkeys.PermProxy,
	"POST /api/v1/oauth/{provider}/start":                          agentkeys.PermEditCredentials,
	"GET /api/v1/oauth/callback":                                   agentkeys.PermPublic,
	"GET /api/v1/billing":                                          agentkeys.PermManageBilling,
	"POST /api/v1/billing/checkout":                                agentkeys.PermManageBilling,
	"POST /api/v1/billing/portal":                                  agentkeys.PermManageBilling,
	"POST /api/v1/billing/webhook":                                 agentkeys.PermPublic,
	"GET /api/v1/webhooks":                                         agentkeys.PermConfigureWebhooks,
	"POST /api/v1/webhooks":                                        agentkeys.PermConfigureWebhooks,
	"GET /api/v1/webhooks/{id}":                                    agentkeys.PermConfigureWebhooks,
	"PATCH /api/v1/webhooks/{id}":                                  agentkeys.PermConfigureWebhooks,
	"DELETE /api/v1/webhooks/{id}":                                 agentkeys.PermConfigureWebhooks,
	"POST /api/v1/webhooks/{id}/rotate-secret":                     agentkeys.PermConfigureWebhooks,
	"POST /api/v1/webhooks/{id}/test":                              agentkeys.PermConfigureWebhooks,
	"GET /api/v1/webhooks/{id}/deliveries":                         agentkeys.PermConfigureWebhooks,
	"POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver": agentkeys.PermConfigureWebhooks,
	"POST /api/v1/sync/vaults/{vault}/devices":                     agentkeys.PermViewWorkspace,
	"GET /api/v1/sync/vaults/{vault}/devices":                      agentkeys.PermViewWorkspace,
	"DELETE /api/v1/sync/vaults/{vault}/devices/{device}":          agentkeys.PermViewWorkspace,
	"GET /api/v1/sync/vaults/{vault}/changes":                      agentkeys.PermViewWorkspace,
	"POST /api/v1/sync/vaults/{vault}/changes":                     agentkeys.PermViewWorkspace,
	"DELETE /api/v1/sync/vaults/{vault}":                           agentkeys.PermViewWorkspace,
}

// TestCan_SeedMatrix: Can holds the seed's "Team Management" table exactly.
func TestCan_SeedMatrix(t *testing.T) {
	o, a, m := agentkeys.RoleOwner, agentkeys.RoleAdmin, agentkeys.RoleMember
	seed := map[agentkeys.Permission][]agentkeys.Role{
		agentkeys.PermViewCredentials:   {o, a, m},
		agentkeys.PermEditCredentials:   {o, a},
		agentkeys.PermDeleteCredentials: {o, a},
		agentkeys.PermEditAgents:        {o, a, m},
		agentkeys.PermDeleteAgents:      {o, a},
		agentkeys.PermViewAudit:         {o, a, m},
		agentkeys.PermInviteMembers:     {o, a},
		agentkeys.PermRemoveMembers:     {o, a},
		agentkeys.PermManageBilling:     {o},
		agentkeys.PermDeleteWorkspace:   {o},
		agentkeys.PermManageAPIKeys:     {o, a},
		agentkeys.PermConfigureWebhooks: {o, a},
		agentkeys.PermPublic:            {},
		agentkeys.PermProxy:             {},
	}
	for p, have := range seed {
		for _, r := range agentkeys.Roles {
			if got := agentkeys.Can(r, p); got != slices.Contains(have, r) {
				t.Errorf("Can(%s, %s) = %v", r, p, got)
			}
		}
	}
	if agentkeys.Can("superuser", agentkeys.PermViewCredentials) || agentkeys.Can(o, "nonsense") {
		t.Error("an unknown role or permission is allowed")
	}
	if (&agentkeys.Actor{Kind: agentkeys.ActorProxyToken, Role: o}).Can(agentkeys.PermViewCredentials) {
		t.Error("a proxy token acts on the API")
	}
}

// TestRoleMatrix is generated from the route table: for every route and
// each of owner, admin, member, a non-member and an anonymous caller, the
// status the seed's matrix says. A route without a known permission fails.
func TestRoleMatrix(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			tm := newTeam(s)
			roles := []struct {
				role agentkeys.Role
				key  string
			}{{agentkeys.RoleOwner, tm.owner}, {agentkeys.RoleAdmin, tm.admin}, {agentkeys.RoleMember, tm.member}}
			seen := map[string]bool{}
			for _, rt := range s.srv.Routes() {
				name := rt.Method + " " + rt.Path
				seen[name] = true
				if want, ok := wantPermission[name]; !ok || want != rt.Permission {
					t.Errorf("%s needs %q in the route table; the matrix says %q: add it to wantPermission or fix the table", name, rt.Permission, want)
				}
				switch {
				case rt.Permission == agentkeys.PermProxy:
					continue // the proxy checks its own tokens (proxy tests)
				case rt.Permission == agentkeys.PermPublic:
					continue
				case !slices.Contains(agentkeys.Permissions(), rt.Permission):
					t.Errorf("%s: permission %q is not one of agentkeys.Permissions()", name, rt.Permission)
					continue
				}
				// Ids that name nothing, and bodies that are refused: an
				// allowed call gets past the permission check and changes
				// nothing.
				path := pathParam.ReplaceAllString(rt.Path, "nope_1")
				var body any
				if rt.Method == "POST" || rt.Method == "PATCH" || rt.Method == "DELETE" {
					body = map[string]any{}
				}
				if a := s.do(rt.Method, path, "", body); a.status != http.StatusUnauthorized {
					t.Errorf("%s anonymous = %d, want 401: %s", name, a.status, a.body)
				}
				for _, r := range roles {
					a := s.do(rt.Method, path, r.key, body)
					if agentkeys.Can(r.role, rt.Permission) {
						if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden || a.status >= 500 {
							t.Errorf("%s as %s = %d, want it allowed: %s", name, r.role, a.status, a.body)
						}
						continue
					}
					if a.status != http.StatusForbidden || !strings.Contains(string(a.body), string(rt.Permission)) ||
						!strings.Contains(string(a.body), `"code":"FORBIDDEN"`) || !strings.Contains(string(a.body), `"status":403`) {
						t.Errorf("%s as %s = %d %s, want 403 FORBIDDEN naming %s", name, r.role, a.status, a.body, rt.Permission)
					}
				}
				// A non-member (owner elsewhere) reaches nothing of this
				// workspace: ids of it are unknown to them.
				if strings.Contains(rt.Path, "{") {
					if a := s.do(rt.Method, path, tm.out, body); a.status != http.StatusNotFound && a.status != http.StatusBadRequest {
						t.Errorf("%s as a non-member = %d, want 404 (or 400 for the body): %s", name, a.status, a.body)
					}
				}
			}
			for name := range wantPermission {
				if !seen[name] {
					t.Errorf("wantPermission names %q, which the server does not have", name)
				}
			}
			// Nothing changed: three members, the workspace still there.
			var ms struct {
				Members []struct{ Email, Role string }
			}
			s.do("GET", "/api/v1/members", tm.owner, nil).decode(t, &ms)
			if len(ms.Members) != 3 {
				t.Fatalf("members after the matrix = %+v", ms.Members)
			}
		})
	}
}

// TestTeam_RoleChangeAndRemoval: a role change and a removal take effect on
// the member's keys' very next call, also through another replica.
func TestTeam_RoleChangeAndRemoval(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			dbURL, dir, key := db.url(t), t.TempDir(), mustKey(t)
			r1 := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir, key: key, allowLoopback: true})
			r2 := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir, key: key, allowLoopback: true})
			up := newUpstream(t)
			tm := newTeam(r1)
			r1.createCredential(tm.owner, "svc", "team-secret", up.host())

			// The member may not add credentials; promoted through replica 1,
			// they may on replica 2 at once; demoted, not any more.
			cred := map[string]any{"name": "m1", "type": "API_KEY", "value": "v", "allowedHosts": []string{"api.example.com"}}
			r2.do("POST", "/api/v1/credentials", tm.member, cred).want(t, 403, agentkeys.EFORBIDDEN)
			r1.do("PATCH", "/api/v1/members/"+tm.memberID, tm.admin, map[string]any{"role": "admin"}).want(t, 200, "")
			r2.do("POST", "/api/v1/credentials", tm.member, cred).want(t, 201, "")
			r1.do("PATCH", "/api/v1/members/"+tm.memberID, tm.owner, map[string]any{"role": "member"}).want(t, 200, "")
			r2.do("DELETE", "/api/v1/credentials/m1", tm.member, nil).want(t, 403, agentkeys.EFORBIDDEN)

			// Rules: an admin cannot demote or remove an owner, nor make one;
			// the last owner stays; an unknown role is refused.
			var ms struct {
				Members []struct{ UserID, Email string }
			}
			r1.do("GET", "/api/v1/members", tm.owner, nil).decode(t, &ms)
			ownerID := ""
			for _, m := range ms.Members {
				if m.Email == "team@example.com" {
					ownerID = m.UserID
				}
			}
			r1.do("PATCH", "/api/v1/members/"+ownerID, tm.admin, map[string]any{"role": "member"}).want(t, 403, agentkeys.EFORBIDDEN)
			r1.do("DELETE", "/api/v1/members/"+ownerID, tm.admin, nil).want(t, 403, agentkeys.EFORBIDDEN)
			r1.do("PATCH", "/api/v1/members/"+tm.memberID, tm.admin, map[string]any{"role": "owner"}).want(t, 403, agentkeys.EFORBIDDEN)
			r1.do("PATCH", "/api/v1/members/"+ownerID, tm.owner, map[string]any{"role": "admin"}).want(t, 409, agentkeys.ECONFLICT)
			r1.do("DELETE", "/api/v1/members/"+ownerID, tm.owner, nil).want(t, 409, agentkeys.ECONFLICT)
			r1.do("PATCH", "/api/v1/members/"+tm.memberID, tm.owner, map[string]any{"role": "superuser"}).want(t, 400, agentkeys.EINVALID)

			// Removed through replica 1: the member's key is refused by
			// replica 2 on its next call, on the API and the hosted proxy.
			proxyGet(t, r2.url, tm.member, "svc", up.URL+"/before").want(t, 200, "")
			r1.do("DELETE", "/api/v1/members/"+tm.memberID, tm.admin, nil).want(t, 204, "")
			r2.do("GET", "/api/v1/credentials", tm.member, nil).want(t, 401, agentkeys.EUNAUTHORIZED)
			proxyGet(t, r2.url, tm.member, "svc", up.URL+"/after").want(t, 401, agentkeys.EUNAUTHORIZED)

			// A member leaves on their own; the admin's key then stops.
			r2.do("DELETE", "/api/v1/members/"+tm.adminID, tm.admin, nil).want(t, 204, "")
			r1.do("GET", "/api/v1/workspace", tm.admin, nil).want(t, 401, agentkeys.EUNAUTHORIZED)

			// Admin actions are in the audit log, with the acting user and no secret.
			a := r1.do("GET", "/api/v1/audit?decision=admin", tm.owner, nil)
			a.want(t, 200, "")
			for _, want := range []string{"member.role_changed", "member.removed", "member.left", "invitation.accepted", "admin@example.com"} {
				if !strings.Contains(string(a.body), want) {
					t.Errorf("admin audit lacks %q: %s", want, a.body)
				}
			}
			for _, leak := range []string{tm.owner, tm.admin, tm.member, teamPassword} {
				if strings.Contains(string(a.body), leak) {
					t.Fatalf("the audit log shows a secret: %s", a.body)
				}
			}
		})
	}
}

// TestTeam_APIKeysAndWorkspaces: keys per member (create, rotate, revoke),
// several workspaces per user, and deleting a workspace.
func TestTeam_APIKeysAndWorkspaces(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			tm := newTeam(s)
			c := s.createCredential(tm.owner, "svc", "team-secret", up.host())
			ag := s.createAgent(tm.owner, "bot")
			g := s.assign(tm.owner, ag.ID, c.ID)
			// Proxy tokens never act on the API.
			s.do("GET", "/api/v1/credentials", g.ProxyToken, nil).want(t, 401, agentkeys.EUNAUTHORIZED)

			// A new key, shown once, acts as its member; rotating replaces it.
			a := s.do("POST", "/api/v1/api-keys", tm.admin, map[string]any{"name": "ci"})
			a.want(t, 201, "")
			var k struct{ ID, Key, Role string }
			a.decode(t, &k)
			if !agentkeys.IsWorkspaceKey(k.Key) || k.Role != "admin" {
				t.Fatalf("new key = %s", a.body)
			}
			list := s.do("GET", "/api/v1/api-keys", tm.owner, nil)
			if strings.Contains(string(list.body), k.Key) || strings.Contains(string(list.body), "ak_ws_") {
				t.Fatalf("the key list shows a key: %s", list.body)
			}
			s.do("POST", "/api/v1/api-keys/"+k.ID+"/rotate", tm.owner, nil).want(t, 403, agentkeys.EFORBIDDEN) // not the owner's key
			r := s.do("POST", "/api/v1/api-keys/"+k.ID+"/rotate", tm.admin, nil)
			r.want(t, 200, "")
			var k2 struct{ Key string }
			r.decode(t, &k2)
			s.do("GET", "/api/v1/workspace", k.Key, nil).want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("GET", "/api/v1/workspace", k2.Key, nil).want(t, 200, "")
			s.do("DELETE", "/api/v1/api-keys/"+k.ID, tm.member, nil).want(t, 403, agentkeys.EFORBIDDEN)
			s.do("DELETE", "/api/v1/api-keys/"+k.ID, tm.owner, nil).want(t, 204, "")
			s.do("GET", "/api/v1/workspace", k2.Key, nil).want(t, 401, agentkeys.EUNAUTHORIZED)

			// A second workspace for the member: owner there, member here.
			a = s.do("POST", "/api/v1/workspaces", tm.member, map[string]any{"name": "Side"})
			a.want(t, 201, "")
			var side struct {
				Workspace struct{ ID string }
				APIKey    string
			}
			a.decode(t, &side)
			var wl struct {
				Workspaces []struct{ ID, Name, Role string }
			}
			s.do("GET", "/api/v1/workspaces", tm.member, nil).decode(t, &wl)
			if len(wl.Workspaces) != 2 {
				t.Fatalf("workspaces = %+v", wl.Workspaces)
			}
			for _, w := range wl.Workspaces {
				if (w.Name == "Side") != (w.Role == "owner") {
					t.Fatalf("roles = %+v", wl.Workspaces)
				}
			}
			// Each key sees only its own workspace.
			var creds struct{ Credentials []struct{ Name string } }
			s.do("GET", "/api/v1/credentials", side.APIKey, nil).decode(t, &creds)
			if len(creds.Credentials) != 0 {
				t.Fatalf("the Side key sees %+v", creds.Credentials)
			}

			// Login lists both, and gives a key for the one picked.
			a = s.do("POST", "/api/v1/login", "", map[string]any{"email": "member@example.com", "password": "wrong password!"})
			a.want(t, 401, agentkeys.EUNAUTHORIZED)
			b := s.do("POST", "/api/v1/login", "", map[string]any{"email": "nobody@example.com", "password": "wrong password!"})
			if string(a.body) != string(b.body) {
				t.Fatalf("login tells a wrong password (%s) from an unknown email (%s)", a.body, b.body)
			}
			a = s.do("POST", "/api/v1/login", "", map[string]any{"email": "member@example.com", "password": teamPassword, "workspaceId": side.Workspace.ID})
			a.want(t, 201, "")

			// Deleting: only the owner, only with the name; then its keys and
			// proxy tokens stop at once.
			s.do("DELETE", "/api/v1/workspace", tm.admin, map[string]any{"confirm": "Team"}).want(t, 403, agentkeys.EFORBIDDEN)
			s.do("DELETE", "/api/v1/workspace", tm.owner, map[string]any{"confirm": "team"}).want(t, 400, agentkeys.EINVALID)
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/before").want(t, 200, "")
			s.do("DELETE", "/api/v1/workspace", tm.owner, map[string]any{"confirm": "Team"}).want(t, 204, "")
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/after").want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("GET", "/api/v1/credentials", tm.owner, nil).want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("GET", "/api/v1/workspace", side.APIKey, nil).want(t, 200, "")
		})
	}
}

// TestTeam_BadInput: each refusal is a clear 400/403/409/413 with nothing
// changed.
func TestTeam_BadInput(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	tm := newTeam(s)
	big := strings.Repeat("n", 1<<20)
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
		code                    string
	}{
		{"HugeWorkspaceName", "POST", "/api/v1/workspaces", tm.owner, map[string]any{"name": big}, 413, agentkeys.ETOOLARGE},
		{"LongWorkspaceName", "PATCH", "/api/v1/workspace", tm.owner, map[string]any{"name": strings.Repeat("n", 101)}, 400, agentkeys.EINVALID},
		{"EmptyKeyName", "POST", "/api/v1/api-keys", tm.owner, map[string]any{"name": " "}, 400, agentkeys.EINVALID},
		{"UnknownField", "PATCH", "/api/v1/members/" + tm.memberID, tm.owner, map[string]any{"role": "admin", "userId": "x"}, 400, agentkeys.EINVALID},
		{"UnknownRole", "PATCH", "/api/v1/members/" + tm.memberID, tm.owner, map[string]any{"role": "root"}, 400, agentkeys.EINVALID},
		{"NotAnEmail", "POST", "/api/v1/invitations", tm.owner, map[string]any{"email": "@", "role": "member"}, 400, agentkeys.EINVALID},
		{"InviteMember", "POST", "/api/v1/invitations", tm.owner, map[string]any{"email": "member@example.com", "role": "member"}, 409, agentkeys.ECONFLICT},
		{"ConfirmMismatch", "DELETE", "/api/v1/workspace", tm.owner, map[string]any{"confirm": "Team "}, 400, agentkeys.EINVALID},
		{"WeakPassword", "POST", "/api/v1/signup", "", map[string]any{"email": "w@example.com", "password": "short", "workspace": "W"}, 400, agentkeys.EINVALID},
		{"HugePassword", "POST", "/api/v1/signup", "", `{"email":"w@example.com","workspace":"W","password":"` + strings.Repeat("p", 10<<20) + `"}`, 413, agentkeys.ETOOLARGE},
		{"LongPassword", "POST", "/api/v1/signup", "", map[string]any{"email": "w@example.com", "password": strings.Repeat("p", 1025), "workspace": "W"}, 400, agentkeys.EINVALID},
		{"BadToken", "POST", "/api/v1/invitations/accept", "", map[string]any{"token": "inv_nope", "password": teamPassword}, 401, agentkeys.EUNAUTHORIZED},
		{"LoginUnknownField", "POST", "/api/v1/login", "", map[string]any{"email": "team@example.com", "password": teamPassword, "role": "owner"}, 400, agentkeys.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.do(tc.method, tc.path, tc.key, tc.body).want(t, tc.status, tc.code)
		})
	}
	var ws struct{ Workspace struct{ Name string } }
	s.do("GET", "/api/v1/workspace", tm.owner, nil).decode(t, &ws)
	var ms struct {
		Members []struct{ Email, Role string }
	}
	s.do("GET", "/api/v1/members", tm.owner, nil).decode(t, &ms)
	var wl struct{ Workspaces []struct{ Name string } }
	s.do("GET", "/api/v1/workspaces", tm.owner, nil).decode(t, &wl)
	if ws.Workspace.Name != "Team" || len(ms.Members) != 3 || ms.Members[1].Email != "member@example.com" || ms.Members[1].Role != "member" || len(wl.Workspaces) != 1 {
		t.Fatalf("something changed: %+v %+v %+v", ws, ms, wl)
	}
	if a := s.do("POST", "/api/v1/login", "", map[string]any{"email": "w@example.com", "password": "short"}); a.status != 401 {
		t.Fatalf("a refused sign-up made an account: %d %s", a.status, a.body)
	}
}

// TestSignup_Throttled: sign-ups are limited per client address and per
// email (issue 11's "40 in 5 s"), in the database so replicas share it;
// logins too. The 429 carries Retry-After.
func TestSignup_Throttled(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	signup := func(email, ws string) *answer {
		return s.do("POST", "/api/v1/signup", "", map[string]any{"email": email, "password": teamPassword, "workspace": ws})
	}
	// Per email: 5 attempts, taken or not, then 429.
	signup("dup@example.com", "D").want(t, 201, "")
	for i := 0; i < 4; i++ {
		signup("dup@example.com", "D").want(t, 409, agentkeys.ECONFLICT)
	}
	a := signup("DUP@example.com", "D")
	a.want(t, 429, agentkeys.ERATELIMIT)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Per address: 20 in all from 127.0.0.1 (6 so far), then 429 for any email.
	for i := 0; i < 14; i++ {
		signup(fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("W%d", i)).want(t, 201, "")
	}
	signup("fresh@example.com", "F").want(t, 429, agentkeys.ERATELIMIT)
	// Login per email: 10 wrong passwords, then 429 even with the right one.
	for i := 0; i < 10; i++ {
		s.do("POST", "/api/v1/login", "", map[string]any{"email": "u1@example.com", "password": "wrong wrong"}).want(t, 401, agentkeys.EUNAUTHORIZED)
	}
	s.do("POST", "/api/v1/login", "", map[string]any{"email": "u1@example.com", "password": teamPassword}).want(t, 429, agentkeys.ERATELIMIT)
}
