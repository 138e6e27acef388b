// Package auth is who is calling the server: a request's bearer token
// (parsed by agentkeys.BearerToken, the one parser the proxy can share) is
// turned into an agentkeys.Actor — an API key through a KeyStore, which
// server/store implements; sessions later — and passwords are hashed and
// checked (argon2id, OWASP parameters, a dummy hash for unknown users). It
// imports only the root package, so the store can use it.
package auth

import (
	"context"
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// KeyStore finds the member an API key belongs to.
type KeyStore interface {
	// ActorForKey returns the actor of an ak_ws_ key: its workspace, its
	// member and that member's current role. Returns EUNAUTHORIZED for an
	// unknown or revoked key, or one whose member has left.
	ActorForKey(ctx context.Context, key string) (*agentkeys.Actor, error)
}

// Authenticator establishes the actor of API requests.
type Authenticator struct {
	Keys KeyStore
}

// Authenticate returns the actor of r: nil (and no error) for a request
// with no Authorization header; an API key's member otherwise. Returns
// EUNAUTHORIZED for a malformed header, a proxy token (they never act on the
// API) or an unknown key.
func (a *Authenticator) Authenticate(r *http.Request) (*agentkeys.Actor, error) {
	tok, ok, err := agentkeys.BearerToken(r.Header)
	if err != nil || !ok {
		return nil, err
	}
	switch {
	case agentkeys.IsWorkspaceKey(tok):
		return a.Keys.ActorForKey(r.Context(), tok)
	case agentkeys.IsProxyToken(tok):
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "a proxy token (pxr_…) only works with /v1/proxy: the API needs an API key (ak_ws_…)")
	}
	return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "invalid API key: send Authorization: Bearer ak_ws_…")
}
