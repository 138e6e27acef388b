package vaulttest

import (
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

const unknownAgent = "agent_00000000000000000000000000"
const unknownCredential = "cred_00000000000000000000000000"

func (s *suite) testCreateAgent(t *testing.T) {
	t.Run("Creates", func(t *testing.T) {
		v := s.vault(t)
		a := mustCreateAgent(t, v, "  data-pipeline ")
		if !strings.HasPrefix(a.ID, "agent_") || a.Name != "data-pipeline" || a.CreatedAt.IsZero() || len(a.Credentials) != 0 {
			t.Fatalf("got %+v", a)
		}
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if got.ID != a.ID || got.Name != a.Name || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Fatalf("stored %+v, created %+v", got, a)
		}
	})
	t.Run("ErrDuplicateName", func(t *testing.T) {
		v := s.vault(t)
		mustCreateAgent(t, v, "Bot")
		for _, n := range []string{"Bot", "bot", "BOT", " bot "} {
			_, err := v.CreateAgent(t.Context(), n)
			wantCode(t, err, agentkeys.ECONFLICT)
		}
		wantUnchanged(t, v, nil, []string{"Bot"})
	})
	t.Run("SameNameAsCredential", func(t *testing.T) {
		v := s.vault(t)
		mustCreateCredential(t, v, apiKey("shared", "v"))
		mustCreateAgent(t, v, "shared")
	})
	for _, tc := range []struct{ name, in string }{
		{"ErrEmptyName", ""}, {"ErrBlankName", "   "}, {"ErrLongName", strings.Repeat("a", 101)}, {"ErrControlChar", "a\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := s.vault(t)
			mustCreateAgent(t, v, "existing")
			_, err := v.CreateAgent(t.Context(), tc.in)
			wantCode(t, err, agentkeys.EINVALID)
			wantUnchanged(t, v, nil, []string{"existing"})
		})
	}
}

func (s *suite) testListAgents(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		v := s.vault(t)
		if n := len(agentNames(t, v)); n != 0 {
			t.Fatalf("new vault lists %d agents", n)
		}
	})
	t.Run("WithCredentials", func(t *testing.T) {
		v := s.vault(t)
		cb := mustCreateCredential(t, v, apiKey("bravo", "v"))
		ca := mustCreateCredential(t, v, apiKey("alpha", "v"))
		a2 := mustCreateAgent(t, v, "zeta")
		a1 := mustCreateAgent(t, v, "eta")
		mustAssign(t, v, a1.ID, cb.ID)
		mustAssign(t, v, a1.ID, ca.ID)
		as, err := v.ListAgents(t.Context())
		mustNoErr(t, err, "ListAgents")
		if len(as) != 2 || as[0].ID != a1.ID || as[1].ID != a2.ID {
			t.Fatalf("agents = %+v", as)
		}
		got := as[0].Credentials
		if len(got) != 2 || got[0].CredentialID != ca.ID || got[0].CredentialName != "alpha" || got[1].CredentialID != cb.ID {
			t.Fatalf("eta's credentials = %+v, want alpha, bravo", got)
		}
		for _, c := range got {
			if c.AssignedAt.IsZero() || c.LastUsedAt != nil {
				t.Fatalf("assignment %+v: want assignedAt set and no lastUsedAt", c)
			}
		}
		if len(as[1].Credentials) != 0 {
			t.Fatalf("zeta's credentials = %+v", as[1].Credentials)
		}
	})
}

func (s *suite) testFindAgent(t *testing.T) {
	v := s.vault(t)
	a := mustCreateAgent(t, v, "Claude Code")
	mustCreateAgent(t, v, "other")
	for _, ref := range []string{a.ID, "Claude Code", "claude code", "CLAUDE CODE"} {
		t.Run("ByRef/"+ref, func(t *testing.T) {
			got, err := v.FindAgent(t.Context(), ref)
			mustNoErr(t, err, "FindAgent")
			if got.ID != a.ID {
				t.Fatalf("found %s, want %s", got.ID, a.ID)
			}
		})
	}
	for _, ref := range []string{"nope", unknownAgent, "Claude", ""} {
		t.Run("ErrNotFound/"+ref, func(t *testing.T) {
			_, err := v.FindAgent(t.Context(), ref)
			wantCode(t, err, agentkeys.ENOTFOUND)
		})
	}
}

