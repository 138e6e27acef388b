package cmd_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/cmd"
)

func TestIOStreams_Color(t *testing.T) {
	ios, _, _, _ := cmd.Test()
	if ios.ColorEnabled() || ios.IsStdoutTTY() || ios.IsStdinTTY() {
		t.Error("test streams claim a terminal or colour")
	}
	ios.SetColor(true)
	if ios.ColorEnabled() {
		t.Error("colour without a terminal")
	}
	ios.SetStdoutTTY(true)
	if !ios.ColorEnabled() || ios.Bold("x") == "x" {
		t.Error("no colour on a terminal")
	}
	ios.SetColor(false) // what NO_COLOR does
	if ios.ColorEnabled() || ios.Bold("x") != "x" {
		t.Error("colour with NO_COLOR")
	}
	t.Setenv("NO_COLOR", "1")
	if cmd.System().ColorEnabled() {
		t.Error("System() ignores NO_COLOR")
	}
}

// A terminal with colour gets ANSI codes; the same command piped gets none.
func TestColor_OnlyOnTerminal(t *testing.T) {
	e := newEnv(t)
	e.init()
	r := e.runWith(func(ios *cmd.IOStreams, _ *bytes.Buffer) { ios.SetStdoutTTY(true); ios.SetColor(true) },
		"credentials", "add", "--name", "Resend", "--value", "re_1")
	if !strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("no colour on a terminal: %q", r.stdout)
	}
	r = e.run("credentials", "add", "--name", "Stripe", "--value", "sk_1")
	if strings.Contains(r.stdout+r.stderr, "\x1b[") {
		t.Errorf("colour when piped: %q", r.stdout)
	}
}

// A command interrupted before it finishes exits 130 with one line.
func TestInterrupted(t *testing.T) {
	e := newEnv(t)
	e.init()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := e.runCtx(ctx, nil, "credentials", "list")
	if r.code != cmd.ExitInterrupted || r.stderr != "error: interrupted\n" {
		t.Errorf("interrupted: %d %q", r.code, r.stderr)
	}
}
