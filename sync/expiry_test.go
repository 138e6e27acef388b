package sync_test

import (
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestSync_Expiry: a credential's expiry and a short-lived token's expiry
// travel with them, so a token minted for one run is not a lasting token on
// another device.
func TestSync_Expiry(t *testing.T) {
	s := newServerTB(t)
	a, b := newVault(t), newVault(t)
	phrase := enable(t, a, s)
	ctx := t.Context()
	credExp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	c, err := a.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Short", Type: agentkeys.APIKey,
		AllowedHosts: []string{"api.short.example"}, Secret: agentkeys.Secret{Value: "sk-expiry-sync"}, ExpiresAt: &credExp})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := a.CreateAgent(ctx, "runner")
	if err != nil {
		t.Fatal(err)
	}
	tokExp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	g, err := a.AssignCredentialUntil(ctx, ag.ID, c.ID, tokExp)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, a, s)
	join(t, b, s, phrase)
	mustSync(t, b, s)

	got, err := b.FindCredential(ctx, "Short")
	if err != nil {
		t.Fatal(err)
	}
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(credExp) {
		t.Fatalf("credential expiry on B = %v, want %v", got.ExpiresAt, credExp)
	}
	route, err := b.Authorize(ctx, g.ProxyToken, "")
	if err != nil {
		t.Fatalf("A's token on B: %v", err)
	}
	if !route.ExpiresAt.Equal(tokExp) {
		t.Fatalf("token expiry on B = %v, want %v", route.ExpiresAt, tokExp)
	}
}
