// Package auth is who is calling the server: the one place a request's
// Authorization header is parsed (Bearer), API keys are turned into an
// agentkeys.Actor (through a KeyStore, which server/store implements), and
// passwords are hashed and checked (argon2id). It imports only the root
// package, so the store and the proxy can both use it.
package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Bearer returns the token of a request's one "Authorization: Bearer …"
// header, and ok false when the request carries no Authorization header at
// all. Returns EUNAUTHORIZED when the header is there but is not exactly one
// bearer token (several headers, another scheme, no token).
func Bearer(h http.Header) (token string, ok bool, err error) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if len(vals) > 1 || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", true, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "the Authorization header must be one \"Bearer ak_ws_…\"")
	}
	return tok, true, nil
}

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
	tok, ok, err := Bearer(r.Header)
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
