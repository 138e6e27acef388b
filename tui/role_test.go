package tui_test

import (
	"context"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
)

// roleVault is a vault that reports itself as a team server's workspace
// with a role.
type roleVault struct {
	agentkeys.Vault
	role agentkeys.Role
}

func (v roleVault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	st, err := v.Vault.Status(ctx)
	if st != nil {
		st.Role, st.Mode, st.Location, st.KeySource = v.role, agentkeys.ModeRemote, "https://keys.example.com", ""
	}
	return st, err
}

// TestRole_HidesActions: a member sees no "new" or "delete" for
// credentials and no "delete" for agents, and the keys do nothing; the
// status screen shows the role. An admin keeps them.
func TestRole_HidesActions(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(roleVault{Vault: v, role: agentkeys.RoleMember}, tui.Options{Role: agentkeys.RoleMember}), 120, 40)
	d.mustNotSee("n new", "d delete")
	d.keys("n")
	d.mustNotSee("Secret fields are hidden")
	d.keys("d")
	d.mustNotSee("Delete credential")
	d.keys("2")
	d.mustSee("n new", "a assign")
	d.mustNotSee("d delete")
	d.keys("4")
	d.mustSee("Your role", "member")

	admin := start(t, newApp(roleVault{Vault: v, role: agentkeys.RoleAdmin}, tui.Options{Role: agentkeys.RoleAdmin}), 120, 40)
	admin.mustSee("n new", "d delete")
}
