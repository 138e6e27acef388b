package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentkeys/agentkeys"
)

func (s *Server) listAgentsTool() toolDef {
	tool := mcp.NewTool(ToolListAgents,
		mcp.WithToolTitle("List agents"),
		mcp.WithDescription("List every agent (an AI tool, bot or script that calls APIs through AgentKeys) with the credentials assigned to it. Proxy tokens are never listed: assign_credential issues a new one."),
		annotations("List agents", true, false, true, false),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"agents": obj{"type": "array", "items": agentSchema(), "description": "Agents ordered by name."},
			"count":  obj{"type": "integer", "description": "Number of agents."},
		}, "agents", "count"))),
	)
	return toolDef{tool: tool, handler: s.listAgents}
}

func (s *Server) listAgents(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct{}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	agents, err := s.vault.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	if agents == nil {
		agents = []*agentkeys.Agent{}
	}
	for _, a := range agents {
		cleanAgent(a)
	}
	summary := fmt.Sprintf("%d agent(s).", len(agents))
	if len(agents) == 0 {
		summary = "No agents yet: create one with create_agent."
	}
	return okResult(summary, obj{"agents": agents, "count": len(agents)}), nil
}

func cleanAgent(a *agentkeys.Agent) *agentkeys.Agent {
	if a.Credentials == nil {
		a.Credentials = []agentkeys.AgentCredential{}
	}
	return a
}

func (s *Server) createAgentTool() toolDef {
	tool := mcp.NewTool(ToolCreateAgent,
		mcp.WithToolTitle("Create agent"),
		mcp.WithDescription("Create an agent: a named identity for an AI tool, bot or script. Optionally assign credentials to it at once; each assignment returns a proxy token (pxr_…) the agent sends to the AgentKeys proxy instead of the secret. Tokens are shown only in this result."),
		annotations("Create agent", false, false, false, false),
		mcp.WithString("name", mcp.Required(), mcp.MinLength(1), mcp.MaxLength(100),
			mcp.Description("Unique agent name, e.g. \"marketing-bot\".")),
		mcp.WithArray("credentials", mcp.WithStringItems(),
			mcp.Description("Optional: credentials (ids or names) to assign to the new agent right away.")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"agent":       agentSchema(),
			"assignments": obj{"type": "array", "items": grantSchema(), "description": "One proxy token per credential assigned."},
		}, "agent", "assignments"))),
	)
	return toolDef{tool: tool, handler: s.createAgent}
}

