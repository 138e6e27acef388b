package cmd_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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
	// status is the file the pane's shell writes the app's exit status to.
	status string
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

// requireTmux skips the test when tmux is missing, except under CI=true,
// where it fails.
func requireTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed, and CI=true requires this test: apt-get install -y tmux")
		}
		t.Skip("tmux is not installed: skipping the real-terminal test (apt-get install -y tmux)")
	}
}

// startTUIInTmux runs `agentkeys tui` of the built binary over e's vault in
// a private tmux server, in a 100×30 pane named "tui". The pane's shell
// writes the app's exit status to a file (waitExit): tmux itself was seen to
// leave an exited app unreaped for good now and then, so its pane_dead is
// not relied on.
func startTUIInTmux(t *testing.T, e *testEnv) *tmuxSession {
	t.Helper()
	bin := agentkeysBinary(t)
	dir := t.TempDir()
	// The server gets no AGENTKEYS_*, HOME or D-Bus variables from this
	// process: only the temporary vault's, also set on the session (-e).
	s := &tmuxSession{t: t, socket: filepath.Join(dir, "tmux.sock"), env: e.environ(), status: filepath.Join(dir, "exit-status")}
	args := []string{"new-session", "-d", "-s", "tui", "-x", "100", "-y", "30"}
	for k, v := range e.vars {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, "-e", "NO_COLOR=1", "-e", "TERM=xterm-256color",
		shellQuote(bin)+" tui; echo $? > "+shellQuote(s.status)+"; exec sleep 600")
	s.tmux(args...)
	t.Cleanup(func() {
		exec.Command("tmux", "-S", s.socket, "kill-server").Run()
	})
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// appPID returns the process id of the app: the child of the pane's shell.
func (s *tmuxSession) appPID() int {
	s.t.Helper()
	shell := strings.TrimSpace(s.tmux("display-message", "-p", "-t", "tui", "#{pane_pid}"))
	out, err := exec.Command("pgrep", "-P", shell).Output()
	if err != nil {
		s.t.Fatalf("pgrep -P %s (the app under the pane's shell): %v", shell, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 1 {
		s.t.Fatalf("the pane's shell has children %q, want just the app", fields)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		s.t.Fatal(err)
	}
	return pid
}

// waitExit waits (tmuxWait at most) until the app in the pane has exited
// and returns its exit status.
func (s *tmuxSession) waitExit() int {
	s.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	for {
		if b, err := os.ReadFile(s.status); err == nil && strings.HasSuffix(string(b), "\n") {
			code, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				s.t.Fatalf("exit status %q", b)
			}
			return code
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the app did not exit; the screen shows:\n%s", s.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTUI_TmuxSignals: SIGINT or SIGTERM sent to a running TUI (from kill or
// a supervisor; ctrl+c typed in the app is a key) ends it, leaves the
// alternate screen, and exits 130 like any interrupted command.
func TestTUI_TmuxSignals(t *testing.T) {
	requireTmux(t)
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			e.init()
			s := startTUIInTmux(t, e)
			s.waitFor("[1 Credentials]", "No credentials yet")
			p, err := os.FindProcess(s.appPID())
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := s.waitExit(); code != cmd.ExitInterrupted {
				t.Errorf("exit status %d after %v, want %d", code, sig, cmd.ExitInterrupted)
			}
			if scr := s.screen(); strings.Contains(scr, "Credentials") {
				t.Errorf("the app's screen is still shown after it exited:\n%s", scr)
			}
		})
	}
}

// TestTUI_Tmux runs the built binary in tmux against a temporary vault,
// adds a credential through the form and assigns it to an agent created in
// the app, then checks with the CLI's --json output that both were written.
// It skips when tmux is missing, except under CI=true, where it fails.
func TestTUI_Tmux(t *testing.T) {
	requireTmux(t)
	e := newEnv(t)
	e.init()
	s := startTUIInTmux(t, e)
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
	// q quits, with status 0.
	s.keys("q")
	if code := s.waitExit(); code != 0 {
		t.Fatalf("exit status %d after q", code)
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
