package vaulttest

import (
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// testCredentialExpiry: a credential's expiresAt is stored, listed, set,
// cleared and honoured by the proxy (CREDENTIAL_EXPIRED, nothing sent).
func (s *suite) testCredentialExpiry(t *testing.T) {
	at := time.Date(2031, 6, 1, 12, 30, 0, 123456000, time.UTC)
	wantExpiry := func(t *testing.T, c *agentkeys.Credential, want *time.Time) {
		t.Helper()
		switch {
		case want == nil && c.ExpiresAt != nil:
			t.Fatalf("%s: expiresAt = %s, want none", c.Name, c.ExpiresAt)
		case want != nil && (c.ExpiresAt == nil || !c.ExpiresAt.Equal(*want)):
			t.Fatalf("%s: expiresAt = %v, want %s", c.Name, c.ExpiresAt, want)
		}
	}
	t.Run("CreateAndRead", func(t *testing.T) {
		v := s.vault(t)
		in := apiKey("Expiring", "v")
		in.ExpiresAt = &at
		c := mustCreateCredential(t, v, in)
		wantExpiry(t, c, &at)
		got, err := v.FindCredential(t.Context(), c.ID)
		mustNoErr(t, err, "FindCredential")
		wantExpiry(t, got, &at)
		list, err := v.ListCredentials(t.Context())
		mustNoErr(t, err, "ListCredentials")
		wantExpiry(t, list[0], &at)
		plain := mustCreateCredential(t, v, apiKey("Plain", "v"))
		wantExpiry(t, plain, nil)
	})
	t.Run("UpdateSetsKeepsAndClears", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("main", "v"))
		got, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{ExpiresAt: &at})
		mustNoErr(t, err, "UpdateCredential set")
		wantExpiry(t, got, &at)
		name := "renamed"
		got, err = v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{Name: &name})
		mustNoErr(t, err, "UpdateCredential rename")
		wantExpiry(t, got, &at)
		got, err = v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{ExpiresAt: &time.Time{}})
		mustNoErr(t, err, "UpdateCredential clear")
		wantExpiry(t, got, nil)
		stored, err := v.FindCredential(t.Context(), c.ID)
		mustNoErr(t, err, "FindCredential")
		wantExpiry(t, stored, nil)
	})
	t.Run("ErrOutOfRange", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("main", "v"))
		bad := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		_, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{ExpiresAt: &bad})
		wantCode(t, err, agentkeys.EINVALID)
		in := apiKey("other", "v")
		in.ExpiresAt = &bad
		_, err = v.CreateCredential(t.Context(), in)
		wantCode(t, err, agentkeys.EINVALID)
		if n := len(credentialNames(t, v)); n != 1 {
			t.Fatalf("%d credentials after refusals, want 1", n)
		}
		stored, err := v.FindCredential(t.Context(), c.ID)
		mustNoErr(t, err, "FindCredential")
		wantExpiry(t, stored, nil)
	})
	t.Run("ProxyRefusesExpired", func(t *testing.T) {
		f := s.fixture(t, "k-expiring")
		soon := time.Now().Add(time.Second)
		_, err := f.v.UpdateCredential(t.Context(), f.cred.ID, &agentkeys.CredentialUpdate{ExpiresAt: &soon})
		mustNoErr(t, err, "UpdateCredential")
		mustSend(t, f.v, f.get("/before")) // warm any cache
		time.Sleep(time.Until(soon) + 10*time.Millisecond)
		_, _, err = send(t, f.v, f.get("/after"))
		wantCode(t, err, agentkeys.ECREDEXPIRED)
		_, _, err = send(t, f.v, &agentkeys.ProxyRequest{CredentialName: f.cred.Name, URL: f.up.url("/by-name")})
		wantCode(t, err, agentkeys.ECREDEXPIRED)
		if n := len(f.up.requests()); n != 1 {
			t.Fatalf("upstream got %d requests, want 1 (before the expiry)", n)
		}
		// Audited as denied, naming the credential.
		evs := listAudit(t, f.v, agentkeys.AuditFilter{CredentialID: f.cred.ID})
		denied := 0
		for _, ev := range evs {
			if ev.Decision == agentkeys.DecisionDenied {
				denied++
			}
		}
		if denied != 2 {
			t.Fatalf("audit has %d denied rows for the credential, want 2: %+v", denied, evs)
		}
		// A new expiry in the future lets it work again.
		later := time.Now().Add(time.Hour)
		_, err = f.v.UpdateCredential(t.Context(), f.cred.ID, &agentkeys.CredentialUpdate{ExpiresAt: &later})
		mustNoErr(t, err, "UpdateCredential")
		mustSend(t, f.v, f.get("/renewed"))
	})
}
