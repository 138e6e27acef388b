package cmd_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys/cmd"
)

// TestCredentialExpiryFlags: --expires-in and --expires-at set a
// credential's expiry, --no-expiry clears it, list and show print it, and
// bad values are refused with exit 2 and nothing written.
func TestCredentialExpiryFlags(t *testing.T) {
	e := newEnv(t)
	e.init()
	expiry := func(name string) *time.Time {
		t.Helper()
		var out struct {
			Credential struct {
				ExpiresAt *time.Time `json:"expiresAt"`
			} `json:"credential"`
		}
		if err := json.Unmarshal([]byte(e.must("credentials", "show", name, "--json")), &out); err != nil {
			t.Fatal(err)
		}
		return out.Credential.ExpiresAt
	}
	before := time.Now()
	e.must("credentials", "add", "--name", "Trial", "--value", "k-1", "--allow-host", "api.example.com", "--expires-in", "90d")
	got := expiry("Trial")
	if got == nil || got.Before(before.Add(90*24*time.Hour-time.Minute)) || got.After(time.Now().Add(90*24*time.Hour)) {
		t.Fatalf("expiresAt after --expires-in 90d = %v", got)
	}
	if list := e.must("credentials", "list"); !strings.Contains(list, got.UTC().Format(time.RFC3339)) {
		t.Errorf("piped list does not show the expiry: %q", list)
	}
	if show := e.must("credentials", "show", "Trial"); !strings.Contains(show, "Expires:        "+got.UTC().Format(time.RFC3339)) {
		t.Errorf("show does not show the expiry: %q", show)
	}

	e.must("credentials", "update", "Trial", "--expires-at", "2031-06-01T00:00:00Z")
	if got := expiry("Trial"); got == nil || !got.Equal(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("expiresAt after --expires-at = %v", got)
	}
	e.must("credentials", "update", "Trial", "--expires-in", "12h")
	if got := expiry("Trial"); got == nil || got.Sub(time.Now()) > 12*time.Hour || got.Sub(time.Now()) < 11*time.Hour {
		t.Fatalf("expiresAt after --expires-in 12h = %v", got)
	}
	if out := e.must("credentials", "update", "Trial", "--no-expiry"); !strings.Contains(out, "never expires") {
		t.Errorf("update --no-expiry said %q", out)
	}
	if got := expiry("Trial"); got != nil {
		t.Fatalf("expiresAt after --no-expiry = %v", got)
	}

	state := e.state()
	for _, args := range [][]string{
		{"credentials", "add", "--name", "Bad", "--value", "v", "--allow-host", "a.example.com", "--expires-in", "soon"},
		{"credentials", "add", "--name", "Bad", "--value", "v", "--allow-host", "a.example.com", "--expires-in", "-5d"},
		{"credentials", "add", "--name", "Bad", "--value", "v", "--allow-host", "a.example.com", "--expires-at", "2020-01-01T00:00:00Z"},
		{"credentials", "add", "--name", "Bad", "--value", "v", "--allow-host", "a.example.com", "--expires-at", "June"},
		{"credentials", "update", "Trial", "--expires-at", "2031-06-01T00:00:00Z", "--expires-in", "1d"},
		{"credentials", "update", "Trial", "--expires-in", "0h"},
	} {
		r := e.run(args...)
		if r.code != cmd.ExitUsage || !strings.Contains(r.stderr, "expir") {
			t.Errorf("%q: exit %d, stderr %q; want %d naming the expiry", args, r.code, r.stderr, cmd.ExitUsage)
		}
	}
	if after := e.state(); after != state {
		t.Fatalf("a refused command changed the vault:\n%s\n%s", state, after)
	}
}
