package vaulttest

import (
	"testing"

	"github.com/agentkeys/agentkeys"
)

// testSameRefusals checks that every Vault refuses the same calls with the
// same words, not only the same codes: the stores share one rule set
// (internal/storesql), and a person reading an error should not be able to
// tell whether the vault is local or on a server.
func (s *suite) testSameRefusals(t *testing.T) {
	v := s.vault(t)
	c := mustCreateCredential(t, v, apiKey("Shared", "v", "api.example.com"))
	a := mustCreateAgent(t, v, "bot")
	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"FindCredential", func() error { _, err := v.FindCredential(t.Context(), " nope "); return err },
			agentkeys.ENOTFOUND, "no credential with id or name \"nope\": see `agentkeys credentials list`"},
		{"DeleteCredential", func() error { return v.DeleteCredential(t.Context(), "cred_nope") },
			agentkeys.ENOTFOUND, "no credential with id \"cred_nope\": see `agentkeys credentials list`"},
		{"UpdateCredential", func() error {
			_, err := v.UpdateCredential(t.Context(), "cred_nope", &agentkeys.CredentialUpdate{})
			return err
		}, agentkeys.ENOTFOUND, "no credential with id \"cred_nope\": see `agentkeys credentials list`"},
		{"FindAgent", func() error { _, err := v.FindAgent(t.Context(), "ghost"); return err },
			agentkeys.ENOTFOUND, "no agent with id or name \"ghost\": see `agentkeys agents list`"},
		{"DeleteAgent", func() error { return v.DeleteAgent(t.Context(), "agent_nope") },
			agentkeys.ENOTFOUND, "no agent with id \"agent_nope\": see `agentkeys agents list`"},
		{"AssignUnknownAgent", func() error { _, err := v.AssignCredential(t.Context(), "agent_nope", c.ID); return err },
			agentkeys.ENOTFOUND, "no agent with id \"agent_nope\": see `agentkeys agents list`"},
		{"AssignUnknownCredential", func() error { _, err := v.AssignCredential(t.Context(), a.ID, "cred_nope"); return err },
			agentkeys.ENOTFOUND, "no credential with id \"cred_nope\": see `agentkeys credentials list`"},
		{"RevokeUnassigned", func() error { return v.RevokeCredential(t.Context(), a.ID, c.ID) },
			agentkeys.ENOTFOUND, "credential \"Shared\" is not assigned to agent " + a.ID},
		{"CreateDuplicateCredential", func() error {
			_, err := v.CreateCredential(t.Context(), apiKey("SHARED", "v", "api.example.com"))
			return err
		},
			agentkeys.ECONFLICT, "a credential named \"SHARED\" already exists (names are unique, ignoring case): choose another name or remove the old one"},
		{"CreateDuplicateAgent", func() error { _, err := v.CreateAgent(t.Context(), "Bot"); return err },
			agentkeys.ECONFLICT, "an agent named \"Bot\" already exists (names are unique, ignoring case): choose another name"},
		{"PublicSuffixWildcard", func() error { _, err := v.CreateCredential(t.Context(), apiKey("Wide", "v", "*.co.uk")); return err },
			agentkeys.EINVALID, "allowed host \"*.co.uk\" would match every site anyone can register under the public suffix \"co.uk\": name your own host instead (for example acme.co.uk)"},
		{"ProxyUnknownName", func() error {
			resp, err := v.Proxy(t.Context(), &agentkeys.ProxyRequest{CredentialName: "Nope", URL: "https://api.example.com/"})
			if resp != nil {
				resp.Body.Close()
			}
			return err
		}, agentkeys.ENOTFOUND, "no credential named \"Nope\" in this workspace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, err, tc.code)
			if got := agentkeys.ErrorMessage(err); got != tc.msg {
				t.Fatalf("message = %q\nwant      %q", got, tc.msg)
			}
		})
	}
	wantUnchanged(t, v, []string{"Shared"}, []string{"bot"})
}
