package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

var (
	inviteLinkRE = regexp.MustCompile(`id="invite-link">([^<]+)</pre>`)
	apiKeyRE     = regexp.MustCompile(`ak_ws_[A-Za-z0-9_]+`)
)

// inviteByPage invites email through the Team page's form and returns the
// link the page showed once (no SMTP on the test server).
func (b *browser) inviteByPage(email, role string) string {
	b.t.Helper()
	b.get("/settings/team")
	st, page := b.post("/settings/team/invitations", url.Values{"email": {email}, "role": {role}})
	m := inviteLinkRE.FindStringSubmatch(page)
	if st != http.StatusCreated || m == nil || !strings.Contains(m[1], "/invitations/accept?token=inv_") {
		b.t.Fatalf("invite %s = %d, no link:\n%s", email, st, page)
	}
	return m[1]
}

// acceptByPage opens an invitation link and accepts it with password;
// it returns the API key the welcome page showed once.
func (b *browser) acceptByPage(link, password string) string {
	b.t.Helper()
	path := strings.TrimPrefix(link, b.base)
	if st, page, _ := b.get(path); st != http.StatusOK || !strings.Contains(page, "Accept invitation") {
		b.t.Fatalf("accept page = %d:\n%s", st, page)
	}
	u, _ := url.Parse(link)
	st, page := b.post("/invitations/accept", url.Values{"token": {u.Query().Get("token")}, "password": {password}})
	key := apiKeyRE.FindString(page)
	if st != http.StatusCreated || key == "" || !strings.Contains(page, "Log out") {
		b.t.Fatalf("accept = %d, not signed in with a key:\n%s", st, page)
	}
	return key
}

// shownOnce records where a secret was displayed; sweep then checks no
// other page of the browser ever held it.
type shownOnce struct {
	secret string
	b      *browser
	page   int // index in b.pages
}

// shown marks the browser's last page as secret's one display.
func (b *browser) shown(secret string) shownOnce {
	b.t.Helper()
	if !strings.Contains(b.pages[len(b.pages)-1], secret) {
		b.t.Fatalf("the last page does not show the secret")
	}
	return shownOnce{secret, b, len(b.pages) - 1}
}

func sweepOnce(t *testing.T, bs []*browser, logs string, once []shownOnce, canaries ...string) {
	t.Helper()
	for bi, b := range bs {
		for i, p := range b.pages {
			for _, c := range canaries {
				if strings.Contains(p, c) {
					t.Fatalf("browser %d page %d holds a canary:\n%s", bi, i, p)
				}
			}
			for _, o := range once {
				if (b != o.b || i != o.page) && strings.Contains(p, o.secret) {
					t.Fatalf("browser %d page %d shows an API key again after its one-time display (page %d):\n%s", bi, i, o.page, p)
				}
			}
		}
	}
	for _, o := range once {
		if strings.Contains(logs, o.secret) {
			t.Fatal("the logs hold an API key")
		}
	}
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Fatal("the logs hold a canary")
		}
	}
}

