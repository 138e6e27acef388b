package store_test

import (
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/vaulttest"
)

// TestVault runs the conformance suite against the workspace view, on
// SQLite and on PostgreSQL, each subtest with a fresh database.
func TestVault(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			vaulttest.Run(t, func(t *testing.T) agentkeys.Vault {
				s := mustOpen(t, b.config(t))
				ws := mustWorkspace(t, s, "Acme")
				return wiredView(s, ws.ID)
			})
		})
	}
}
