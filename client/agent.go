package client

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// agentsPath is the REST collection of agents.
const agentsPath = "/api/v1/agents"

// ListAgents implements agentkeys.AgentService: GET /api/v1/agents, each
// agent with its assigned credentials.
func (c *Client) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	var out struct {
		Agents []*agentkeys.Agent `json:"agents"`
	}
	if err := c.call(ctx, http.MethodGet, agentsPath, nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Agents == nil {
		out.Agents = []*agentkeys.Agent{}
	}
	for _, a := range out.Agents {
		fixAgent(a)
	}
	return out.Agents, nil
}

// fixAgent makes a missing credentials list an empty one, as the local
// vault returns it.
func fixAgent(a *agentkeys.Agent) {
	if a != nil && a.Credentials == nil {
		a.Credentials = []agentkeys.AgentCredential{}
	}
}

// FindAgent implements agentkeys.AgentService: GET /api/v1/agents/{id} when
// ref has an id's form, else (or when no agent has that id) the list,
// matched by name case-insensitively. Returns ENOTFOUND otherwise.
func (c *Client) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	ref = strings.TrimSpace(ref)
	if p, ok := pathID(ref); ok && strings.HasPrefix(ref, "agent_") {
		var a agentkeys.Agent
		err := c.call(ctx, http.MethodGet, agentsPath+"/"+p, nil, nil, &a)
		if err == nil {
			fixAgent(&a)
			return &a, nil
		}
		if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
			return nil, err
		}
	}
	if ref != "" {
		list, err := c.ListAgents(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			if strings.EqualFold(a.Name, ref) {
				return a, nil
			}
		}
	}
	return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q: see `agentkeys agents list`", ref)
}

// CreateAgent implements agentkeys.AgentService: POST /api/v1/agents.
// Returns EINVALID for a bad name and ECONFLICT for a taken one.
func (c *Client) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	var a agentkeys.Agent
	if err := c.call(ctx, http.MethodPost, agentsPath, nil, map[string]string{"name": name}, &a); err != nil {
		return nil, err
	}
	fixAgent(&a)
	return &a, nil
}

// DeleteAgent implements agentkeys.AgentService: DELETE
// /api/v1/agents/{id}. Returns ENOTFOUND for an unknown id.
func (c *Client) DeleteAgent(ctx context.Context, id string) error {
	p, ok := pathID(id)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id %q: see `agentkeys agents list`", id)
	}
	return c.call(ctx, http.MethodDelete, agentsPath+"/"+p, nil, nil, nil)
}

// AssignCredential implements agentkeys.AgentService: POST
// /api/v1/agents/{id}/credentials {"credentialId"}. The returned Grant holds
// the only copy of the proxy token. Returns ENOTFOUND for an unknown agent or
// credential.
func (c *Client) AssignCredential(ctx context.Context, agentID, credentialID string) (*agentkeys.Grant, error) {
	return c.AssignCredentialUntil(ctx, agentID, credentialID, time.Time{})
}

// AssignCredentialUntil implements agentkeys.AgentService: AssignCredential
// with "expiresAt" (RFC 3339) in the request when expiresAt is not zero; the
// token stops working then. Returns EINVALID when expiresAt is not in the
// future (the server says so).
func (c *Client) AssignCredentialUntil(ctx context.Context, agentID, credentialID string, expiresAt time.Time) (*agentkeys.Grant, error) {
	p, ok := pathID(agentID)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id %q: see `agentkeys agents list`", agentID)
	}
	if _, ok := pathID(credentialID); !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", credentialID)
	}
	in := assignRequest{CredentialID: credentialID}
	if !expiresAt.IsZero() {
		t := expiresAt.UTC()
		in.ExpiresAt = &t
	}
	var g agentkeys.Grant
	if err := c.call(ctx, http.MethodPost, agentsPath+"/"+p+"/credentials", nil, in, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// assignRequest is the body of POST /api/v1/agents/{id}/credentials.
type assignRequest struct {
	CredentialID string     `json:"credentialId"`
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
}

// RevokeCredential implements agentkeys.AgentService: DELETE
// /api/v1/agents/{id}/credentials/{credentialId}. Returns ENOTFOUND when the
// agent, the credential or the assignment does not exist.
func (c *Client) RevokeCredential(ctx context.Context, agentID, credentialID string) error {
	p, ok := pathID(agentID)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id %q: see `agentkeys agents list`", agentID)
	}
	q, ok := pathID(credentialID)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", credentialID)
	}
	return c.call(ctx, http.MethodDelete, agentsPath+"/"+p+"/credentials/"+q, nil, nil, nil)
}
