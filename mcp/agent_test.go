package mcp_test

import (
	"context"
	"strings"
	"testing"

	akmcp "github.com/agentkeys/agentkeys/mcp"
)

func TestAgents(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	e.ok("create_credential", map[string]any{"name": "Alpha", "value": "va", "allowedHosts": []string{"api.example.com"}})
	b := e.ok("create_credential", map[string]any{"name": "Beta", "value": "vb", "allowedHosts": []string{"api.example.com"}})
	betaID := b["credential"].(map[string]any)["id"].(string)

	// create_agent alone, and with credentials by name and id (duplicates folded).
	bare := e.ok("create_agent", map[string]any{"name": "marketing-bot"})
	agent := bare["agent"].(map[string]any)
	if agent["name"] != "marketing-bot" || !strings.HasPrefix(agent["id"].(string), "agent_") {
		t.Errorf("agent = %v", agent)
	}
	if as := bare["assignments"].([]any); len(as) != 0 {
		t.Errorf("assignments = %v", as)
	}
	withCreds := e.ok("create_agent", map[string]any{"name": "pipeline", "credentials": []string{"alpha", betaID, "Beta"}})
	as := withCreds["assignments"].([]any)
	if len(as) != 2 {
		t.Fatalf("assignments = %v, want 2", as)
	}
	for _, a := range as {
		g := a.(map[string]any)
		if !strings.HasPrefix(g["proxyToken"].(string), "pxr_") || g["agentName"] != "pipeline" || g["replaced"] != false {
			t.Errorf("assignment = %v", g)
		}
	}
	if creds := withCreds["agent"].(map[string]any)["credentials"].([]any); len(creds) != 2 {
		t.Errorf("new agent lists %d credentials, want 2", len(creds))
	}

	list := e.ok("list_agents", nil)
	if got := names(t, list, "agents"); strings.Join(got, ",") != "marketing-bot,pipeline" {
		t.Errorf("list_agents = %v", got)
	}
	if strings.Contains(text(e.call("list_agents", nil)), "pxr_") {
		t.Error("list_agents shows a proxy token")
	}

	// assign_credential: by names; again replaces the token.
	first := e.ok("assign_credential", map[string]any{"agent": "Marketing-Bot", "credential": "alpha"})
	if !strings.HasPrefix(first["proxyToken"].(string), "pxr_") || first["replaced"] != false || first["credentialName"] != "Alpha" {
		t.Errorf("assign = %v", first)
	}
	second := e.ok("assign_credential", map[string]any{"agent": agent["id"], "credential": "Alpha"})
	if second["replaced"] != true || second["proxyToken"] == first["proxyToken"] {
		t.Errorf("reassign = %v", second)
	}

	// Refusals write nothing.
	e.fail("create_agent", map[string]any{"name": "PIPELINE"}, "already exists", "code CONFLICT")
	e.fail("create_agent", map[string]any{"name": ""}, "missing name", "code BAD_REQUEST")
	e.fail("create_agent", map[string]any{"name": strings.Repeat("x", 101)}, "longer than 100", "code BAD_REQUEST")
	e.fail("create_agent", map[string]any{"name": "ghost", "credentials": []string{"Alpha", "nope"}}, `no credential with id or name "nope"`, "code NOT_FOUND")
	e.fail("assign_credential", map[string]any{"agent": "nobody", "credential": "Alpha"}, `no agent with id or name "nobody"`, "list_agents", "code NOT_FOUND")
	e.fail("assign_credential", map[string]any{"agent": "pipeline", "credential": "nope"}, `no credential with id or name "nope"`, "code NOT_FOUND")
	e.fail("assign_credential", map[string]any{"credential": "Alpha"}, "missing agent", "code BAD_REQUEST")
	e.fail("assign_credential", map[string]any{"agent": "pipeline"}, "missing credential", "code BAD_REQUEST")
	agents, err := e.vault.ListAgents(context.Background())
	if err != nil || len(agents) != 2 {
		t.Fatalf("refusals wrote: %d agents, %v", len(agents), err)
	}

	// delete_agent by name and id.
	del := e.ok("delete_agent", map[string]any{"agent": "PIPELINE"})
	if del["deleted"] != true || del["name"] != "pipeline" {
		t.Errorf("delete = %v", del)
	}
	e.ok("delete_agent", map[string]any{"agent": agent["id"]})
	e.fail("delete_agent", map[string]any{"agent": agent["id"]}, "no agent with id or name", "code NOT_FOUND")
	e.fail("delete_agent", nil, "missing agent", "code BAD_REQUEST")
	if got := names(t, e.ok("list_agents", nil), "agents"); len(got) != 0 {
		t.Errorf("left after delete: %v", got)
	}
	// Credentials survive their agents.
	if got := names(t, e.ok("list_credentials", nil), "credentials"); len(got) != 2 {
		t.Errorf("credentials after deleting agents: %v", got)
	}
}