func count(t *testing.T, s *testServer, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.store.DB().QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestDashboardTeam_Settings walks every Settings page by its forms, on both
// databases: the Team page invites (the link shown once), the invitee
// accepts in another browser and is signed in, roles change, invitations
// are re-sent (the old link dies) and cancelled, a member is removed (their
// session ends); API keys are created and rotated (shown once, the old value
// refused) and revoked; the workspace is renamed, a second one created (the
// session moves to it), switched between and deleted with its typed name.
// No page shows an API key after its one-time display, nor a credential.
func TestDashboardTeam_Settings(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			const canary = "sk-team-canary-5d21e"
			owner := newBrowser(s)
			ownerKey := owner.signUp("ada@example.com", "Acme")
			var once []shownOnce
			once = append(once, owner.shown(ownerKey))
			s.createCredential(ownerKey, "Stripe", canary, "api.stripe.com")

			// /settings lands on Team; the sub-nav offers every page an owner has.
			st, page, _ := owner.get("/settings")
			if st != http.StatusOK || !strings.Contains(page, "<h1>Team</h1>") {
				t.Fatalf("/settings = %d:\n%s", st, page)
			}
			for _, l := range []string{`href="/settings/team" aria-current="page">Team`, `href="/settings/api-keys"`, `href="/settings/webhooks"`,
				`href="/settings/billing"`, `href="/settings/workspace"`, `href="/audit"`, `href="/settings" aria-current="page">Settings`} {
				if !strings.Contains(page, l) {
					t.Fatalf("the owner's Team page lacks %s:\n%s", l, page)
				}
			}
			if strings.Contains(page, `id="workspace-switch"`) || !strings.Contains(page, `<span class="workspace-name">Acme</span>`) {
				t.Fatalf("one workspace: the header names it, with no switcher:\n%s", page)
			}

			// Invite by the form; the invitee accepts in another browser.
			link := owner.inviteByPage("max@example.com", "member")
			if !strings.HasPrefix(link, s.url+"/invitations/accept?token=") {
				t.Fatalf("link %q", link)
			}
			if _, page, _ = owner.get("/settings/team"); strings.Contains(page, link) || !strings.Contains(page, "max@example.com") {
				t.Fatalf("the link is shown again, or the invitation is not listed:\n%s", page)
			}
			max := newBrowser(s)
			maxKey := max.acceptByPage(link, teamPassword)
			once = append(once, max.shown(maxKey))
			if _, page, _ = max.get("/credentials"); !strings.Contains(page, "Stripe") || !strings.Contains(page, "max@example.com · member") {
				t.Fatalf("the invitee is not signed in to Acme:\n%s", page)
			}
			var memberID string
			var ms struct {
				Members []struct{ UserID, Email, Role string }
			}
			s.do("GET", "/api/v1/members", ownerKey, nil).decode(t, &ms)
			for _, m := range ms.Members {
				if m.Email == "max@example.com" {
					memberID = m.UserID
				}
			}
			if memberID == "" || len(ms.Members) != 2 {
				t.Fatalf("members = %+v", ms.Members)
			}

			// Change max's role to admin.
			owner.get("/settings/team")
			if st, page = owner.post("/settings/team/"+memberID+"/role", url.Values{"role": {"admin"}}); st != http.StatusOK || !strings.Contains(page, `<option value="admin" selected>`) {
				t.Fatalf("change role = %d:\n%s", st, page)
			}
			if _, page, _ = max.get("/settings/api-keys"); !strings.Contains(page, "<h1>API Keys</h1>") {
				t.Fatalf("an admin now sees API Keys:\n%s", page)
			}

			// Re-send: a new link, the old one refused with the API's status; cancel.
			link2 := owner.inviteByPage("cy@example.com", "member")
			var invs struct{ Invitations []struct{ ID, Email string } }
			s.do("GET", "/api/v1/invitations", ownerKey, nil).decode(t, &invs)
			if len(invs.Invitations) != 1 {
				t.Fatalf("invitations = %+v", invs)
			}
			st, page = owner.post("/settings/team/invitations/"+invs.Invitations[0].ID+"/resend", url.Values{})
			m := inviteLinkRE.FindStringSubmatch(page)
			if st != http.StatusOK || m == nil || m[1] == link2 {
				t.Fatalf("re-send = %d:\n%s", st, page)
			}
			cy := newBrowser(s)
			if st, page, _ = cy.get(strings.TrimPrefix(link2, s.url)); st != http.StatusUnauthorized || !strings.Contains(page, "not valid") || strings.Contains(page, "Accept invitation") {
				t.Fatalf("the replaced link = %d:\n%s", st, page)
			}
			owner.get("/settings/team")
			if st, page = owner.post("/settings/team/invitations/"+invs.Invitations[0].ID+"/cancel", url.Values{}); st != http.StatusOK || strings.Contains(page, "cy@example.com") {
				t.Fatalf("cancel = %d:\n%s", st, page)
			}
			if st, _, _ = cy.get(strings.TrimPrefix(m[1], s.url)); st != http.StatusUnauthorized {
				t.Fatalf("a cancelled invitation's page = %d", st)
			}

			// API keys: create (shown once), rotate (shown once, old refused), revoke.
			owner.get("/settings/api-keys")
			st, page = owner.post("/settings/api-keys", url.Values{"name": {"ci"}})
			ci := apiKeyRE.FindString(page)
			if st != http.StatusCreated || ci == "" || !strings.Contains(page, `data-copy="#new-api-key"`) {
				t.Fatalf("create key = %d:\n%s", st, page)
			}
			once = append(once, owner.shown(ci))
			s.do("GET", "/api/v1/workspace", ci, nil).want(t, http.StatusOK, "")
			_, page, _ = owner.get("/settings/api-keys")
			var ks struct{ APIKeys []struct{ ID, Name string } }
			s.do("GET", "/api/v1/api-keys", ownerKey, nil).decode(t, &ks)
			var ciID string
			for _, k := range ks.APIKeys {
				if k.Name == "ci" {
					ciID = k.ID
				}
			}
			if ciID == "" || !strings.Contains(page, "/settings/api-keys/"+ciID+"/rotate") {
				t.Fatalf("keys %+v, page:\n%s", ks, page)
			}
			st, page = owner.post("/settings/api-keys/"+ciID+"/rotate", url.Values{})
			ci2 := apiKeyRE.FindString(page)
			if st != http.StatusOK || ci2 == "" || ci2 == ci {
				t.Fatalf("rotate = %d:\n%s", st, page)
			}
			once = append(once, owner.shown(ci2))
			s.do("GET", "/api/v1/workspace", ci, nil).want(t, http.StatusUnauthorized, agentkeys.EUNAUTHORIZED)
			if st, page, _ = owner.get("/settings/api-keys/" + ciID + "/revoke"); st != http.StatusOK || !strings.Contains(page, "Revoke key") {
				t.Fatalf("revoke confirmation = %d:\n%s", st, page)
			}
			if st, page = owner.post("/settings/api-keys/"+ciID+"/revoke", url.Values{}); st != http.StatusOK || strings.Contains(page, ciID) {
				t.Fatalf("revoke = %d:\n%s", st, page)
			}
			s.do("GET", "/api/v1/workspace", ci2, nil).want(t, http.StatusUnauthorized, agentkeys.EUNAUTHORIZED)

			// Remove max (confirmation first): their session ends.
			if st, page, _ = owner.get("/settings/team/" + memberID + "/remove"); st != http.StatusOK || !strings.Contains(page, "Remove max@example.com") {
				t.Fatalf("remove confirmation = %d:\n%s", st, page)
			}
			if st, page = owner.post("/settings/team/"+memberID+"/remove", url.Values{}); st != http.StatusOK || strings.Contains(page, "max@example.com") {
				t.Fatalf("remove = %d:\n%s", st, page)
			}
			if _, page, _ = max.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("a removed member is still signed in")
			}
			if n := count(t, s, `SELECT count(*) FROM sessions WHERE user_id = $1`, memberID); n != 0 {
				t.Fatalf("the removed member has %d sessions", n)
			}

			// Workspace: rename; Create Workspace (the session moves to it, its key shown once).
			owner.get("/settings/workspace")
			if st, page = owner.post("/settings/workspace", url.Values{"name": {"Acme Corp"}}); st != http.StatusOK || !strings.Contains(page, "<h2>Acme Corp</h2>") {
				t.Fatalf("rename = %d:\n%s", st, page)
			}
			st, page = owner.post("/settings/workspace/new", url.Values{"name": {"Second"}})
			secondKey := apiKeyRE.FindString(page)
			if st != http.StatusCreated || secondKey == "" || !strings.Contains(page, "Welcome to Second") || !strings.Contains(page, `id="workspace-switch"`) {
				t.Fatalf("create workspace = %d:\n%s", st, page)
			}
			once = append(once, owner.shown(secondKey))
			var sw struct{ Workspace struct{ ID string } }
			s.do("GET", "/api/v1/workspace", secondKey, nil).decode(t, &sw)
			if _, page, _ = owner.get("/settings/workspace"); !strings.Contains(page, "<h2>Second</h2>") || !strings.Contains(page, `selected>Second (owner)`) {
				t.Fatalf("the session is not in the new workspace:\n%s", page)
			}
			if n := count(t, s, `SELECT count(*) FROM workspaces`); n != 2 {
				t.Fatalf("%d workspaces", n)
			}
			var acme struct{ Workspace struct{ ID string } }
			s.do("GET", "/api/v1/workspace", ownerKey, nil).decode(t, &acme)

			// Switch back to Acme: a new session id, the old one ends.
			old := sessionCookie(owner)
			if st, page = owner.post("/workspaces/switch", url.Values{"workspace": {acme.Workspace.ID}}); st != http.StatusOK || !strings.Contains(page, "<h1>Credentials</h1>") || !strings.Contains(page, "Stripe") {
				t.Fatalf("switch = %d:\n%s", st, page)
			}
			if now := sessionCookie(owner); now == old || now == "" {
				t.Fatal("switching kept the session id")
			}
			stale := newBrowser(s)
			stale.c.Jar.SetCookies(mustURL(s.url), []*http.Cookie{{Name: "agentkeys_session", Value: old}})
			if _, page, _ = stale.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("the session id before the switch still works")
			}

			// Delete Second: a wrong name is refused and deletes nothing; the
			// right one deletes it and the session lands in Acme.
			owner.get("/credentials")
			owner.post("/workspaces/switch", url.Values{"workspace": {sw.Workspace.ID}})
			if st, page, _ = owner.get("/settings/workspace/delete"); st != http.StatusOK || !strings.Contains(page, "<strong>Second</strong>") {
				t.Fatalf("delete confirmation = %d:\n%s", st, page)
			}
			st, page = owner.post("/settings/workspace/delete", url.Values{"confirm": {"second"}})
			if st != http.StatusBadRequest || !strings.Contains(page, "nothing was deleted") {
				t.Fatalf("delete with a wrong name = %d:\n%s", st, page)
			}
			if n := count(t, s, `SELECT count(*) FROM workspaces WHERE id = $1`, sw.Workspace.ID); n != 1 {
				t.Fatal("a wrong typed name deleted the workspace")
			}
			if st, page = owner.post("/settings/workspace/delete", url.Values{"confirm": {"Second"}}); st != http.StatusOK || !strings.Contains(page, "<h1>Credentials</h1>") || !strings.Contains(page, "Stripe") {
				t.Fatalf("delete = %d:\n%s", st, page)
			}
			if n := count(t, s, `SELECT count(*) FROM workspaces WHERE id = $1`, sw.Workspace.ID); n != 0 {
				t.Fatal("the workspace is still there")
			}
			// The last workspace too: the log-in page says why.
			owner.get("/settings/workspace/delete")
			if st, page = owner.post("/settings/workspace/delete", url.Values{"confirm": {"Acme Corp"}}); st != http.StatusOK || !strings.Contains(page, "<h1>Log in</h1>") || !strings.Contains(page, "The workspace was deleted.") {
				t.Fatalf("delete the last = %d:\n%s", st, page)
			}
			if _, page, _ = owner.get("/settings"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("still signed in with no workspace")
			}
			sweepOnce(t, []*browser{owner, max, cy, stale}, s.logs.String(), once, canary)
		})
	}
}

