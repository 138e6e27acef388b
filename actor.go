package agentkeys

import (
	"context"
	"strings"
)

// ActorKind says how a caller proved who it is.
type ActorKind string

// Actor kinds.
const (
	ActorAPIKey     ActorKind = "api_key"     // Authorization: Bearer ak_ws_… (a member's API key)
	ActorSession    ActorKind = "session"     // a signed-in user (the dashboard's session cookie)
	ActorProxyToken ActorKind = "proxy_token" // Bearer pxr_…: one agent × credential grant, proxy only
)

// Actor is who makes a call to a server: established once per request by
// the authentication layer and carried in the context (WithActor). Every
// decision about what the caller may do reads it; handlers take their
// workspace from WorkspaceID, never from a parameter.
type Actor struct {
	Kind        ActorKind
	UserID      string // the member acting (API keys and sessions)
	Email       string
	WorkspaceID string
	// Role is the member's current role in WorkspaceID, read when the
	// request was authenticated (never cached across requests).
	Role    Role
	KeyID   string // the API key used (ActorAPIKey)
	AgentID string // the agent of the grant (ActorProxyToken)
}

// Can reports whether the actor may do p. Proxy tokens never act on the
// API: they may do nothing here.
func (a *Actor) Can(p Permission) bool {
	if a == nil || a.Kind == ActorProxyToken {
		return false
	}
	return Can(a.Role, p)
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the request being served.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, or nil for an anonymous call.
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Role is a member's role in a workspace.
type Role string

// Roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember}

// ParseRole returns the role named s (case-insensitively). Returns EINVALID
// for anything else.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Roles {
		if r == k {
			return r, nil
		}
	}
	return "", Errorf(EINVALID, "unknown role %q: give owner, admin or member", s)
}

// Permission is one thing a caller may be allowed to do. Every server route
// names the one it needs.
type Permission string

// Permissions: the seed's "Team Management" matrix, one per row, plus the
// few the seed leaves implicit (marked).
const (
	PermViewCredentials   Permission = "credentials:view"
	PermEditCredentials   Permission = "credentials:edit" // add / edit
	PermDeleteCredentials Permission = "credentials:delete"
	PermEditAgents        Permission = "agents:edit" // create / edit agents, assign and revoke their credentials
	PermDeleteAgents      Permission = "agents:delete"
	PermViewAudit         Permission = "audit:view"
	PermInviteMembers     Permission = "members:invite"
	PermRemoveMembers     Permission = "members:remove"
	PermManageBilling     Permission = "billing:manage"
	PermDeleteWorkspace   Permission = "workspace:delete"
	PermManageAPIKeys     Permission = "api_keys:manage" // rotate, create, revoke
	PermConfigureWebhooks Permission = "webhooks:configure"

	// Implicit in the seed:
	PermViewWorkspace   Permission = "workspace:view"   // status, members, the caller's workspaces (every member)
	PermEditWorkspace   Permission = "workspace:edit"   // rename (owner, admin)
	PermChangeRoles     Permission = "members:role"     // as inviting and removing members (owner, admin)
	PermCreateWorkspace Permission = "workspace:create" // any signed-in user

	// PermPublic marks routes anyone may call (sign-up, accepting an
	// invitation, health checks, the OpenAPI document). PermProxy marks the
	// proxy, which authenticates its own tokens. No role "has" either: Can
	// is false for both.
	PermPublic Permission = "public"
	PermProxy  Permission = "proxy"
)

// rolePerms is the matrix. Change it only together with the seed.
var rolePerms = map[Permission][]Role{
	PermViewCredentials:   {RoleOwner, RoleAdmin, RoleMember},
	PermEditCredentials:   {RoleOwner, RoleAdmin},
	PermDeleteCredentials: {RoleOwner, RoleAdmin},
	PermEditAgents:        {RoleOwner, RoleAdmin, RoleMember},
	PermDeleteAgents:      {RoleOwner, RoleAdmin},
	PermViewAudit:         {RoleOwner, RoleAdmin, RoleMember},
	PermInviteMembers:     {RoleOwner, RoleAdmin},
	PermRemoveMembers:     {RoleOwner, RoleAdmin},
	PermManageBilling:     {RoleOwner},
	PermDeleteWorkspace:   {RoleOwner},
	PermManageAPIKeys:     {RoleOwner, RoleAdmin},
	PermConfigureWebhooks: {RoleOwner, RoleAdmin},

	PermViewWorkspace:   {RoleOwner, RoleAdmin, RoleMember},
	PermEditWorkspace:   {RoleOwner, RoleAdmin},
	PermChangeRoles:     {RoleOwner, RoleAdmin},
	PermCreateWorkspace: {RoleOwner, RoleAdmin, RoleMember},
}

// Can reports whether role may do p, by the seed's matrix. Unknown roles and
// permissions may do nothing.
func Can(role Role, p Permission) bool {
	for _, r := range rolePerms[p] {
		if r == role {
			return true
		}
	}
	return false
}

// Permissions lists every permission a role may be given (not PermPublic or
// PermProxy), in a fixed order.
func Permissions() []Permission {
	return []Permission{
		PermViewCredentials, PermEditCredentials, PermDeleteCredentials, PermEditAgents, PermDeleteAgents,
		PermViewAudit, PermInviteMembers, PermRemoveMembers, PermManageBilling, PermDeleteWorkspace,
		PermManageAPIKeys, PermConfigureWebhooks, PermViewWorkspace, PermEditWorkspace, PermChangeRoles,
		PermCreateWorkspace,
	}
}
