package tui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
)

var tokenRE = regexp.MustCompile(`pxr_[0-9A-Za-z]+`)

func TestAgents_CreateAssignTokenShownOnce(t *testing.T) {
	t.Setenv("TMUX", "") // the plain OSC 52 sequence, not a multiplexer's wrapping
	t.Setenv("TERM", "xterm-256color")
	v := mustOpenVault(t)
	mustCreateCredential(t, v, "Resend Production", agentkeys.APIKey, nil, agentkeys.Secret{Value: "re_CANARY"})
	mustCreateCredential(t, v, "Stripe", agentkeys.APIKey, nil, agentkeys.Secret{Value: "sk_CANARY"})
	var clip bytes.Buffer
	d := start(t, newApp(v, tui.Options{Clipboard: &clip}), 80, 24)
	d.keys("2")
	d.mustSee("No agents yet: press n to create one.")

	// Create: an empty name is refused in place, nothing written.
	d.keys("n<enter>")
	d.mustSee("missing agent name")
	if as, _ := v.ListAgents(context.Background()); len(as) != 0 {
		t.Fatalf("empty name wrote %d agents", len(as))
	}
	d.keys("support-bot<enter>")
	d.mustSee("Created agent support-bot", "support-bot")
	a, err := v.FindAgent(context.Background(), "support-bot")
	if err != nil {
		t.Fatal(err)
	}

	// Assign: the picker lists credentials; typing narrows.
	d.keys("a")
	d.mustSee("Assign a credential to support-bot", "Resend Production", "Stripe")
	d.keys("strip")
	d.mustNotSee("Resend Production")
	d.keys("<enter>")
	v1 := d.view()
	d.mustSee("New proxy token for support-bot → Stripe", "will not be shown again", "c copy")
	tok := tokenRE.FindString(v1)
	if tok == "" {
		t.Fatalf("no token in the box:\n%s", v1)
	}
	// The token is on a line of its own, nothing else on it (selectable).
	found := false
	for _, line := range strings.Split(v1, "\n") {
		if strings.TrimSpace(line) == tok {
			found = true
		}
	}
	if !found {
		t.Fatalf("token not alone on its line:\n%s", v1)
	}
	// It is the real token: it opens the grant.
	r, err := v.Authorize(context.Background(), tok, "")
	if err != nil || r.AgentID != a.ID || r.Credential.Name != "Stripe" {
		t.Fatalf("token does not open the grant: %+v %v", r, err)
	}
	// q and tab do not leave the box by accident.
	d.keys("q<tab>1")
	d.mustSee(tok)
	if d.quit {
		t.Fatal("q quit with the token box open")
	}

	// Copy: an OSC 52 sequence carrying the token in base64.
	d.keys("c")
	d.mustSee("Sent to the terminal's clipboard")
	if !strings.Contains(clip.String(), "\x1b]52;c;"+base64.StdEncoding.EncodeToString([]byte(tok))) {
		t.Fatalf("clipboard got %q", clip.String())
	}

	// Close: never shown again, anywhere.
	d.keys("<enter>")
	d.mustSee("Token closed", "Stripe")
	for _, k := range []string{"", "1", "2", "3", "4", "2", "?", "a", "<esc>"} {
		d.keys(k)
		d.mustNotSee(tok, "pxr_")
	}
	ag, _ := v.FindAgent(context.Background(), "support-bot")
	if len(ag.Credentials) != 1 || ag.Credentials[0].CredentialName != "Stripe" {
		t.Fatalf("assignment not written: %+v", ag.Credentials)
	}
}

func TestAgents_NoClipboardShowsSelectable(t *testing.T) {
	v := mustOpenVault(t)
	c := mustCreateCredential(t, v, "Stripe", agentkeys.APIKey, nil, agentkeys.Secret{Value: "sk"})
	a := mustCreateAgent(t, v, "bot")
	_ = c
	_ = a
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("2a<enter>")
	d.mustSee("Select it with the mouse to copy it.", "will not be shown again")
	d.mustNotSee("c copy")
}

func TestAgents_RevokeAndDelete(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("2")
	// Rows by name: deploy-script, idle-agent, support-bot.
	d.mustSee("deploy-script", "GitHub bot", "support-bot", "Resend Production, Stripe test")
	d.keys("G") // support-bot, two credentials: a picker first
	d.keys("r")
	d.mustSee("Revoke which credential from support-bot?", "Resend Production", "Stripe test")
	d.keys("<down><enter>")
	d.mustSee(`Revoke "Stripe test" from agent "support-bot"?`, "stops working at once")
	d.keys("n")
	if a, _ := v.FindAgent(context.Background(), "support-bot"); len(a.Credentials) != 2 {
		t.Fatal("cancelled revoke changed the vault")
	}
	d.keys("r<down><enter>y")
	d.mustSee("Revoked Stripe test from support-bot")
	if a, _ := v.FindAgent(context.Background(), "support-bot"); len(a.Credentials) != 1 || a.Credentials[0].CredentialName != "Resend Production" {
		t.Fatalf("after revoke: %+v", a.Credentials)
	}
	// One credential left: straight to the confirmation.
	d.keys("r")
	d.mustSee(`Revoke "Resend Production" from agent "support-bot"?`)
	d.keys("<esc>")

	// Delete names what stops working.
	d.keys("g") // deploy-script
	d.keys("d")
	d.mustSee(`Delete agent "deploy-script"?`, "GitHub bot", "Press y to delete")
	d.keys("<esc>")
	if _, err := v.FindAgent(context.Background(), "deploy-script"); err != nil {
		t.Fatal("esc deleted the agent")
	}
	d.keys("dy")
	d.mustSee("Deleted agent deploy-script")
	if _, err := v.FindAgent(context.Background(), "deploy-script"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		t.Fatalf("want ENOTFOUND, got %v", err)
	}
	d.mustNotSee("deploy-script  ")
}

func TestAgents_DuplicateNameInPlace(t *testing.T) {
	v := mustOpenVault(t)
	mustCreateAgent(t, v, "bot")
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("2nBOT<enter>")
	d.mustSee("New agent name", "✗")
	if as, _ := v.ListAgents(context.Background()); len(as) != 1 {
		t.Fatalf("%d agents", len(as))
	}
	d.keys("<esc>")
	d.mustNotSee("New agent name", "✗")
}

// TestAgents_DeletedElsewhere: an agent removed by another program since the
// list was loaded is reported as such, and the list reloads.
func TestAgents_DeletedElsewhere(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("2G")
	d.mustSee("› support-bot")
	a, err := v.FindAgent(context.Background(), "support-bot")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteAgent(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	d.keys("dy")
	d.mustSee("support-bot was already deleted", "2 agents")
	d.mustNotSee("› support-bot")
}

// TestAgents_AssignWithoutCredentials: with nothing to assign, a says where
// to add a credential instead of opening an empty list.
func TestAgents_AssignWithoutCredentials(t *testing.T) {
	v := mustOpenVault(t)
	mustCreateAgent(t, v, "bot")
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("2a")
	d.mustSee("No credentials to assign yet", "press 1, then n")
	d.mustNotSee("Assign a credential to bot")
}
