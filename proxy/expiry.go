package proxy

import (
	"time"

	"github.com/agentkeys/agentkeys"
)

// errExpired is the refusal of a token whose grant expired at t: 401, as a
// revoked token (the audit row names the agent and credential).
func errExpired(t time.Time) error {
	return agentkeys.Errorf(agentkeys.EUNAUTHORIZED,
		"this proxy token expired at %s: ask for a new one (agentkeys agents assign)", t.UTC().Format(time.RFC3339))
}