func sessionCookie(b *browser) string {
	for _, c := range b.c.Jar.Cookies(mustURL(b.base)) {
		if c.Name == "agentkeys_session" {
			return c.Value
		}
	}
	return ""
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestDashboardTeam_Refusals: what a role lacks is not offered, and posted
// anyway it gets the API's status and message with nothing changed; so do
// the API's rules about owners, forms without their CSRF token, and a
// switch to a workspace the user is not in. A member may leave.
func TestDashboardTeam_Refusals(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t)})
			owner := newBrowser(s)
			ownerKey := owner.signUp("ada@example.com", "Acme")
			var me struct {
				Workspace struct{ ID string }
				User      struct{ ID string }
			}
			s.do("GET", "/api/v1/workspace", ownerKey, nil).decode(t, &me)
			ownerID, wsID := me.User.ID, me.Workspace.ID
			_, adminID := s.invite(ownerKey, "admin@example.com", "admin")
			_, memberID := s.invite(ownerKey, "max@example.com", "member")
			bob := newBrowser(s)
			bobKey := bob.signUp("bob@example.com", "Bobs")
			var bobs struct{ Workspace struct{ ID string } }
			s.do("GET", "/api/v1/workspace", bobKey, nil).decode(t, &bobs)
			admin, member := newBrowser(s), newBrowser(s)
			admin.logIn("admin@example.com")
			member.logIn("max@example.com")
			var ownerKeyID string
			var ks struct{ APIKeys []struct{ ID, UserID string } }
			s.do("GET", "/api/v1/api-keys", ownerKey, nil).decode(t, &ks)
			for _, k := range ks.APIKeys {
				if k.UserID == ownerID {
					ownerKeyID = k.ID
				}
			}
			state := func() string { // what a refusal must leave as it was
				var b strings.Builder
				for _, p := range []string{"/api/v1/members", "/api/v1/invitations", "/api/v1/api-keys", "/api/v1/workspace"} {
					a := s.do("GET", p, ownerKey, nil)
					a.want(t, http.StatusOK, "")
					b.Write(a.body)
				}
				return b.String()
			}
			before := state()
			refused := func(b *browser, path string, form url.Values, status int, msg string) {
				t.Helper()
				st, page := b.post(path, form)
				if st != status || !strings.Contains(page, msg) {
					t.Fatalf("POST %s = %d, want %d with %q:\n%s", path, st, status, msg, page)
				}
				if now := state(); now != before {
					t.Fatalf("POST %s was refused but changed the workspace:\n%s\nwas\n%s", path, now, before)
				}
			}

			// A member is offered none of it.
			st, page, _ := member.get("/settings")
			if st != http.StatusOK || !strings.Contains(page, "<h1>Team</h1>") {
				t.Fatalf("member /settings = %d:\n%s", st, page)
			}
			for _, absent := range []string{`href="/settings/api-keys"`, `href="/settings/webhooks"`, `href="/settings/billing"`, "Invite a member",
				`id="role-`, `aria-label="Remove `, "Pending invitations"} {
				if strings.Contains(page, absent) {
					t.Fatalf("a member's Team page offers %s:\n%s", absent, page)
				}
			}
			if !strings.Contains(page, `href="/settings/team/`+memberID+`/remove">Leave</a>`) || !strings.Contains(page, `href="/audit"`) {
				t.Fatalf("a member's Team page lacks Leave or the Audit link:\n%s", page)
			}
			if _, page, _ = member.get("/settings/workspace"); strings.Contains(page, `id="rename"`) || strings.Contains(page, "/settings/workspace/delete") || !strings.Contains(page, "Create Workspace") {
				t.Fatalf("a member's Workspace page:\n%s", page)
			}
			if st, _, _ = member.get("/settings/api-keys"); st != http.StatusForbidden {
				t.Fatalf("member API Keys page = %d", st)
			}
			// …and refused it when posted anyway: the API's 403, nothing changed.
			refused(member, "/settings/team/"+adminID+"/role", url.Values{"role": {"member"}}, http.StatusForbidden, "members:role")
			refused(member, "/settings/team/invitations", url.Values{"email": {"x@example.com"}, "role": {"member"}}, http.StatusForbidden, "members:invite")
			refused(member, "/settings/team/"+ownerID+"/remove", url.Values{}, http.StatusForbidden, "members:remove")
			refused(member, "/settings/api-keys", url.Values{"name": {"sneaky"}}, http.StatusForbidden, "api_keys:manage")
			refused(member, "/settings/api-keys/"+ownerKeyID+"/revoke", url.Values{}, http.StatusForbidden, "api_keys:manage")
			refused(member, "/settings/workspace", url.Values{"name": {"Hacked"}}, http.StatusForbidden, "workspace:edit")
			refused(member, "/settings/workspace/delete", url.Values{"confirm": {"Acme"}}, http.StatusForbidden, "workspace:delete")
			// An admin: no Delete Workspace, and the API's rules about owners.
			if _, page, _ = admin.get("/settings/workspace"); strings.Contains(page, "/settings/workspace/delete") || !strings.Contains(page, `id="rename"`) {
				t.Fatalf("an admin's Workspace page:\n%s", page)
			}
			refused(admin, "/settings/workspace/delete", url.Values{"confirm": {"Acme"}}, http.StatusForbidden, "workspace:delete")
			refused(admin, "/settings/team/"+ownerID+"/role", url.Values{"role": {"member"}}, http.StatusForbidden, "only an owner may change an owner")
			refused(admin, "/settings/team/invitations", url.Values{"email": {"x@example.com"}, "role": {"owner"}}, http.StatusForbidden, "only an owner may invite an owner")
			refused(admin, "/settings/team/"+ownerID+"/remove", url.Values{}, http.StatusForbidden, "only an owner may remove an owner")
			refused(admin, "/settings/api-keys/"+ownerKeyID+"/rotate", url.Values{}, http.StatusForbidden, "only the member a key belongs to")
			refused(admin, "/settings/api-keys/"+ownerKeyID+"/revoke", url.Values{}, http.StatusForbidden, "cannot revoke")
			_, page, _ = admin.get("/settings/team")
			if i := strings.Index(page, `id="invite-role"`); i < 0 || strings.Contains(page[i:], `<option value="owner"`) {
				t.Fatalf("an admin is offered inviting an owner:\n%s", page)
			}
			// The last owner cannot step down.
			owner.get("/settings/team")
			refused(owner, "/settings/team/"+ownerID+"/role", url.Values{"role": {"admin"}}, http.StatusConflict, "only owner")
			refused(owner, "/settings/team/invitations", url.Values{"email": {"not an email"}, "role": {"member"}}, http.StatusBadRequest, "not an email")

			// CSRF: no token, or another session's: 403, nothing changed.
			for name, tok := range map[string]string{"missing": "", "another session's": member.csrf} {
				refused(owner, "/settings/team/invitations", url.Values{"email": {"x@example.com"}, "role": {"member"}, "csrf": {tok}}, http.StatusForbidden, "CSRF")
				refused(owner, "/settings/api-keys", url.Values{"name": {"x"}, "csrf": {tok}}, http.StatusForbidden, "CSRF")
				refused(owner, "/settings/workspace/delete", url.Values{"confirm": {"Acme"}, "csrf": {tok}}, http.StatusForbidden, "CSRF")
				cookie := sessionCookie(owner)
				refused(owner, "/workspaces/switch", url.Values{"workspace": {wsID}, "csrf": {tok}}, http.StatusForbidden, "CSRF")
				if sessionCookie(owner) != cookie {
					t.Fatalf("%s token: a refused switch moved the session", name)
				}
			}

			// The switcher refuses a workspace the user is not in (whether or
			// not it exists): 403, the session where it was.
			owner.get("/credentials")
			cookie := sessionCookie(owner)
			for _, ws := range []string{bobs.Workspace.ID, "ws_nonexistent", ""} {
				st, page := owner.post("/workspaces/switch", url.Values{"workspace": {ws}})
				if st != http.StatusForbidden || !strings.Contains(page, "not a member of that workspace") {
					t.Fatalf("switch to %q = %d:\n%s", ws, st, page)
				}
				if sessionCookie(owner) != cookie {
					t.Fatal("a refused switch changed the session cookie")
				}
				if _, page, _ = owner.get("/settings/workspace"); !strings.Contains(page, "<h2>Acme</h2>") {
					t.Fatalf("after a refused switch the session is not in Acme:\n%s", page)
				}
			}
			if n := count(t, s, `SELECT count(*) FROM sessions WHERE user_id = $1`, ownerID); n != 1 {
				t.Fatalf("the owner has %d sessions", n)
			}

			// A member leaves: the session ends, and with no other workspace
			// the log-in page says why.
			member.get("/settings/team/" + memberID + "/remove")
			st, page = member.post("/settings/team/"+memberID+"/remove", url.Values{})
			if st != http.StatusOK || !strings.Contains(page, "<h1>Log in</h1>") || !strings.Contains(page, "You left the workspace.") {
				t.Fatalf("leave = %d:\n%s", st, page)
			}
			if n := count(t, s, `SELECT count(*) FROM members WHERE user_id = $1`, memberID); n != 0 {
				t.Fatal("still a member after leaving")
			}
			if _, page, _ = member.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("still signed in after leaving")
			}
		})
	}
}

