package cmd

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentkeys/agentkeys"
)

// expiryFlags are --expires-at and --expires-in of `credentials add` and
// `credentials update` (which also has --no-expiry).
type expiryFlags struct {
	At    string // RFC 3339
	In    string // 90d, 12h, 30m
	Clear bool   // update only: the credential never expires
}

func (e *expiryFlags) register(fl *pflag.FlagSet, update bool) {
	fl.StringVar(&e.At, "expires-at", "", "when the credential stops working, RFC 3339 (e.g. 2026-06-01T00:00:00Z); the proxy refuses it afterwards")
	fl.StringVar(&e.In, "expires-in", "", "make the credential stop working after this long: days (90d), hours (12h) or minutes (30m)")
	if update {
		fl.BoolVar(&e.Clear, "no-expiry", false, "remove the credential's expiry (it never expires)")
	}
}

func (e *expiryFlags) given() bool { return e.At != "" || e.In != "" || e.Clear }

// parse returns the expiry the flags give at now: nil when none is given, a
// zero time for --no-expiry. Returns a usage error for a malformed or past
// time, or for more than one of the flags.
func (e *expiryFlags) parse(now time.Time) (*time.Time, error) {
	n := 0
	for _, set := range []bool{e.At != "", e.In != "", e.Clear} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, nil
	case n > 1:
		return nil, errInvalid("give only one of --expires-at, --expires-in and --no-expiry")
	case e.Clear:
		return &time.Time{}, nil
	}
	var t time.Time
	if e.At != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, strings.TrimSpace(e.At)); err != nil {
			return nil, errInvalid("--expires-at %q is not an RFC 3339 time: give one such as 2026-06-01T00:00:00Z", e.At)
		}
	} else {
		d, err := parseExpiresIn(e.In)
		if err != nil {
			return nil, err
		}
		t = now.Add(d)
	}
	if !t.After(now) {
		return nil, errInvalid("the expiry %s is not in the future", t.UTC().Format(time.RFC3339))
	}
	if err := agentkeys.CheckExpiry(t); err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}

// parseExpiresIn parses 90d (days) or a positive Go duration (12h, 30m).
func parseExpiresIn(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := errInvalid("--expires-in %q is not a duration: give days (90d), hours (12h) or minutes (30m)", s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// formatExpiry is a credential's expiry for tables: "never", RFC 3339 when
// piped, else "in 5d", "expired" or a date.
func formatExpiry(ios *IOStreams, now time.Time, t *time.Time) string {
	if t == nil {
		if !ios.IsStdoutTTY() {
			return "-"
		}
		return "never"
	}
	if !ios.IsStdoutTTY() {
		return t.UTC().Format(time.RFC3339)
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d.Minutes())+1)
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("in %dd", int(d.Hours()/24))
	}
	return t.Local().Format("2006-01-02")
}
