package cmd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IOStreams is where every command reads and writes. It knows whether stdin
// and stdout are terminals: people get tables, colour and prompts; scripts
// get tab-separated lines or --json and never a prompt.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	noColor   bool

	// PromptSecret shows prompt on ErrOut and reads one line from In without
	// echo. It is only called when stdin is a terminal. Tests replace it.
	PromptSecret func(prompt string) (string, error)
	// PromptLine shows prompt on ErrOut and reads one line from In, echoed
	// (a yes/no answer). It is only called when stdin is a terminal.
	PromptLine func(prompt string) (string, error)

	// width is the terminal's width in columns (0: not a terminal or unknown).
	width int
}

// System returns the process's standard streams. Colour is enabled only when
// stdout is a terminal, NO_COLOR is unset (or empty) and TERM is not "dumb".
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		noColor:   os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb",
	}
	s.PromptSecret = func(prompt string) (string, error) {
		fmt.Fprint(s.ErrOut, prompt)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(s.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read from terminal: %w", err)
		}
		return string(b), nil
	}
	s.PromptLine = func(prompt string) (string, error) {
		fmt.Fprint(s.ErrOut, prompt)
		return readLine(s.In)
	}
	if s.stdoutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			s.width = w
		}
	}
	return s
}

// readLine reads one line (without its end) from r, byte by byte so nothing
// after it is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(buf[0])
		}
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", fmt.Errorf("read from terminal: %w", err)
		}
	}
}

// Width is the terminal's width in columns, or 0 when stdout is not a
// terminal (or its size is unknown): tables are then not fitted.
func (s *IOStreams) Width() int {
	if !s.stdoutTTY {
		return 0
	}
	return s.width
}

// SetWidth sets the terminal width Width reports (tests, COLUMNS).
func (s *IOStreams) SetWidth(w int) { s.width = w }

// Test returns streams backed by buffers, with no terminal anywhere: what a
// script sees. Use SetStdinTTY / SetStdoutTTY to pretend otherwise.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	s = &IOStreams{In: in, Out: out, ErrOut: errOut, noColor: true}
	s.PromptSecret = func(string) (string, error) {
		return "", errors.New("no terminal to prompt on")
	}
	s.PromptLine = s.PromptSecret
	return s, in, out, errOut
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// SetStdinTTY overrides terminal detection for stdin (tests).
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY overrides terminal detection for stdout (tests).
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetColor forces colour on or off (tests).
func (s *IOStreams) SetColor(v bool) { s.noColor = !v }

// ColorEnabled reports whether output may carry ANSI colour: stdout is a
// terminal and NO_COLOR is not set.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// Bold returns s in bold when colour is enabled.
func (s *IOStreams) Bold(t string) string { return s.style("1", t) }

// Yellow returns t in yellow when colour is enabled (warnings).
func (s *IOStreams) Yellow(t string) string { return s.style("33", t) }

// Green returns t in green when colour is enabled (success).
func (s *IOStreams) Green(t string) string { return s.style("32", t) }

// Red returns t in red when colour is enabled.
func (s *IOStreams) Red(t string) string { return s.style("31", t) }

func (s *IOStreams) style(code, t string) string {
	if !s.ColorEnabled() {
		return t
	}
	return "\x1b[" + code + "m" + t + "\x1b[0m"
}

// Warnf prints "warning: ..." on stderr.
func (s *IOStreams) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// stderr is usually the same terminal as stdout; colour it only then.
	fmt.Fprintln(s.ErrOut, s.Yellow("warning:")+" "+msg)
}

// readAllLimited reads r up to max bytes; more is an error. It is used for
// secrets and request bodies read from stdin or a file.
func readAllLimited(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, errInvalid("%s is larger than %d bytes", what, max)
	}
	return b, nil
}

// readSecretLine reads a secret value from r (stdin): everything, with one
// trailing newline (LF or CRLF) removed, as `echo key | agentkeys ...` adds it.
func readSecretLine(r io.Reader) (string, error) {
	b, err := readAllLimited(bufio.NewReader(r), 1<<20, "value from stdin")
	if err != nil {
		return "", err
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}