func (s *Server) createAgent(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct {
		Name        string   `json:"name"`
		Credentials []string `json:"credentials"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if strings.TrimSpace(args.Name) == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing name: give the agent a unique name, e.g. \"marketing-bot\"")
	}
	// Resolve every credential before creating anything, so a typo writes nothing.
	var creds []*agentkeys.Credential
	seen := map[string]bool{}
	for _, ref := range args.Credentials {
		c, err := s.findCredential(ctx, ref)
		if err != nil {
			return nil, err
		}
		if !seen[c.ID] {
			seen[c.ID] = true
			creds = append(creds, c)
		}
	}
	agent, err := s.vault.CreateAgent(ctx, args.Name)
	if err != nil {
		return nil, err
	}
	grants := []obj{}
	for _, c := range creds {
		g, err := s.vault.AssignCredential(ctx, agent.ID, c.ID)
		if err != nil {
			return nil, agentkeys.Errorf(agentkeys.ErrorCode(err),
				"agent %q (%s) was created, but assigning credential %q failed: %s. Retry with assign_credential",
				agent.Name, agent.ID, c.Name, agentkeys.ErrorMessage(err))
		}
		grants = append(grants, grantOut(g, agent, c, false))
	}
	if len(creds) > 0 {
		// Re-read so the agent lists its credentials.
		if a, err := s.vault.FindAgent(ctx, agent.ID); err == nil {
			agent = a
		}
	}
	cleanAgent(agent)
	summary := fmt.Sprintf("Created agent %q (%s).", agent.Name, agent.ID)
	if len(grants) > 0 {
		summary += fmt.Sprintf(" Assigned %d credential(s); the proxy tokens below are shown only once.", len(grants))
	} else {
		summary += " Give it credentials with assign_credential."
	}
	return okResult(summary, obj{"agent": agent, "assignments": grants}), nil
}

func (s *Server) deleteAgentTool() toolDef {
	tool := mcp.NewTool(ToolDeleteAgent,
		mcp.WithToolTitle("Delete agent"),
		mcp.WithDescription("Permanently delete an agent, by id or name. All its proxy tokens stop working at once. The credentials themselves are kept. This cannot be undone."),
		annotations("Delete agent", false, true, true, false),
		mcp.WithString("agent", mcp.Required(), mcp.MinLength(1),
			mcp.Description("The agent's id (agent_…) or its name (case-insensitive), as shown by list_agents.")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"deleted": obj{"type": "boolean"},
			"id":      str("Id of the deleted agent."),
			"name":    str("Name of the deleted agent."),
		}, "deleted", "id", "name"))),
	)
	return toolDef{tool: tool, handler: s.deleteAgent}
}

func (s *Server) deleteAgent(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct {
		Agent string `json:"agent"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	agent, err := s.findAgent(ctx, args.Agent)
	if err != nil {
		return nil, err
	}
	if err := s.vault.DeleteAgent(ctx, agent.ID); err != nil {
		return nil, err
	}
	return okResult(fmt.Sprintf("Deleted agent %q (%s); its proxy tokens no longer work.", agent.Name, agent.ID),
		obj{"deleted": true, "id": agent.ID, "name": agent.Name}), nil
}

func (s *Server) assignCredentialTool() toolDef {
	tool := mcp.NewTool(ToolAssignCredential,
		mcp.WithToolTitle("Assign credential to agent"),
		mcp.WithDescription("Give an agent access to one credential and return a new proxy token (pxr_…). The agent calls the AgentKeys proxy with `Authorization: Bearer <proxyToken>` and `X-Target-Url: <https URL>` (or proxy_request with proxyToken), and AgentKeys injects the real credential. "+
			"The token is not the secret and is shown only in this result. Assigning a credential the agent already has issues a new token and the old one stops working."),
		// Destructive: assigning a credential the agent already has revokes
		// its previous token (not an additive-only update).
		annotations("Assign credential", false, true, false, false),
		mcp.WithString("agent", mcp.Required(), mcp.MinLength(1),
			mcp.Description("The agent's id (agent_…) or name.")),
		mcp.WithString("credential", mcp.Required(), mcp.MinLength(1),
			mcp.Description("The credential's id (cred_…) or name.")),
		mcp.WithRawOutputSchema(rawSchema(grantSchema())),
	)
	return toolDef{tool: tool, handler: s.assignCredential}
}

func (s *Server) assignCredential(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct {
		Agent      string `json:"agent"`
		Credential string `json:"credential"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	agent, err := s.findAgent(ctx, args.Agent)
	if err != nil {
		return nil, err
	}
	cred, err := s.findCredential(ctx, args.Credential)
	if err != nil {
		return nil, err
	}
	replaced := false
	for _, ac := range agent.Credentials {
		if ac.CredentialID == cred.ID {
			replaced = true
		}
	}
	g, err := s.vault.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		return nil, err
	}
	out := grantOut(g, agent, cred, replaced)
	summary := fmt.Sprintf("Assigned credential %q to agent %q. Proxy token (shown only now): %s — send it as `Authorization: Bearer <token>` to the AgentKeys proxy with X-Target-Url on %s.",
		cred.Name, agent.Name, g.ProxyToken, strings.Join(cred.AllowedHosts, ", "))
	if replaced {
		summary += " The agent's previous token for this credential no longer works."
	}
	return okResult(summary, out), nil
}

func grantOut(g *agentkeys.Grant, a *agentkeys.Agent, c *agentkeys.Credential, replaced bool) obj {
	hosts := c.AllowedHosts
	if hosts == nil {
		hosts = []string{}
	}
	return obj{
		"proxyToken":     g.ProxyToken,
		"agentId":        a.ID,
		"agentName":      a.Name,
		"credentialId":   c.ID,
		"credentialName": c.Name,
		"allowedHosts":   hosts,
		"createdAt":      g.CreatedAt,
		"replaced":       replaced,
	}
}

// findAgent resolves an id or name, with a message that says what to do.
func (s *Server) findAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing agent: give its id (agent_…) or name; list_agents shows them")
	}
	a, err := s.vault.FindAgent(ctx, ref)
	if agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no agent with id or name %q: call list_agents to see the agents there are, or create_agent", ref)
	}
	return a, err
}
