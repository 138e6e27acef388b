package localvault_test

import (
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/vaulttest"
)

// openWired opens a fresh vault joined to the in-process proxy, as cmd does.
func openWired(t *testing.T) agentkeys.Vault {
	t.Helper()
	return testkit.OpenVault(t, testkit.VaultOptions{})
}

func TestVault(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) agentkeys.Vault { return openWired(t) })
}
