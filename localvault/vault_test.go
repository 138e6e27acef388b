package localvault_test

import (
	"context"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
	"github.com/agentkeys/agentkeys/vaulttest"
)

// openWired opens a fresh vault with the in-process proxy wired, as cmd does.
func openWired(t *testing.T) *localvault.Vault {
	t.Helper()
	v, _ := mustOpenVault(t)
	v.UseProxy(proxy.New(v, proxy.Config{}))
	return v
}

func TestVault(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) agentkeys.Vault { return openWired(t) })
}

// TestVault_Unwired runs the suite with no proxy: every Proxy test must skip
// and everything else must still pass.
func TestVault_Unwired(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) agentkeys.Vault {
		v, _ := mustOpenVault(t)
		return v
	})
}

func TestProxy_Unwired(t *testing.T) {
	v, _ := mustOpenVault(t)
	_, err := v.Proxy(context.Background(), &agentkeys.ProxyRequest{CredentialName: "x", URL: "https://api.example.com/"})
	wantCode(t, err, agentkeys.EUNAVAILABLE)
}
