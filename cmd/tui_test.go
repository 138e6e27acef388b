package cmd_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

// TestTUI_NeedsATerminal: `agentkeys tui` without a terminal refuses with a
// usage error and writes nothing; plain `agentkeys` prints help.
func TestTUI_NeedsATerminal(t *testing.T) {
	e := newEnv(t)
	e.init()
	r := e.run("tui")
	if r.code != 2 || !strings.Contains(r.stderr, "needs a terminal") {
		t.Fatalf("tui without a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run()
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Fatalf("plain agentkeys without a terminal: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestTUI_NoVault: in a terminal with no vault, the error says to run init
// (before any full-screen output).
func TestTUI_NoVault(t *testing.T) {
	e := newEnv(t)
	r := e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) {
		ios.SetStdinTTY(true)
		ios.SetStdoutTTY(true)
	}, "tui")
	if r.code == 0 || !strings.Contains(r.stderr, "agentkeys init") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// tmuxSession drives the built binary in a real terminal: a private tmux
// server (its own socket, no user config) running one pane.
type tmuxSession struct {
	t      *testing.T
	socket string
	env    []string // the tmux server's environment: the test's, scrubbed
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	c := exec.Command("tmux", append([]string{"-S", s.socket, "-f", "/dev/null"}, args...)...)
	c.Env = s.env
	out, err := c.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keys sends tmux key names (Enter, Tab, Escape, …).
func (s *tmuxSession) keys(names ...string) {
	s.tmux(append([]string{"send-keys", "-t", "tui"}, names...)...)
}

// typeText sends text literally.
func (s *tmuxSession) typeText(text string) { s.tmux("send-keys", "-t", "tui", "-l", text) }

func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-p", "-t", "tui") }

// tmuxWait bounds each wait for the screen. It is generous: on a loaded
// machine the binary can take seconds to answer a key; a wait ends as soon
// as the screen shows what it waits for.
const tmuxWait = 90 * time.Second

// waitFor polls the pane until it shows every string (tmuxWait at most) and
// returns the screen.
func (s *tmuxSession) waitFor(want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	for {
		scr := s.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(scr, w)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %q; it shows:\n%s", want, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTUI_Tmux runs the built binary in tmux against a temporary vault,
// adds a credential through the form and assigns it to an agent created in
// the app, then checks with the CLI's --json output that both were written.
// It skips when tmux is missing, except under CI=true, where it fails.
func TestTUI_Tmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed, and CI=true requires this test: apt-get install -y tmux")
		}
		t.Skip("tmux is not installed: skipping the real-terminal test (apt-get install -y tmux)")
	}
	bin := agentkeysBinary(t)
	e := newEnv(t)
	e.init()
	// The server gets no AGENTKEYS_*, HOME or D-Bus variables from this
	// process: only the temporary vault's, also set on the session (-e).
	s := &tmuxSession{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock"), env: e.environ()}
	args := []string{"new-session", "-d", "-s", "tui", "-x", "100", "-y", "30"}
	for k, v := range e.vars {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, "-e", "NO_COLOR=1", "-e", "TERM=xterm-256color", bin+" tui")
	s.tmux(args...)
	t.Cleanup(func() {
		exec.Command("tmux", "-S", s.socket, "kill-server").Run()
	})
	const canary = "re_tmux_CANARY_51f0"

	s.waitFor("[1 Credentials]", "No credentials yet")
	// Add: name, type (API_KEY), service, API key, allowed hosts (prefilled
	// from the name), enter on the last field saves.
	s.keys("n")
	s.waitFor("Add a credential")
	s.typeText("Resend Production")
	s.keys("Tab", "Tab", "Tab")
	s.typeText(canary)
	s.waitFor("•••••", "api.resend.com")
	s.keys("Tab", "Enter")
	scr := s.waitFor("Added Resend Production", "api.resend.com")
	if strings.Contains(scr, canary) {
		t.Fatalf("the secret is on screen:\n%s", scr)
	}

	// Agents: create one, assign the credential, see the token once.
	s.keys("2")
	s.waitFor("[2 Agents]", "No agents yet")
	s.keys("n")
	s.waitFor("New agent name")
	s.typeText("support-bot")
	s.keys("Enter")
	s.waitFor("Created agent support-bot")
	s.keys("a")
	s.waitFor("Assign a credential to support-bot", "Resend Production")
	s.keys("Enter")
	scr = s.waitFor("New proxy token for support-bot", "will not be shown again")
	token := regexp.MustCompile(`pxr_[0-9A-Za-z]+`).FindString(scr)
	if token == "" || strings.Contains(scr, canary) {
		t.Fatalf("token box:\n%s", scr)
	}
	s.keys("Enter")
	scr = s.waitFor("Token closed", "Resend Production")
	if strings.Contains(scr, token) {
		t.Fatalf("token still on screen after closing:\n%s", scr)
	}
	// q quits: the app's process ends, and with it the pane and the tmux
	// server (list-panes then fails), or the pane shows as dead.
	s.keys("q")
	deadline := time.Now().Add(tmuxWait)
	for {
		c := exec.Command("tmux", "-S", s.socket, "-f", "/dev/null", "list-panes", "-t", "tui", "-F", "#{pane_dead}")
		c.Env = s.env
		out, err := c.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("q did not quit the app; the screen shows:\n%s", s.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The CLI sees both writes.
	var creds struct {
		Credentials []*agentkeys.Credential `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(e.must("credentials", "list", "--json")), &creds); err != nil {
		t.Fatal(err)
	}
	if len(creds.Credentials) != 1 || creds.Credentials[0].Name != "Resend Production" ||
		creds.Credentials[0].Type != agentkeys.APIKey || strings.Join(creds.Credentials[0].AllowedHosts, ",") != "api.resend.com" {
		t.Fatalf("credentials list --json: %+v", creds.Credentials)
	}
	var agents struct {
		Agents []*agentkeys.Agent `json:"agents"`
	}
	if err := json.Unmarshal([]byte(e.must("agents", "list", "--json")), &agents); err != nil {
		t.Fatal(err)
	}
	if len(agents.Agents) != 1 || agents.Agents[0].Name != "support-bot" || len(agents.Agents[0].Credentials) != 1 ||
		agents.Agents[0].Credentials[0].CredentialName != "Resend Production" {
		t.Fatalf("agents list --json: %+v", agents.Agents)
	}
	// The token on screen is the real one: the in-process proxy accepts it
	// (and refuses a host off the allowlist, so nothing leaves the machine).
	r := e.run("proxy", token, "https://not-allowed.example.org/")
	if r.code == 0 || !strings.Contains(r.stderr, "not on this credential's allowed hosts") {
		t.Fatalf("proxy with the token from the screen: exit %d, stderr %q", r.code, r.stderr)
	}
	// A made-up token does not get that far: it is refused as unknown.
	if r := e.run("proxy", "pxr_"+strings.Repeat("A", 43), "https://not-allowed.example.org/"); r.code == 0 || strings.Contains(r.stderr, "allowed hosts") {
		t.Fatalf("a made-up token: exit %d, stderr %q", r.code, r.stderr)
	}
}
