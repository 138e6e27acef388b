package agentkeys

import (
	"context"
	"time"
)

// Agent is an AI tool, bot or script that uses credentials through the proxy.
type Agent struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	CreatedAt   time.Time         `json:"createdAt"`
	Credentials []AgentCredential `json:"credentials"`
}

// AgentCredential is one credential assigned to an agent (a grant, seen from
// the agent). The proxy token is not here: it is shown once, at assignment.
type AgentCredential struct {
	CredentialID   string     `json:"credentialId"`
	CredentialName string     `json:"credentialName"`
	AssignedAt     time.Time  `json:"assignedAt"`
	LastUsedAt     *time.Time `json:"lastUsedAt,omitempty"`
}

// Grant is an agent × credential assignment as returned once by
// AssignCredential: ProxyToken is the only copy of the token there will ever
// be (the store keeps its hash).
type Grant struct {
	ProxyToken   string    `json:"proxyToken"`
	AgentID      string    `json:"agentId"`
	CredentialID string    `json:"credentialId"`
	CreatedAt    time.Time `json:"createdAt"`
	// ExpiresAt, when set, is when the token stops working: the proxy
	// refuses it from then on as it refuses a revoked one (401, audited).
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// CheckGrantExpiry validates the expiry asked for a new grant: zero means
// none; otherwise it must be after now. Returns EINVALID.
func CheckGrantExpiry(expiresAt, now time.Time) error {
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		return Errorf(EINVALID, "the expiry time must be in the future (got %s)", expiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// GrantExpired reports whether a grant expiring at expiresAt (zero: never)
// has expired at now.
func GrantExpired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// AgentService is the part of the Vault that manages agents and grants.
type AgentService interface {
	// ListAgents returns every agent with its assigned credentials, ordered
	// by name.
	ListAgents(ctx context.Context) ([]*Agent, error)
	// FindAgent returns the agent whose id is ref, or else whose name equals
	// ref case-insensitively. Returns ENOTFOUND otherwise.
	FindAgent(ctx context.Context, ref string) (*Agent, error)
	// CreateAgent creates an agent. Returns EINVALID for a bad name and
	// ECONFLICT when the name is taken (case-insensitively).
	CreateAgent(ctx context.Context, name string) (*Agent, error)
	// DeleteAgent deletes the agent and its grants: their tokens stop working
	// on the next request. Returns ENOTFOUND.
	DeleteAgent(ctx context.Context, id string) error
	// AssignCredential gives the agent a new proxy token for the credential.
	// If the pair was already assigned, the old token stops working and the
	// new one replaces it. Returns ENOTFOUND for an unknown agent or
	// credential.
	AssignCredential(ctx context.Context, agentID, credentialID string) (*Grant, error)
	// AssignCredentialUntil is AssignCredential for a token that stops
	// working at expiresAt (zero: never). Returns EINVALID when expiresAt is
	// not in the future.
	AssignCredentialUntil(ctx context.Context, agentID, credentialID string, expiresAt time.Time) (*Grant, error)
	// RevokeCredential removes the assignment: its token stops working on the
	// next request, also in a proxy running in another process. Returns
	// ENOTFOUND when the agent, the credential or the assignment does not exist.
	RevokeCredential(ctx context.Context, agentID, credentialID string) error
}
