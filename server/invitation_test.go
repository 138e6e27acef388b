package server_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/internal/smtptest"
	"github.com/agentkeys/agentkeys/server/mail"
)

const smtpUser, smtpPass = "mailer", "smtp-canary-pass"

// clock is a settable clock for expiry tests.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

var linkRE = regexp.MustCompile(`https?://\S+token=[A-Za-z0-9_]+`)

// TestInvitations_Life: an invitation goes out through a real SMTP server
// (STARTTLS, AUTH); the link in the delivered mail is accepted by a new user
// and, for another workspace, by an existing one; resend kills the old
// link; cancelled, expired and reused tokens are refused; nothing is
// written by a refusal.
func TestInvitations_Life(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			mb := smtptest.Start(t, smtptest.Options{User: smtpUser, Pass: smtpPass})
			last := func(n int) smtptest.Message {
				t.Helper()
				msgs := mb.Messages()
				if len(msgs) != n {
					t.Fatalf("%d messages delivered, want %d", len(msgs), n)
				}
				return msgs[n-1]
			}
			sender, err := mail.New(mail.Config{URL: "smtp://" + smtpUser + ":" + smtpPass + "@" + mb.Addr, From: "agentkeys <noreply@example.com>",
				TLS: &tls.Config{RootCAs: mb.CA}})
			if err != nil {
				t.Fatal(err)
			}
			clk := &clock{}
			clk.ns.Store(time.Now().UnixNano())
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), mailer: sender, now: clk.now, publicURL: "https://keys.example.com/"})
			// Sign-up is by email on this server: the operator makes the workspaces.
			mkws := func(name string) string {
				ws, err := s.store.CreateWorkspace(t.Context(), storeWorkspace(strings.ToLower(name)+"@example.com", name))
				if err != nil {
					t.Fatal(err)
				}
				return ws.APIKey
			}
			owner := mkws("Acme")

			// Invited by email: the answer has no link; the mail has it.
			a := s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "New@Example.com", "role": "admin"})
			a.want(t, 201, "")
			var inv struct {
				ID, Email, Role, AcceptURL string
				EmailSent                  bool
				ExpiresAt                  time.Time
			}
			a.decode(t, &inv)
			if !inv.EmailSent || inv.AcceptURL != "" || inv.Email != "new@example.com" || inv.Role != "admin" ||
				inv.ExpiresAt.Sub(clk.now()) < 7*24*time.Hour-time.Minute || inv.ExpiresAt.Sub(clk.now()) > 7*24*time.Hour+time.Minute {
				t.Fatalf("invitation answer = %s", a.body)
			}
			m1 := last(1)
			msg := m1.Data
			if !m1.TLS || !strings.Contains(msg, "To: <new@example.com>") || !strings.Contains(msg, "Acme") {
				t.Fatalf("delivered (tls %v):\n%s", m1.TLS, msg)
			}
			link := linkRE.FindString(msg)
			if !strings.HasPrefix(link, "https://keys.example.com/invitations/accept?token=") {
				t.Fatalf("no link to the dashboard's accept page in the mail:\n%s", msg)
			}

			// The link (the dashboard's page) and its API twin say what it is.
			path := strings.TrimPrefix(link, "https://keys.example.com")
			if g := s.do("GET", path, "", nil); g.status != 200 || !strings.Contains(string(g.body), "<h1>Join Acme</h1>") {
				t.Fatalf("GET link = %d %s", g.status, g.body)
			}
			g := s.do("GET", "/api/v1"+path, "", nil)
			g.want(t, 200, "")
			if !strings.Contains(string(g.body), `"workspace":"Acme"`) || !strings.Contains(string(g.body), `"role":"admin"`) || !strings.Contains(string(g.body), "agentkeys team accept") {
				t.Fatalf("GET link = %s", g.body)
			}

			// Re-sent: a new link; the old one is dead.
			s.do("POST", "/api/v1/invitations/"+inv.ID+"/resend", owner, nil).want(t, 200, "")
			link2 := linkRE.FindString(last(2).Data)
			if link2 == "" || link2 == link {
				t.Fatalf("re-sent link %q (old %q)", link2, link)
			}
			accept := func(link, pw string) *answer {
				return s.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": inviteToken(t, link), "password": pw})
			}
			accept(link, teamPassword).want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("GET", "/api/v1"+path, "", nil).want(t, 401, agentkeys.EUNAUTHORIZED)
			// A weak or 10 MB password: refused, nothing written.
			accept(link2, "short").want(t, 400, agentkeys.EINVALID)
			s.do("POST", "/api/v1/invitations/accept", "", `{"token":"`+inviteToken(t, link2)+`","password":"`+strings.Repeat("p", 10<<20)+`"}`).want(t, 413, agentkeys.ETOOLARGE)
			// Accepted by a new user: a key for the admin membership.
			acc := accept(link2, teamPassword)
			acc.want(t, 201, "")
			var got struct {
				APIKey    string
				Workspace struct{ Name, Role string }
			}
			acc.decode(t, &got)
			if got.Workspace.Name != "Acme" || got.Workspace.Role != "admin" {
				t.Fatalf("accepted = %s", acc.body)
			}
			s.do("GET", "/api/v1/api-keys", got.APIKey, nil).want(t, 200, "") // an admin may
			accept(link2, teamPassword).want(t, 401, agentkeys.EUNAUTHORIZED) // used

			// Inviting a member again, an unknown role, a bad email: refused.
			s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "new@example.com", "role": "member"}).want(t, 409, agentkeys.ECONFLICT)
			s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "x@example.com", "role": "god"}).want(t, 400, agentkeys.EINVALID)
			s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "not an email", "role": "member"}).want(t, 400, agentkeys.EINVALID)
			s.do("POST", "/api/v1/invitations", got.APIKey, map[string]any{"email": "x@example.com", "role": "owner"}).want(t, 403, agentkeys.EFORBIDDEN)

			// An existing user invited to another workspace must prove it is
			// them.
			other := mkws("Other")
			s.do("POST", "/api/v1/invitations", other, map[string]any{"email": "new@example.com", "role": "member"}).want(t, 201, "")
			link3 := linkRE.FindString(last(3).Data)
			accept(link3, "not the password").want(t, 401, agentkeys.EUNAUTHORIZED)
			accept(link3, teamPassword).want(t, 201, "")

			// Cancelled, and expired (the clock moves 7 days): refused.
			s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "c@example.com", "role": "member"}).decode(t, &inv)
			link4 := linkRE.FindString(last(4).Data)
			s.do("DELETE", "/api/v1/invitations/"+inv.ID, owner, nil).want(t, 204, "")
			accept(link4, teamPassword).want(t, 401, agentkeys.EUNAUTHORIZED)
			s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "e@example.com", "role": "member"}).want(t, 201, "")
			link5 := linkRE.FindString(last(5).Data)
			clk.add(7*24*time.Hour + time.Second)
			a = accept(link5, teamPassword)
			a.want(t, 400, agentkeys.EINVALID)
			if !strings.Contains(string(a.body), "expired") {
				t.Fatalf("expired answer = %s", a.body)
			}
			var ms struct{ Members []struct{ Email string } }
			s.do("GET", "/api/v1/members", owner, nil).decode(t, &ms)
			if len(ms.Members) != 2 {
				t.Fatalf("members = %+v", ms.Members)
			}

			// No token, password or SMTP password in the logs or the audit log.
			audit := s.do("GET", "/api/v1/audit", owner, nil)
			for _, secret := range []string{inviteToken(t, link), inviteToken(t, link2), inviteToken(t, link5), teamPassword, smtpPass, got.APIKey} {
				if strings.Contains(s.logs.String(), secret) || strings.Contains(string(audit.body), secret) {
					t.Fatalf("a secret is in the logs or the audit log")
				}
			}
		})
	}
}

