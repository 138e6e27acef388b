package agentkeys

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Vault is the seam every front-end (CLI, TUI, MCP server) speaks. The local
// vault (localvault, joined to the in-process proxy by cmd) and a remote
// workspace (client) both implement it, and one conformance suite
// (vaulttest) runs against every implementation. Nothing that leaves a Vault
// carries a credential value, except the response to a proxied request —
// which carries what the upstream sent, not the secret.
type Vault interface {
	Contents
	// Proxy makes one proxied request through the same code path as
	// /v1/proxy: authorise, check the destination, inject, forward, audit.
	// It returns the upstream's response whatever its status (the caller
	// closes Body); refusals and upstream failures are *Error values with the
	// codes of the proxy protocol (EUNAUTHORIZED, EINVALID, ENOTFOUND,
	// EDESTINATION, ETOOLARGE, EUPSTREAM, ETIMEOUT).
	Proxy(ctx context.Context, req *ProxyRequest) (*http.Response, error)
}

// Contents is one workspace's contents as a store keeps them: a Vault
// without Proxy. The stores (localvault.Vault, server/store.Workspace)
// implement it and know nothing of the proxy; where the app is wired (cmd,
// tests) a store is joined to a proxy with WithProxy.
type Contents interface {
	CredentialService
	AgentService
	AuditLog
	// Status describes the workspace: counts, plan and limits, where it lives.
	Status(ctx context.Context) (*WorkspaceStatus, error)
}

// Proxier makes one proxied request; proxy.Handler implements it.
type Proxier interface {
	Do(ctx context.Context, req *ProxyRequest) (*http.Response, error)
}

// WithProxy returns the Vault made of a store's contents c and proxy p:
// Proxy is p.Do, every other call goes to c. When c is also a ProxyBackend
// (the local vault), so is the result.
func WithProxy(c Contents, p Proxier) Vault {
	if b, ok := c.(ProxyBackend); ok {
		return &proxiedBackend{proxied{c, p}, b}
	}
	return &proxied{c, p}
}

type proxied struct {
	Contents
	p Proxier
}

func (v *proxied) Proxy(ctx context.Context, req *ProxyRequest) (*http.Response, error) {
	return v.p.Do(ctx, req)
}

// Unwrap returns the store's contents the Vault was made of, for callers
// that need what only that store can do (the local vault's sync).
func (v *proxied) Unwrap() Contents { return v.Contents }

type proxiedBackend struct {
	proxied
	ProxyBackend
}

// ProxyRequest is one request to send through the proxy.
type ProxyRequest struct {
	// Token is a pxr_ proxy token, or an ak_ws_ workspace key together with
	// CredentialName. When Token is empty, the request is made with the
	// authority of whoever opened the Vault (the owner of the local vault, or
	// the workspace key the client logged in with) and CredentialName picks
	// the credential.
	Token          string
	CredentialName string
	Method         string // "" means GET
	URL            string
	Header         http.Header
	Body           io.Reader
}

// Protocol headers of /v1/proxy.
const (
	HeaderTargetURL      = "X-Target-Url"
	HeaderTargetMethod   = "X-Target-Method"
	HeaderCredentialName = "X-Credential-Name"
	// HeaderRequestID is on every answer of the proxy; the same id is in the
	// request's audit row.
	HeaderRequestID = "X-Agentkeys-Request-Id"
	// HeaderError is set (to the error code) on answers the proxy made itself,
	// so a client can tell a proxy 404 from an upstream 404.
	HeaderError = "X-Agentkeys-Error"
)

// Route is what a token opens: one credential, reached by one agent (or by
// the workspace key, when AgentID is empty).
type Route struct {
	WorkspaceID string
	AgentID     string
	AgentName   string
	Credential  *Credential
	// ExpiresAt is when the grant behind a pxr_ token expires (zero: never);
	// the proxy refuses the token from then on.
	ExpiresAt time.Time
}

// ProxyBackend is what the proxy needs from a store. localvault implements
// it, and so will the server's store. Implementations must make revocation
// and deletion visible on the very next call, even when they were made by
// another process.
type ProxyBackend interface {
	// Authorize resolves a token. A pxr_ token opens its grant (name is
	// ignored); an ak_ws_ key opens the credential of its workspace whose name
	// equals name case-insensitively. Returns EUNAUTHORIZED for a missing,
	// unknown or revoked token; EINVALID for an ak_ws_ key without a name;
	// ENOTFOUND for an unknown name. A revoked pxr_ token's refusal may be
	// a *RevokedToken naming whom it was issued to, for the audit row.
	Authorize(ctx context.Context, token, name string) (*Route, error)
	// RouteByName opens a credential by name with the authority of whoever
	// opened the backend (in-process callers only; never reachable over
	// HTTP). Returns ENOTFOUND for an unknown name.
	RouteByName(ctx context.Context, name string) (*Route, error)
	// OpenSecret decrypts the route's credential value, in memory only.
	OpenSecret(ctx context.Context, r *Route) (*Secret, error)
	// BeginAudit records an event before the request is forwarded. It
	// returns once the event is durable, or queued in a way that survives
	// the process being killed (the local vault's journal); implementations
	// batch concurrent calls rather than serialise them. The proxy refuses
	// the request (fail closed) if it returns an error.
	BeginAudit(ctx context.Context, e *AuditEvent) error
	// EndAudit records the outcome (status, bytes, duration, decision) of an
	// event begun earlier. It may queue the write and return at once.
	EndAudit(ctx context.Context, e *AuditEvent)
}

// RevokedToken is the EUNAUTHORIZED refusal of a pxr_ token whose grant is
// gone (revoked, replaced, or removed with its agent or credential), naming
// the agent and credential it was issued to, so the audit row of the
// refused request still says which agent sent it. Its message is Err's.
type RevokedToken struct {
	Err            error // EUNAUTHORIZED
	AgentID        string
	AgentName      string
	CredentialID   string
	CredentialName string
}

// Error implements the error interface.
func (e *RevokedToken) Error() string { return e.Err.Error() }

// Unwrap returns Err, so ErrorCode sees EUNAUTHORIZED.
func (e *RevokedToken) Unwrap() error { return e.Err }
