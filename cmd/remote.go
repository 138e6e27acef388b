package cmd

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/internal/version"
)

// Remote mode: after `agentkeys login`, config.json (or AGENTKEYS_API_KEY
// together with AGENTKEYS_API_URL) names a server and a workspace key, and
// every command acts on that server's workspace through client/ instead of
// the local vault. An API key without a URL is not remote mode: the local
// vault's own workspace key is an ak_ws_ key too.

// remoteConfigured reports whether cfg points the CLI at a server.
func remoteConfigured(cfg *Config) bool {
	return strings.TrimSpace(cfg.APIKey) != "" && strings.TrimSpace(cfg.APIURL) != ""
}

// cliUserAgent is the User-Agent of the CLI's requests to a server:
// agentkeys/<version>.
func cliUserAgent() string { return version.UserAgent() }

// openRemoteVault returns the Vault of the workspace cfg names on its
// server. It makes no request (the first command's call checks the key).
// Returns EINVALID, naming `agentkeys login`, when the URL or key in the
// configuration is malformed; never with the key in the message.
func openRemoteVault(cfg *Config) (*remoteVault, error) {
	c, err := client.New(client.Config{
		BaseURL: cfg.APIURL,
		APIKey:  cfg.APIKey,
		// The user chose this URL with `agentkeys login` (where plain http to
		// another host needs --allow-http) or in AGENTKEYS_API_URL.
		AllowInsecureHTTP: true,
		UserAgent:         cliUserAgent(),
	})
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the server configuration (%s or AGENTKEYS_API_URL / AGENTKEYS_API_KEY) is not usable: %s; run `agentkeys login --server URL` again, or `agentkeys logout` to use the local vault",
			cfg.ConfigPath(), agentkeys.ErrorMessage(err))
	}
	return &remoteVault{Client: c}, nil
}

// remoteVault is the server's workspace as commands see it: the client,
// with a hint added to the errors that mean the login is no longer good.
type remoteVault struct {
	*client.Client
}

var _ agentkeys.Vault = (*remoteVault)(nil)

// hint adds what to do next to an error about the login itself (the key
// refused, the server unreachable). Proxy errors are left alone: there, a 401
// is about the agent's token.
func (r *remoteVault) hint(err error) error {
	msg := strings.TrimSuffix(agentkeys.ErrorMessage(err), ".")
	switch agentkeys.ErrorCode(err) {
	case agentkeys.EUNAVAILABLE:
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s; this CLI is logged in to that server (`agentkeys logout` goes back to the local vault)", msg)
	case agentkeys.EUNAUTHORIZED:
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "%s: the server at %s refused the saved API key (revoked or rotated?); run `agentkeys login --server %s` with a current key, or `agentkeys logout` to use the local vault",
			msg, r.BaseURL(), r.BaseURL())
	}
	return err
}

func (r *remoteVault) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	v, err := r.Client.ListCredentials(ctx)
	return v, r.hint(err)
}

func (r *remoteVault) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	v, err := r.Client.FindCredential(ctx, ref)
	return v, r.hint(err)
}

func (r *remoteVault) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
	v, err := r.Client.CreateCredential(ctx, in)
	return v, r.hint(err)
}

func (r *remoteVault) UpdateCredential(ctx context.Context, id string, upd *agentkeys.CredentialUpdate) (*agentkeys.Credential, error) {
	v, err := r.Client.UpdateCredential(ctx, id, upd)
	return v, r.hint(err)
}

func (r *remoteVault) DeleteCredential(ctx context.Context, id string) error {
	return r.hint(r.Client.DeleteCredential(ctx, id))
}

func (r *remoteVault) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	v, err := r.Client.ListAgents(ctx)
	return v, r.hint(err)
}

func (r *remoteVault) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	v, err := r.Client.FindAgent(ctx, ref)
	return v, r.hint(err)
}

func (r *remoteVault) CreateAgent(ctx context.Context, name string) (*agentkeys.Agent, error) {
	v, err := r.Client.CreateAgent(ctx, name)
	return v, r.hint(err)
}

func (r *remoteVault) DeleteAgent(ctx context.Context, id string) error {
	return r.hint(r.Client.DeleteAgent(ctx, id))
}

func (r *remoteVault) AssignCredential(ctx context.Context, agentID, credentialID string) (*agentkeys.Grant, error) {
	v, err := r.Client.AssignCredential(ctx, agentID, credentialID)
	return v, r.hint(err)
}

func (r *remoteVault) AssignCredentialUntil(ctx context.Context, agentID, credentialID string, expiresAt time.Time) (*agentkeys.Grant, error) {
	v, err := r.Client.AssignCredentialUntil(ctx, agentID, credentialID, expiresAt)
	return v, r.hint(err)
}

func (r *remoteVault) RevokeCredential(ctx context.Context, agentID, credentialID string) error {
	return r.hint(r.Client.RevokeCredential(ctx, agentID, credentialID))
}

func (r *remoteVault) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	v, err := r.Client.ListAudit(ctx, f)
	return v, r.hint(err)
}

func (r *remoteVault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	v, err := r.Client.Status(ctx)
	return v, r.hint(err)
}

// wireRemote makes f act on a server when the configuration names one:
// f.Vault returns the remote workspace (opened once, closed with f), and
// f.ProxyHandler refuses (`agentkeys up` serves the local vault only). With
// no server configured both fall through to what was wired before (the local
// vault). Call it after wireVault.
func wireRemote(f *Factory) {
	localVault, localHandler := f.Vault, f.ProxyHandler
	var (
		mu sync.Mutex
		rv *remoteVault
	)
	f.Vault = func(ctx context.Context) (agentkeys.Vault, error) {
		cfg, err := f.Config()
		if err != nil {
			return nil, err
		}
		if !remoteConfigured(cfg) {
			return localVault(ctx)
		}
		mu.Lock()
		defer mu.Unlock()
		if rv == nil {
			v, err := openRemoteVault(cfg)
			if err != nil {
				return nil, err
			}
			rv = v
			f.onClose(func() error {
				mu.Lock()
				defer mu.Unlock()
				if rv != nil {
					rv.Close()
					rv = nil
				}
				return nil
			})
		}
		return rv, nil
	}
	f.ProxyHandler = func(ctx context.Context) (http.Handler, error) {
		cfg, err := f.Config()
		if err != nil {
			return nil, err
		}
		if remoteConfigured(cfg) {
			base := strings.TrimRight(strings.TrimSpace(cfg.APIURL), "/")
			return nil, unavailable("this CLI is logged in to %s, whose own proxy is %s/v1/proxy: agents can use that; `agentkeys up` serves the local vault only (run `agentkeys logout` first)", base, base)
		}
		return localHandler(ctx)
	}
}
