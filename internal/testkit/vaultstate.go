package testkit

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/localvault"
)

// VaultState is a local vault's content in a comparable form, for tests
// that check two vaults (two devices, a restore) hold the same: credentials
// with their ids, types, hosts and values, agents with their assignments.
// It holds secrets: compare it, never print it.
func VaultState(t testing.TB, v *localvault.Vault) string {
	t.Helper()
	ctx := t.Context()
	cs, err := v.ListCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cs {
		r, err := v.RouteByName(ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := v.OpenSecret(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("cred %s %s %s %v = %s", c.ID, c.Name, c.Type, c.AllowedHosts, sec.Value))
	}
	as, err := v.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		var cn []string
		for _, c := range a.Credentials {
			cn = append(cn, c.CredentialName)
		}
		lines = append(lines, fmt.Sprintf("agent %s %s %v", a.ID, a.Name, cn))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