// TestDashboardTeam_Accept: the accept page for unknown, used, replaced,
// expired and missing tokens answers with the API's status and no form,
// and writes nothing; a form without its double-submit token is refused;
// an existing user accepts with their own password (a wrong one refused)
// and is signed in to the workspace joined.
func TestDashboardTeam_Accept(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			clk := &clock{}
			clk.add(time.Duration(time.Now().UnixNano()))
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), now: clk.now})
			owner := newBrowser(s)
			owner.signUp("ada@example.com", "Acme")
			newBrowser(s).signUp("bob@example.com", "Bobs")
			users := func() int { return count(t, s, `SELECT count(*) FROM users`) }
			members := func() int { return count(t, s, `SELECT count(*) FROM members`) }
			u0, m0 := users(), members()
			tokenOf := func(link string) string { return mustURL(link).Query().Get("token") }

			b := newBrowser(s)
			for _, c := range []struct {
				path   string
				status int
				msg    string
			}{
				{"/invitations/accept?token=inv_unknown", http.StatusUnauthorized, "not valid"},
				{"/invitations/accept", http.StatusBadRequest, "missing token"},
			} {
				st, page, _ := b.get(c.path)
				if st != c.status || !strings.Contains(page, c.msg) || strings.Contains(page, "Accept invitation") {
					t.Fatalf("GET %s = %d:\n%s", c.path, st, page)
				}
			}
			b.get("/login") // a form's double-submit token
			if st, page := b.post("/invitations/accept", url.Values{"token": {"inv_unknown"}, "password": {teamPassword}}); st != http.StatusUnauthorized || !strings.Contains(page, "not valid") {
				t.Fatalf("POST unknown token = %d:\n%s", st, page)
			}

			// Without the form's double-submit token: 403, the invitation unused.
			link := owner.inviteByPage("new@example.com", "member")
			fresh := newBrowser(s)
			if st, _ := fresh.post("/invitations/accept", url.Values{"token": {tokenOf(link)}, "password": {teamPassword}}); st != http.StatusForbidden {
				t.Fatalf("accept without the form token = %d", st)
			}
			// A weak password for a new user: the API's 400, the form again.
			fresh.get(strings.TrimPrefix(link, s.url))
			if st, page := fresh.post("/invitations/accept", url.Values{"token": {tokenOf(link)}, "password": {"short"}}); st != http.StatusBadRequest || !strings.Contains(page, "Accept invitation") {
				t.Fatalf("weak password = %d:\n%s", st, page)
			}
			if users() != u0 || members() != m0 {
				t.Fatal("a refused accept wrote a user or a member")
			}
			fresh.acceptByPage(link, teamPassword)
			if st, page, _ := newBrowser(s).get(strings.TrimPrefix(link, s.url)); st != http.StatusUnauthorized || strings.Contains(page, "Accept invitation") {
				t.Fatalf("a used link = %d:\n%s", st, page)
			}

			// An existing user gives their own password; a wrong one is refused.
			link = owner.inviteByPage("bob@example.com", "admin")
			bob := newBrowser(s)
			bob.get(strings.TrimPrefix(link, s.url))
			m1 := members()
			if st, page := bob.post("/invitations/accept", url.Values{"token": {tokenOf(link)}, "password": {"not bob's password"}}); st != http.StatusUnauthorized || !strings.Contains(page, "already has an account") || !strings.Contains(page, "Accept invitation") {
				t.Fatalf("existing user, wrong password = %d:\n%s", st, page)
			}
			if members() != m1 {
				t.Fatal("a wrong password joined the workspace")
			}
			bob.acceptByPage(link, teamPassword)
			if _, page, _ := bob.get("/settings/workspace"); !strings.Contains(page, "<h2>Acme</h2>") || !strings.Contains(page, `id="workspace-switch"`) {
				t.Fatalf("bob is not in Acme with a switcher:\n%s", page)
			}

			// Expired: the page and the form answer the API's 400; nothing written.
			link = owner.inviteByPage("late@example.com", "member")
			clk.add(7*24*time.Hour + time.Second)
			u1, m2 := users(), members()
			late := newBrowser(s)
			st, page, _ := late.get(strings.TrimPrefix(link, s.url))
			if st != http.StatusBadRequest || !strings.Contains(page, "expired") || strings.Contains(page, "Accept invitation") {
				t.Fatalf("expired page = %d:\n%s", st, page)
			}
			late.get("/login") // the expired page has no form: a form's token from elsewhere
			if st, page := late.post("/invitations/accept", url.Values{"token": {tokenOf(link)}, "password": {teamPassword}}); st != http.StatusBadRequest || !strings.Contains(page, "expired") {
				t.Fatalf("expired accept = %d:\n%s", st, page)
			}
			if users() != u1 || members() != m2 || count(t, s, `SELECT count(*) FROM invitations`) != 1 {
				t.Fatal("an expired accept wrote something")
			}
		})
	}
}

