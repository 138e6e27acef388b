package tui_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

func TestAudit_ListFilterDetail(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	d.keys("3")
	d.mustSee("3 events", "POST api.resend.com/emails", "GET api.github.com/repos/acme/app", "403 denied", "support-bot", "deploy-script")
	d.mustNotSee("secret=1") // the query string is never recorded

	tests := []struct {
		name      string
		agent     string
		cred      string
		status    string
		see, miss []string
		err       string
	}{
		{name: "by agent", agent: "DEPLOY-script", see: []string{"1 event", "api.github.com"}, miss: []string{"api.resend.com"}},
		{name: "by credential", cred: "resend production", see: []string{"2 events", "api.resend.com/emails", "evil.example.net"}, miss: []string{"api.github.com"}},
		{name: "by status code", status: "200", see: []string{"2 events"}, miss: []string{"evil.example.net"}},
		{name: "by status class", status: "4xx", see: []string{"1 event", "evil.example.net"}, miss: []string{"api.github.com"}},
		{name: "by decision", status: "denied", see: []string{"1 event", "evil.example.net"}, miss: []string{"api.resend.com/emails"}},
		{name: "combined", agent: "support-bot", status: "2xx", see: []string{"1 event", "api.resend.com/emails"}, miss: []string{"evil.example.net", "api.github.com"}},
		{name: "unknown agent", agent: "nobody", err: `No agent is named "nobody".`},
		{name: "bad status", status: "teapot", err: "Status must be a code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.tb = t
			d.keys("f")
			d.mustSee("Filter the audit log", "Agent       [", "Credential  [", "Status      [")
			d.keys(tt.agent + "<tab>" + tt.cred + "<tab>" + tt.status + "<enter>")
			if tt.err != "" {
				d.mustSee(tt.err, "Filter the audit log")
				d.keys("<esc>")
				d.mustSee("3 events")
				d.mustNotSee(tt.err)
				return
			}
			d.mustSee(append(tt.see, "Filter: ", "x clears")...)
			d.mustNotSee(tt.miss...)
			d.keys("x")
			d.mustSee("3 events")
			d.mustNotSee("Filter: ")
		})
	}
	d.tb = t

	// enter opens the newest row's details; esc goes back.
	d.keys("<enter>")
	d.mustSee("Request ", "Decision", "denied", "DESTINATION_NOT_ALLOWED", "evil.example.net", "/steal", "never recorded")
	d.keys("<esc>")
	d.mustSee("3 events")
	d.mustNotSee(seedCanaries...)
}

func TestAudit_PollAddsNewEvents(t *testing.T) {
	v := mustOpenVault(t)
	c := mustCreateCredential(t, v, "Resend", agentkeys.APIKey, nil, agentkeys.Secret{Value: "k"})
	a := mustCreateAgent(t, v, "bot")
	tok := mustAssign(t, v, a, c)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("3")
	d.mustSee("0 events", "No requests yet")
	proxied(t, v, tok, "GET", "https://api.resend.com/domains")
	// The outcome is written after the response (queued), so a poll may
	// first see the row as pending; a later poll replaces it in place.
	pollUntil(d, "1 event", "GET api.resend.com/domains", "200")
	proxied(t, v, tok, "DELETE", "https://api.resend.com/domains/1")
	pollUntil(d, "2 events", "DELETE api.resend.com/domains/1")
	for deadline := time.Now().Add(5 * time.Second); strings.Contains(d.view(), "pending") && time.Now().Before(deadline); {
		d.send(tui.PollNow(d.m))
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Count(d.view(), " 200 ") != 2 {
		t.Fatalf("pending rows were not completed in place:\n%s", d.view())
	}
	// Newest first.
	view := d.view()
	if strings.Index(view, "DELETE") > strings.Index(view, "GET api.resend.com/domains") {
		t.Fatalf("newest is not on top:\n%s", view)
	}
}

// TestAudit_LiveWithoutKeyPress runs the real program: a request made while
// the audit screen is open appears with no key pressed.
func TestAudit_LiveWithoutKeyPress(t *testing.T) {
	v := mustOpenVault(t)
	c := mustCreateCredential(t, v, "Resend", agentkeys.APIKey, nil, agentkeys.Secret{Value: "k"})
	a := mustCreateAgent(t, v, "bot")
	tok := mustAssign(t, v, a, c)
	m := newApp(v, tui.Options{Start: tui.ScreenAudit, PollInterval: 20 * time.Millisecond})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("No requests yet")) },
		teatest.WithDuration(10*time.Second))
	proxied(t, v, tok, "GET", "https://api.resend.com/live-check")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("api.resend.com/live-check")) },
		teatest.WithDuration(10*time.Second))
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// TestAudit_StopsPollingWhenLeft checks the poll runs only while the audit
// screen is shown.
func TestAudit_StopsPollingWhenLeft(t *testing.T) {
	v := mustOpenVault(t)
	cv := &countingVault{Vault: v}
	d := start(t, newApp(cv, tui.Options{}), 100, 30)
	d.keys("3")
	tick := tui.PollNow(d.m)
	d.keys("1")
	before := cv.calls.Load()
	d.send(tick)
	if n := cv.calls.Load() - before; n != 0 {
		t.Fatalf("a tick after leaving the screen made %d vault calls", n)
	}
	_ = context.Background()
}

// pollUntil delivers poll ticks until the view shows every string (5 s at
// most).
func pollUntil(d *driver, want ...string) {
	d.tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.send(tui.PollNow(d.m))
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(d.view(), w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			d.mustSee(want...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
