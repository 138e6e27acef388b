package cmd

import (
	"context"
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// wireVault sets f.Vault and f.ProxyHandler. This decides local versus
// remote mode; today every command works on the local vault.
func wireVault(f *Factory) {
	f.Vault = func(ctx context.Context) (agentkeys.Vault, error) {
		return nil, unavailable("the local vault is not part of this build yet")
	}
	f.ProxyHandler = func(ctx context.Context) (http.Handler, error) {
		return nil, unavailable("the proxy is not part of this build yet")
	}
}
