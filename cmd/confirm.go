package cmd

import (
	"errors"
	"fmt"
	"strings"
)

// errNotConfirmed is a destructive command the person answered "no" to.
var errNotConfirmed = errors.New("not confirmed: nothing was changed")

// confirm asks before a destructive change. With yes it goes ahead; in a
// terminal it asks question (plus the consequences, one per line) and goes
// ahead only on "y" or "yes"; without a terminal it refuses with a usage
// error (exit 2) naming --yes, so a script never hangs and never removes
// something by accident.
func confirm(ios *IOStreams, yes bool, command, question string, consequences ...string) error {
	if yes {
		return nil
	}
	if !ios.IsStdinTTY() {
		return errInvalid("%s needs --yes when it cannot ask (stdin is not a terminal); nothing was changed", command)
	}
	for _, c := range consequences {
		fmt.Fprintln(ios.ErrOut, c)
	}
	answer, err := ios.PromptLine(question + " [y/N] ")
	if err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}
