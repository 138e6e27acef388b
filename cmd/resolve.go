package cmd

import (
	"context"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Commands take a credential or agent by id, by name, or by a unique prefix
// of its id (what tables show when they shorten ids to fit the terminal).

// findCredential is Vault.FindCredential, plus a unique id prefix
// ("cred_01hx4"). Returns ENOTFOUND, or EINVALID when a prefix matches more
// than one credential.
func findCredential(ctx context.Context, v agentkeys.Vault, ref string) (*agentkeys.Credential, error) {
	c, err := v.FindCredential(ctx, ref)
	if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND || !isIDPrefix(ref, "cred_") {
		return c, err
	}
	creds, lerr := v.ListCredentials(ctx)
	if lerr != nil {
		return nil, err
	}
	var hit *agentkeys.Credential
	for _, x := range creds {
		if strings.HasPrefix(x.ID, strings.ToLower(ref)) {
			if hit != nil {
				return nil, errInvalid("%q is the start of more than one credential id: give more of it, or the name", ref)
			}
			hit = x
		}
	}
	if hit == nil {
		return nil, err
	}
	// The list leaves out what only a lookup fills (header and parameter
	// names).
	return v.FindCredential(ctx, hit.ID)
}

// findAgent is Vault.FindAgent, plus a unique id prefix ("agent_01hx4").
func findAgent(ctx context.Context, v agentkeys.Vault, ref string) (*agentkeys.Agent, error) {
	a, err := v.FindAgent(ctx, ref)
	if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND || !isIDPrefix(ref, "agent_") {
		return a, err
	}
	agents, lerr := v.ListAgents(ctx)
	if lerr != nil {
		return nil, err
	}
	var hit *agentkeys.Agent
	for _, x := range agents {
		if strings.HasPrefix(x.ID, strings.ToLower(ref)) {
			if hit != nil {
				return nil, errInvalid("%q is the start of more than one agent id: give more of it, or the name", ref)
			}
			hit = x
		}
	}
	if hit == nil {
		return nil, err
	}
	return hit, nil
}

// minIDPrefix is how many characters after "cred_" a shortened id keeps at
// least; tables lengthen it until every row's is unique.
const minIDPrefix = 6

func isIDPrefix(ref, prefix string) bool {
	return strings.HasPrefix(strings.ToLower(ref), prefix) && len(ref) >= len(prefix)+minIDPrefix
}

// shortIDs shortens ids to the shortest common length at which each is
// still unique (at least the type prefix plus minIDPrefix characters).
func shortIDs(ids []string) []string {
	if len(ids) == 0 {
		return ids
	}
	maxLen := 0
	for _, id := range ids {
		maxLen = max(maxLen, len(id))
	}
	start := strings.Index(ids[0], "_") + 1 + minIDPrefix
	for n := start; n < maxLen; n++ {
		seen := make(map[string]bool, len(ids))
		unique := true
		for _, id := range ids {
			p := id[:min(n, len(id))]
			if seen[p] {
				unique = false
				break
			}
			seen[p] = true
		}
		if unique {
			out := make([]string, len(ids))
			for i, id := range ids {
				out[i] = id[:min(n, len(id))]
			}
			return out
		}
	}
	return ids
}
