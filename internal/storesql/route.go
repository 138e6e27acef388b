package storesql

import (
	"strings"

	"github.com/agentkeys/agentkeys"
)

// What the proxy path of both stores shares: how a token is told apart and
// refused, and the route a cache keeps. How a cache learns that it is stale
// differs (the local vault watches the file; the server compares workspace
// revisions) and stays in each store.

// TokenKind is what an Authorize token is.
type TokenKind int

// The tokens Authorize takes.
const (
	ProxyToken   TokenKind = iota + 1 // pxr_…: one grant
	WorkspaceKey                      // ak_ws_…: a workspace's credentials, by name
)

// Unauthorized is an EUNAUTHORIZED refusal of the proxy.
func Unauthorized(msg string) error { return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "%s", msg) }

// Refusals of Authorize, the same in both stores.
const (
	RevokedToken       = "invalid or revoked proxy token"
	InvalidKey         = "invalid workspace key"
	CredentialDeleted  = "the credential was deleted"
	missingTokenMsg    = "missing token: send Authorization: Bearer pxr_… (a proxy token) or Bearer ak_ws_… with X-Credential-Name"
	malformedTokenMsg  = "invalid token: expected a pxr_ proxy token or an ak_ws_ workspace key"
	keyNeedsNameMsg    = "a workspace key needs the credential's name: set the X-Credential-Name header"
	routeNotFoundMsg   = "no credential named %q in this workspace"
	missingCredNameMsg = "missing credential name"
)

// ClassifyToken says what token is, or returns the EUNAUTHORIZED refusal
// of a missing or malformed one.
func ClassifyToken(token string) (TokenKind, error) {
	switch {
	case token == "":
		return 0, Unauthorized(missingTokenMsg)
	case agentkeys.IsProxyToken(token):
		return ProxyToken, nil
	case agentkeys.IsWorkspaceKey(token):
		return WorkspaceKey, nil
	default:
		return 0, Unauthorized(malformedTokenMsg)
	}
}

// CheckRouteName returns the trimmed credential name of a workspace-key or
// owner route: EINVALID when it is blank (forKey: the message names the
// header a workspace key needs).
func CheckRouteName(name string, forKey bool) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		if forKey {
			return "", agentkeys.Errorf(agentkeys.EINVALID, keyNeedsNameMsg)
		}
		return "", agentkeys.Errorf(agentkeys.EINVALID, missingCredNameMsg)
	}
	return name, nil
}

// RouteNotFound is the ENOTFOUND of a credential name no route opens.
func RouteNotFound(name string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, routeNotFoundMsg, name)
}

// RouteCols are CredentialCols and the sealed value: what RouteEntry.Scan
// reads first.
const RouteCols = CredentialCols + `, c.sealed, c.key_version`

// RouteEntry is a resolved route as a cache keeps it, with the sealed value
// (decrypted per request, never kept in the clear).
type RouteEntry struct {
	Route      agentkeys.Route // Credential points at Cred
	Cred       agentkeys.Credential
	Sealed     []byte
	KeyVersion int
}

// Scan reads RouteCols followed by extra destinations into e.
func (e *RouteEntry) Scan(r RowScanner, extra ...any) error {
	cred, err := ScanCredential(r, append([]any{&e.Sealed, &e.KeyVersion}, extra...)...)
	if err != nil {
		return err
	}
	e.Cred = *cred
	e.Route.Credential = &e.Cred
	return nil
}

// Copy returns a route the caller may keep; it shares AllowedHosts, which
// callers must not modify.
func (e *RouteEntry) Copy() *agentkeys.Route {
	r := e.Route
	cred := e.Cred
	r.Credential = &cred
	return &r
}