// TestDashboardTeam_SwitchKeepsLifetime: switching workspaces gives the
// session a new id but not a new life: it still ends at the absolute
// lifetime counted from the log-in (injected clock).
func TestDashboardTeam_SwitchKeepsLifetime(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			c := &clock{}
			c.add(time.Duration(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), now: c.now})
			b := newBrowser(s)
			key := b.signUp("ada@example.com", "Acme")
			var acme struct{ Workspace struct{ ID string } }
			s.do("GET", "/api/v1/workspace", key, nil).decode(t, &acme)
			b.get("/settings/workspace")
			if st, _ := b.post("/settings/workspace/new", url.Values{"name": {"Second"}}); st != http.StatusCreated {
				t.Fatalf("create workspace = %d", st)
			}
			for range 14 { // 154 hours, never idle 12
				c.add(11 * time.Hour)
				if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Credentials</h1>") {
					t.Fatal("signed out within the lifetime")
				}
			}
			if st, page := b.post("/workspaces/switch", url.Values{"workspace": {acme.Workspace.ID}}); st != http.StatusOK || !strings.Contains(page, "<h1>Credentials</h1>") {
				t.Fatalf("switch = %d:\n%s", st, page)
			}
			c.add(11 * time.Hour) // 165 hours: within the 7 days
			if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Credentials</h1>") {
				t.Fatal("signed out within the lifetime after a switch")
			}
			c.add(11 * time.Hour) // 176 hours: past them, though the switch was 22 hours ago
			if _, page, _ := b.get("/credentials"); !strings.Contains(page, "<h1>Log in</h1>") {
				t.Fatal("switching workspaces extended the session past its absolute lifetime")
			}
		})
	}
}
