package tui

import "github.com/agentkeys/agentkeys"

// The screens show names and audit fields that came from storage (written
// by any front-end, or an agent through MCP) or from a server. They are
// made safe for the terminal once, as they are loaded (agentkeys.SafeText):
// a control or bidi character in a name cannot then reach the screen
// through any view. Copies are made: a vault may hand out cached values.

func safeCredentials(in []*agentkeys.Credential) []*agentkeys.Credential {
	out := make([]*agentkeys.Credential, len(in))
	for i, c := range in {
		out[i] = safeCredential(c)
	}
	return out
}

func safeCredential(c *agentkeys.Credential) *agentkeys.Credential {
	if c == nil {
		return nil
	}
	cp := *c
	cp.Name = agentkeys.SafeText(c.Name)
	cp.AllowedHosts = make([]string, len(c.AllowedHosts))
	for i, h := range c.AllowedHosts {
		cp.AllowedHosts[i] = agentkeys.SafeText(h)
	}
	if c.HeaderNames != nil {
		cp.HeaderNames = make([]string, len(c.HeaderNames))
		for i, n := range c.HeaderNames {
			cp.HeaderNames[i] = agentkeys.SafeText(n)
		}
	}
	cp.ParamName = agentkeys.SafeText(c.ParamName)
	return &cp
}

func safeAgents(in []*agentkeys.Agent) []*agentkeys.Agent {
	out := make([]*agentkeys.Agent, len(in))
	for i, a := range in {
		out[i] = safeAgent(a)
	}
	return out
}

func safeAgent(a *agentkeys.Agent) *agentkeys.Agent {
	if a == nil {
		return nil
	}
	cp := *a
	cp.Name = agentkeys.SafeText(a.Name)
	cp.Credentials = make([]agentkeys.AgentCredential, len(a.Credentials))
	for i, c := range a.Credentials {
		c.CredentialName = agentkeys.SafeText(c.CredentialName)
		cp.Credentials[i] = c
	}
	return &cp
}

func safeAudit(in []*agentkeys.AuditEvent) []*agentkeys.AuditEvent {
	out := make([]*agentkeys.AuditEvent, len(in))
	for i, e := range in {
		if e == nil {
			continue
		}
		cp := *e
		for _, f := range []*string{&cp.AgentName, &cp.CredentialName, &cp.Method, &cp.Host, &cp.Path, &cp.Decision, &cp.Code} {
			*f = agentkeys.SafeText(*f)
		}
		out[i] = &cp
	}
	return out
}

func safeStatus(s *agentkeys.WorkspaceStatus) *agentkeys.WorkspaceStatus {
	if s == nil {
		return nil
	}
	cp := *s
	for _, f := range []*string{&cp.Name, &cp.Plan, &cp.Location} {
		*f = agentkeys.SafeText(*f)
	}
	return &cp
}