// TestInvitations_NoSMTP: without SMTP the answer carries the link; a
// failing SMTP server leaves the invitation and says so.
func TestInvitations_NoSMTP(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, owner := s.signup("Acme")
	a := s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "n@example.com", "role": "member"})
	a.want(t, http.StatusCreated, "")
	var inv struct {
		AcceptURL string
		EmailSent bool
	}
	a.decode(t, &inv)
	if inv.EmailSent || !strings.HasPrefix(inv.AcceptURL, s.url+"/") {
		t.Fatalf("answer = %s", a.body)
	}
	s.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": inviteToken(t, inv.AcceptURL), "password": teamPassword}).want(t, 201, "")

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	sender, _ := mail.New(mail.Config{URL: "smtp://u:pw-canary@" + dead, From: "noreply@example.com"})
	s2 := newTestServer(t, serverOpts{mailer: sender})
	// Sign-up needs email on this server: the workspace is made by the operator.
	ws2, err := s2.store.CreateWorkspace(t.Context(), storeWorkspace("beta@example.com", "Beta"))
	if err != nil {
		t.Fatal(err)
	}
	owner2 := ws2.APIKey
	a = s2.do("POST", "/api/v1/invitations", owner2, map[string]any{"email": "n@example.com", "role": "member"})
	a.want(t, http.StatusCreated, "")
	a.decode(t, &inv)
	if inv.EmailSent || inv.AcceptURL == "" || !strings.Contains(string(a.body), "could not send") || strings.Contains(string(a.body), "pw-canary") {
		t.Fatalf("answer after a failed send = %s", a.body)
	}
	var list struct{ Invitations []struct{ Email string } }
	s2.do("GET", "/api/v1/invitations", owner2, nil).decode(t, &list)
	if len(list.Invitations) != 1 {
		t.Fatalf("invitations = %+v", list.Invitations)
	}
}

