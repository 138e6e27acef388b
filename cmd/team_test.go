package cmd_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/cmd"
)

// TestTeamCommands: the owner logs in with a password, invites an admin
// and a member (no SMTP: the link is printed), each accepts with the CLI
// and acts with their role; keys, workspaces and the refusals' exit codes.
func TestTeamCommands(t *testing.T) {
	url, _ := liveServer(t) // owner@example.com / "correct horse battery", workspace Acme
	pw := func(p string) func(*cmd.IOStreams, *bytes.Buffer) {
		return func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(p + "\n") }
	}
	owner, admin, member := newEnv(t), newEnv(t), newEnv(t)

	// On the local vault, team commands need a server: exit 2.
	for _, args := range [][]string{{"team", "list"}, {"workspaces", "list"}, {"keys", "list"}} {
		if r := owner.run(args...); r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "needs a server") {
			t.Fatalf("%v on the local vault: exit %d %s", args, r.code, r.stderr)
		}
	}
	// A wrong password: exit 5, nothing saved.
	if r := owner.runWith(pw("wrong password"), "login", "--server", url, "--email", "owner@example.com", "--password-stdin"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("wrong password: exit %d %s", r.code, r.stderr)
	}
	if r := owner.runWith(pw("correct horse battery"), "login", "--server", url, "--email", "owner@example.com", "--password-stdin"); r.code != 0 ||
		strings.Contains(r.stdout+r.stderr, "correct horse battery") {
		t.Fatalf("login: exit %d %s %s", r.code, r.stdout, r.stderr)
	}

	link := regexp.MustCompile(`https?://\S+token=\S+`)
	invite := func(email, role string) string {
		out := owner.must("team", "invite", email, "--role", role)
		l := link.FindString(out)
		if l == "" {
			t.Fatalf("no link printed: %s", out)
		}
		return l
	}
	adminLink, memberLink := invite("admin@example.com", "admin"), invite("member@example.com", "member")
	if r := owner.run("team", "invite", "admin@example.com", "--role", "admin"); r.code != cmd.ExitConflict {
		t.Fatalf("inviting twice: exit %d %s", r.code, r.stderr)
	}
	if r := owner.run("team", "invite", "x@example.com", "--role", "god"); r.code != cmd.ExitUsage {
		t.Fatalf("unknown role: exit %d %s", r.code, r.stderr)
	}
	// Resend gives a new link (the old one dies); cancel; cancel again: not found.
	zLink := invite("z@example.com", "member")
	zLink2 := link.FindString(owner.must("team", "resend", "z@example.com"))
	if zLink2 == "" || zLink2 == zLink {
		t.Fatalf("resend link %q (was %q)", zLink2, zLink)
	}
	owner.must("team", "cancel", "z@example.com")
	if r := owner.run("team", "cancel", "z@example.com"); r.code != cmd.ExitNotFound {
		t.Fatalf("cancel twice: exit %d %s", r.code, r.stderr)
	}
	if r := newEnv(t).runWith(pw("z password!!"), "team", "accept", zLink2, "--password-stdin"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("accepting a cancelled invitation: exit %d %s", r.code, r.stderr)
	}
	if r := admin.runWith(pw("new admin password"), "team", "accept", adminLink, "--password-stdin"); r.code != 0 {
		t.Fatalf("accept: exit %d %s", r.code, r.stderr)
	}
	if r := member.runWith(pw("new member password"), "team", "accept", memberLink, "--password-stdin"); r.code != 0 {
		t.Fatalf("accept: exit %d %s", r.code, r.stderr)
	}
	if r := member.runWith(pw("new member password"), "team", "accept", memberLink, "--password-stdin"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("accepting twice: exit %d %s", r.code, r.stderr)
	}

	if st := member.must("status"); !strings.Contains(st, "Your role:    member") || !strings.Contains(st, "Acme") {
		t.Fatalf("status = %s", st)
	}

	// The matrix through the CLI: a member may create agents, not credentials
	// or invitations; an admin may.
	member.must("agents", "create", "--name", "bot")
	if r := member.run("credentials", "add", "--name", "svc", "--type", "API_KEY", "--value", "v", "--allow-host", "api.example.com"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("member adds a credential: exit %d %s", r.code, r.stderr)
	}
	if r := member.run("team", "invite", "y@example.com", "--role", "member"); r.code != cmd.ExitUnauthorized || !strings.Contains(r.stderr, "members:invite") {
		t.Fatalf("member invites: exit %d %s", r.code, r.stderr)
	}
	admin.must("credentials", "add", "--name", "svc", "--type", "API_KEY", "--value", "v", "--allow-host", "api.example.com")

	var team struct {
		Members []struct{ Email, Role string }
	}
	if err := json.Unmarshal([]byte(owner.must("team", "list", "--json")), &team); err != nil || len(team.Members) != 3 {
		t.Fatalf("team list: %+v %v", team, err)
	}
	owner.must("team", "set-role", "member@example.com", "admin")
	member.must("credentials", "add", "--name", "svc2", "--type", "API_KEY", "--value", "v", "--allow-host", "api.example.com")
	if r := admin.run("team", "set-role", "owner@example.com", "member"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("admin demotes the owner: exit %d %s", r.code, r.stderr)
	}

	// Keys: create (shown once), list (never values), revoke.
	k := strings.TrimSpace(admin.must("keys", "create", "--name", "ci"))
	if !strings.HasPrefix(k, "ak_ws_") {
		t.Fatalf("keys create printed %q", k)
	}
	list := owner.must("keys", "list")
	if strings.Contains(list, "ak_ws_") || !strings.Contains(list, "ci") {
		t.Fatalf("keys list = %s", list)
	}
	var keys struct{ APIKeys []struct{ ID, Name string } }
	if err := json.Unmarshal([]byte(owner.must("keys", "list", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	for _, kk := range keys.APIKeys {
		if kk.Name == "ci" {
			if r := owner.run("keys", "rotate", kk.ID); r.code != cmd.ExitUnauthorized {
				t.Fatalf("rotating another member's key: exit %d %s", r.code, r.stderr)
			}
			k2 := strings.TrimSpace(admin.must("keys", "rotate", kk.ID))
			if !strings.HasPrefix(k2, "ak_ws_") || k2 == k {
				t.Fatalf("keys rotate printed %q", k2)
			}
			owner.must("keys", "revoke", kk.ID)
		}
	}
	if r := owner.run("keys", "revoke", "key_nope"); r.code != cmd.ExitNotFound {
		t.Fatalf("revoke unknown: exit %d %s", r.code, r.stderr)
	}

	// Workspaces: create and switch back and forth; delete needs the name.
	owner.must("workspaces", "create", "Side")
	wl := owner.must("workspaces", "list")
	if !strings.Contains(wl, "Side") || !strings.Contains(wl, "Acme") {
		t.Fatalf("workspaces list = %s", wl)
	}
	owner.must("workspaces", "switch", "Acme")
	owner.must("workspaces", "switch", "Side")
	if r := owner.run("workspaces", "delete", "--confirm", "side"); r.code != cmd.ExitUsage {
		t.Fatalf("delete with the wrong name: exit %d %s", r.code, r.stderr)
	}
	owner.must("workspaces", "delete", "--confirm", "Side")
	owner.must("workspaces", "switch", "Acme")

	// Removal: the member's saved key stops at once.
	owner.must("team", "remove", "member@example.com")
	if r := member.run("credentials", "list"); r.code != cmd.ExitUnauthorized {
		t.Fatalf("removed member: exit %d %s", r.code, r.stderr)
	}
}