func (s *suite) testDeleteAgent(t *testing.T) {
	t.Run("Deletes", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "gone")
		mustCreateAgent(t, v, "kept")
		mustAssign(t, v, a.ID, c.ID)
		mustNoErr(t, v.DeleteAgent(t.Context(), a.ID), "DeleteAgent")
		_, err := v.FindAgent(t.Context(), a.ID)
		wantCode(t, err, agentkeys.ENOTFOUND)
		wantUnchanged(t, v, []string{"cred"}, []string{"kept"})
		// The credential stays, and the agent's name is free again.
		mustCreateAgent(t, v, "Gone")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		v := s.vault(t)
		mustCreateAgent(t, v, "kept")
		wantCode(t, v.DeleteAgent(t.Context(), unknownAgent), agentkeys.ENOTFOUND)
		wantCode(t, v.DeleteAgent(t.Context(), ""), agentkeys.ENOTFOUND)
		wantUnchanged(t, v, nil, []string{"kept"})
	})
}

func (s *suite) testAssignCredential(t *testing.T) {
	t.Run("Assigns", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "bot")
		g := mustAssign(t, v, a.ID, c.ID)
		if !agentkeys.IsProxyToken(g.ProxyToken) || len(g.ProxyToken) < len("pxr_")+43 {
			t.Fatalf("proxy token %q is not a pxr_ token with 256 bits", g.ProxyToken)
		}
		if g.AgentID != a.ID || g.CredentialID != c.ID || g.CreatedAt.IsZero() {
			t.Fatalf("grant = %+v", g)
		}
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if len(got.Credentials) != 1 || got.Credentials[0].CredentialID != c.ID || got.Credentials[0].CredentialName != "cred" {
			t.Fatalf("agent credentials = %+v", got.Credentials)
		}
		wantNoSecret(t, "agent", got, g.ProxyToken)
		as, err := v.ListAgents(t.Context())
		mustNoErr(t, err, "ListAgents")
		wantNoSecret(t, "agent list", as, g.ProxyToken)
	})
	t.Run("TokensDiffer", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "a")
		b := mustCreateAgent(t, v, "b")
		if mustAssign(t, v, a.ID, c.ID).ProxyToken == mustAssign(t, v, b.ID, c.ID).ProxyToken {
			t.Fatal("two grants got the same token")
		}
	})
	t.Run("TwiceRotatesToken", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "bot")
		g1 := mustAssign(t, v, a.ID, c.ID)
		g2 := mustAssign(t, v, a.ID, c.ID)
		if g1.ProxyToken == g2.ProxyToken {
			t.Fatal("assigning again returned the same token")
		}
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if len(got.Credentials) != 1 {
			t.Fatalf("agent lists the credential %d times", len(got.Credentials))
		}
		// That the old token stops working is checked in Proxy/ReassignedOldToken.
	})
	t.Run("UntilSetsExpiresAt", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "bot")
		want := time.Now().Add(time.Hour)
		g, err := v.AssignCredentialUntil(t.Context(), a.ID, c.ID, want)
		mustNoErr(t, err, "AssignCredentialUntil")
		if g.ExpiresAt == nil || g.ExpiresAt.Sub(want).Abs() > time.Millisecond || !agentkeys.IsProxyToken(g.ProxyToken) {
			t.Fatalf("grant = %+v, want ExpiresAt %s", g, want)
		}
		if g2 := mustAssign(t, v, a.ID, c.ID); g2.ExpiresAt != nil {
			t.Fatalf("AssignCredential gave an expiry: %s", g2.ExpiresAt)
		}
	})
	t.Run("ErrUntilPast", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		a := mustCreateAgent(t, v, "bot")
		_, err := v.AssignCredentialUntil(t.Context(), a.ID, c.ID, time.Now().Add(-time.Minute))
		wantCode(t, err, agentkeys.EINVALID)
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if len(got.Credentials) != 0 {
			t.Fatalf("refused assignment was stored: %+v", got.Credentials)
		}
	})
	t.Run("ErrUnknownAgent", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("cred", "v"))
		_, err := v.AssignCredential(t.Context(), unknownAgent, c.ID)
		wantCode(t, err, agentkeys.ENOTFOUND)
	})
	t.Run("ErrUnknownCredential", func(t *testing.T) {
		v := s.vault(t)
		a := mustCreateAgent(t, v, "bot")
		_, err := v.AssignCredential(t.Context(), a.ID, unknownCredential)
		wantCode(t, err, agentkeys.ENOTFOUND)
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if len(got.Credentials) != 0 {
			t.Fatalf("refused assignment was stored: %+v", got.Credentials)
		}
	})
}