// TestSignup_ByEmail: on a server that sends email, sign-up answers 202
// "check your email" whether or not the email has an account (issue 11);
// the link in the mail makes the account; it works once and expires.
func TestSignup_ByEmail(t *testing.T) {
	mb := smtptest.Start(t, smtptest.Options{})
	sender, err := mail.New(mail.Config{URL: "smtp://" + mb.Addr, From: "noreply@example.com", TLS: &tls.Config{RootCAs: mb.CA}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	s := newTestServer(t, serverOpts{mailer: sender, now: clk.now})
	signup := func(email string) *answer {
		return s.do("POST", "/api/v1/signup", "", map[string]any{"email": email, "password": teamPassword, "workspace": "Acme"})
	}
	a := signup("New@example.com")
	a.want(t, 202, "")
	tokenRE := regexp.MustCompile(`su_[A-Za-z0-9]+`)
	tok := tokenRE.FindString(mb.Messages()[0].Data)
	if tok == "" {
		t.Fatalf("no token in %s", mb.Messages()[0].Data)
	}
	confirm := func(tok string) *answer {
		return s.do("POST", "/api/v1/signup/confirm", "", map[string]any{"token": tok})
	}
	c := confirm(tok)
	c.want(t, 201, "")
	var out struct {
		Workspace struct{ Name string }
		APIKey    string
	}
	c.decode(t, &out)
	if out.Workspace.Name != "Acme" {
		t.Fatalf("confirmed = %s", c.body)
	}
	s.do("GET", "/api/v1/workspace", out.APIKey, nil).want(t, 200, "")
	confirm(tok).want(t, 401, agentkeys.EUNAUTHORIZED)

	// The email has an account now: the same answer, and a note by mail.
	b := signup("new@example.com")
	b.want(t, 202, "")
	if string(a.body) != string(b.body) {
		t.Fatalf("sign-up answers differ: %s vs %s", a.body, b.body)
	}
	if msgs := mb.Messages(); len(msgs) != 2 || !strings.Contains(msgs[1].Data, "already has an account") || tokenRE.MatchString(msgs[1].Data) {
		t.Fatalf("second mail: %+v", msgs)
	}
	// Expired links are refused.
	signup("late@example.com").want(t, 202, "")
	late := tokenRE.FindString(mb.Messages()[2].Data)
	clk.add(25 * time.Hour)
	confirm(late).want(t, 400, agentkeys.EINVALID)
	confirm(late).want(t, 401, agentkeys.EUNAUTHORIZED)
	if strings.Contains(s.logs.String(), tok) || strings.Contains(s.logs.String(), late) {
		t.Fatal("a sign-up token is in the logs")
	}
}
