package localvault_test

import (
	"context"
	"testing"

	"github.com/agentkeys/agentkeys"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	c, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Resend Production", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "re_123"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.CreateAgent(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.AssignCredential(ctx, a.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.Authorize(ctx, g.ProxyToken, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.OpenSecret(ctx, r)
	if err != nil || s.Value != "re_123" {
		t.Fatal(err, s.Value)
	}
	e := &agentkeys.AuditEvent{AgentID: a.ID, CredentialID: c.ID, Method: "GET", Host: "api.resend.com", Path: "/x"}
	if err := v.BeginAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Status, e.Decision = 200, agentkeys.DecisionAllowed
	v.EndAudit(ctx, e)
	if err := v.RevokeCredential(ctx, a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authorize(ctx, g.ProxyToken, ""); agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
		t.Fatal(err)
	}
	v.Close()
}