func (s *suite) testRevokeCredential(t *testing.T) {
	setup := func(t *testing.T) (agentkeys.Vault, *agentkeys.Agent, *agentkeys.Credential, *agentkeys.Credential) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("assigned", "v"))
		other := mustCreateCredential(t, v, apiKey("unassigned", "v"))
		a := mustCreateAgent(t, v, "bot")
		mustAssign(t, v, a.ID, c.ID)
		return v, a, c, other
	}
	assigned := func(t *testing.T, v agentkeys.Vault, agentID string) int {
		got, err := v.FindAgent(t.Context(), agentID)
		mustNoErr(t, err, "FindAgent")
		return len(got.Credentials)
	}
	t.Run("Revokes", func(t *testing.T) {
		v, a, c, _ := setup(t)
		mustNoErr(t, v.RevokeCredential(t.Context(), a.ID, c.ID), "RevokeCredential")
		if n := assigned(t, v, a.ID); n != 0 {
			t.Fatalf("agent still has %d credentials", n)
		}
		// Both stay; only the assignment goes.
		wantUnchanged(t, v, []string{"assigned", "unassigned"}, []string{"bot"})
		wantCode(t, v.RevokeCredential(t.Context(), a.ID, c.ID), agentkeys.ENOTFOUND)
	})
	t.Run("ErrNotAssigned", func(t *testing.T) {
		v, a, _, other := setup(t)
		wantCode(t, v.RevokeCredential(t.Context(), a.ID, other.ID), agentkeys.ENOTFOUND)
		if n := assigned(t, v, a.ID); n != 1 {
			t.Fatalf("agent has %d credentials, want 1", n)
		}
	})
	t.Run("ErrUnknownAgent", func(t *testing.T) {
		v, a, c, _ := setup(t)
		wantCode(t, v.RevokeCredential(t.Context(), unknownAgent, c.ID), agentkeys.ENOTFOUND)
		if n := assigned(t, v, a.ID); n != 1 {
			t.Fatalf("agent has %d credentials, want 1", n)
		}
	})
	t.Run("ErrUnknownCredential", func(t *testing.T) {
		v, a, _, _ := setup(t)
		wantCode(t, v.RevokeCredential(t.Context(), a.ID, unknownCredential), agentkeys.ENOTFOUND)
		if n := assigned(t, v, a.ID); n != 1 {
			t.Fatalf("agent has %d credentials, want 1", n)
		}
	})
}

func (s *suite) testStatus(t *testing.T) {
	v := s.vault(t)
	st, err := v.Status(t.Context())
	mustNoErr(t, err, "Status")
	if st.ID == "" || st.Plan == "" || st.Location == "" || (st.Mode != agentkeys.ModeLocal && st.Mode != agentkeys.ModeRemote) {
		t.Fatalf("status = %+v", st)
	}
	if st.Usage.Credentials != 0 || st.Usage.Agents != 0 || st.Usage.RequestsThisMonth != 0 {
		t.Fatalf("new vault usage = %+v", st.Usage)
	}
	c := mustCreateCredential(t, v, apiKey("a", "v"))
	mustCreateCredential(t, v, apiKey("b", "v"))
	mustCreateAgent(t, v, "bot")
	st, err = v.Status(t.Context())
	mustNoErr(t, err, "Status")
	if st.Usage.Credentials != 2 || st.Usage.Agents != 1 {
		t.Fatalf("usage = %+v, want 2 credentials, 1 agent", st.Usage)
	}
	mustNoErr(t, v.DeleteCredential(t.Context(), c.ID), "DeleteCredential")
	st, err = v.Status(t.Context())
	mustNoErr(t, err, "Status")
	if st.Usage.Credentials != 1 {
		t.Fatalf("usage after delete = %+v", st.Usage)
	}
	// RequestsThisMonth is checked in Proxy/CountsRequests.
}
