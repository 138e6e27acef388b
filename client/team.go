package client

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Teams on a server: the caller's workspaces, members and roles,
// invitations and API keys (the /api/v1/workspaces, /workspace, /members,
// /invitations and /api-keys routes). What a call may do is decided by the
// role of the member the API key belongs to; a call the role may not make
// is EFORBIDDEN.

// UserWorkspace is a workspace the caller's user belongs to.
type UserWorkspace struct {
	ID   string         `json:"id"`
	Name string         `json:"name"`
	Role agentkeys.Role `json:"role"`
}

// Member is a user's membership of the workspace.
type Member struct {
	UserID   string         `json:"userId"`
	Email    string         `json:"email"`
	Role     agentkeys.Role `json:"role"`
	JoinedAt time.Time      `json:"joinedAt"`
}

// Invitation is a pending invitation. AcceptURL is set (in the answer that
// creates or re-sends it) when the server sent no email; EmailError says
// why a send failed.
type Invitation struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	Role       agentkeys.Role `json:"role"`
	CreatedAt  time.Time      `json:"createdAt"`
	SentAt     time.Time      `json:"sentAt"`
	ExpiresAt  time.Time      `json:"expiresAt"`
	AcceptURL  string         `json:"acceptUrl,omitempty"`
	EmailSent  bool           `json:"emailSent"`
	EmailError string         `json:"emailError,omitempty"`
}

// APIKey is a member's API key. Key is set only when it was just created or
// rotated (shown once).
type APIKey struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	UserID    string         `json:"userId"`
	Email     string         `json:"email"`
	Role      agentkeys.Role `json:"role"`
	CreatedAt time.Time      `json:"createdAt"`
	Key       string         `json:"key,omitempty"`
}

// WorkspaceInfo is the caller's workspace and role.
type WorkspaceInfo struct {
	Workspace struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Plan      string    `json:"plan"`
		CreatedAt time.Time `json:"createdAt"`
	} `json:"workspace"`
	Role agentkeys.Role `json:"role"`
	// User is the member the API key belongs to.
	User struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
}

// Workspaces lists the workspaces the caller's user belongs to
// (GET /api/v1/workspaces).
func (c *Client) Workspaces(ctx context.Context) ([]UserWorkspace, error) {
	var out struct {
		Workspaces []UserWorkspace `json:"workspaces"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/workspaces", nil, nil, &out)
	return out.Workspaces, err
}

// CreateWorkspace creates a workspace owned by the caller's user and returns
// it with a key for it (POST /api/v1/workspaces).
func (c *Client) CreateWorkspace(ctx context.Context, name string) (*SignupResult, error) {
	var out SignupResult
	if err := c.call(ctx, http.MethodPost, "/api/v1/workspaces", nil, map[string]string{"name": name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Workspace returns the caller's workspace and role (GET /api/v1/workspace).
func (c *Client) Workspace(ctx context.Context) (*WorkspaceInfo, error) {
	var out WorkspaceInfo
	if err := c.call(ctx, http.MethodGet, "/api/v1/workspace", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWorkspace deletes the caller's workspace; confirm must be its name
// (DELETE /api/v1/workspace). Owners only.
func (c *Client) DeleteWorkspace(ctx context.Context, confirm string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/workspace", nil, map[string]string{"confirm": confirm}, nil)
}

// Members lists the workspace's members (GET /api/v1/members).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/members", nil, nil, &out)
	return out.Members, err
}

// SetRole changes a member's role (PATCH /api/v1/members/{userId}).
func (c *Client) SetRole(ctx context.Context, userID string, role agentkeys.Role) (*Member, error) {
	p, ok := pathID(userID)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no member %q", userID)
	}
	var out Member
	if err := c.call(ctx, http.MethodPatch, "/api/v1/members/"+p, nil, map[string]string{"role": string(role)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveMember removes a member, or the caller itself (leaving)
// (DELETE /api/v1/members/{userId}).
func (c *Client) RemoveMember(ctx context.Context, userID string) error {
	p, ok := pathID(userID)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no member %q", userID)
	}
	return c.call(ctx, http.MethodDelete, "/api/v1/members/"+p, nil, nil, nil)
}

// Invitations lists the pending invitations (GET /api/v1/invitations).
func (c *Client) Invitations(ctx context.Context) ([]Invitation, error) {
	var out struct {
		Invitations []Invitation `json:"invitations"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/invitations", nil, nil, &out)
	return out.Invitations, err
}

// Invite invites email with role (POST /api/v1/invitations).
func (c *Client) Invite(ctx context.Context, email string, role agentkeys.Role) (*Invitation, error) {
	var out Invitation
	if err := c.call(ctx, http.MethodPost, "/api/v1/invitations", nil, map[string]string{"email": email, "role": string(role)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResendInvitation gives an invitation a new link and expiry
// (POST /api/v1/invitations/{id}/resend).
func (c *Client) ResendInvitation(ctx context.Context, id string) (*Invitation, error) {
	p, ok := pathID(id)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no invitation %q", id)
	}
	var out Invitation
	if err := c.call(ctx, http.MethodPost, "/api/v1/invitations/"+p+"/resend", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelInvitation cancels an invitation (DELETE /api/v1/invitations/{id}).
func (c *Client) CancelInvitation(ctx context.Context, id string) error {
	p, ok := pathID(id)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no invitation %q", id)
	}
	return c.call(ctx, http.MethodDelete, "/api/v1/invitations/"+p, nil, nil, nil)
}

// APIKeys lists every member's keys, never their values (GET /api/v1/api-keys).
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		APIKeys []APIKey `json:"apiKeys"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/api-keys", nil, nil, &out)
	return out.APIKeys, err
}

// CreateAPIKey makes a key for the caller's membership; its value is in
// the answer only (POST /api/v1/api-keys).
func (c *Client) CreateAPIKey(ctx context.Context, name string) (*APIKey, error) {
	var out APIKey
	if err := c.call(ctx, http.MethodPost, "/api/v1/api-keys", nil, map[string]string{"name": name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateAPIKey replaces one of the caller's keys; the new value is in the
// answer only, the old one stops working (POST /api/v1/api-keys/{id}/rotate).
func (c *Client) RotateAPIKey(ctx context.Context, id string) (*APIKey, error) {
	p, ok := pathID(id)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no API key %q", id)
	}
	var out APIKey
	if err := c.call(ctx, http.MethodPost, "/api/v1/api-keys/"+p+"/rotate", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeAPIKey revokes a key (DELETE /api/v1/api-keys/{id}).
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	p, ok := pathID(id)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no API key %q", id)
	}
	return c.call(ctx, http.MethodDelete, "/api/v1/api-keys/"+p, nil, nil, nil)
}

// LoginInput is what POST /api/v1/login takes.
type LoginInput struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	WorkspaceID string `json:"workspaceId,omitempty"` // with it, the answer carries an API key for that workspace
	KeyName     string `json:"keyName,omitempty"`
}

// LoginResult is the answer to a login: the user's workspaces, or the one
// asked for with a new API key (shown once).
type LoginResult struct {
	User struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
	Workspaces []UserWorkspace `json:"workspaces"`
	Workspace  *UserWorkspace  `json:"workspace"`
	APIKey     string          `json:"apiKey"`
}

// Login checks an email and password on the server at cfg.BaseURL (no API
// key needed). Returns EUNAUTHORIZED "wrong email or password", ERATELIMIT
// when throttled. The password never appears in an error.
func Login(ctx context.Context, cfg Config, in LoginInput) (*LoginResult, error) {
	var out LoginResult
	if err := publicCall(ctx, cfg, "/api/v1/login", &in, &out, in.Password); err != nil {
		return nil, err
	}
	return &out, nil
}

// Accepted is the answer to accepting an invitation: the workspace joined
// and an API key for the membership (shown once).
type Accepted struct {
	Workspace UserWorkspace `json:"workspace"`
	UserID    string        `json:"userId"`
	Email     string        `json:"email"`
	APIKey    string        `json:"apiKey"`
}

// AcceptInvitation accepts an invitation token on the server at
// cfg.BaseURL: a new user sets password, an existing one gives theirs.
func AcceptInvitation(ctx context.Context, cfg Config, token, password string) (*Accepted, error) {
	var out Accepted
	in := map[string]string{"token": token, "password": password}
	if err := publicCall(ctx, cfg, "/api/v1/invitations/accept", in, &out, password, token); err != nil {
		return nil, err
	}
	if !agentkeys.IsWorkspaceKey(out.APIKey) {
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "the server answered without an API key: is it an agentkeys server?")
	}
	return &out, nil
}

// publicCall POSTs in to a route that needs no API key and decodes a 2xx
// answer into out; secrets are scrubbed from any error message.
func publicCall(ctx context.Context, cfg Config, path string, in, out any, secrets ...string) error {
	base, host, err := parseBaseURL(cfg.BaseURL, cfg.AllowInsecureHTTP)
	if err != nil {
		return err
	}
	c := &Client{base: base, host: host, hc: httpClient(cfg.HTTPClient), ua: userAgent(cfg.UserAgent)}
	r, err := c.newRequest(ctx, http.MethodPost, path, nil, in)
	if err != nil {
		return err
	}
	r.Header.Del("Authorization")
	resp, err := c.hc.Do(r)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := c.responseError(resp).(*agentkeys.Error)
		for _, s := range secrets {
			if s != "" {
				e.Message = strings.ReplaceAll(e.Message, s, "REDACTED")
			}
		}
		return e
	}
	if err := decodeJSON(resp, out); err != nil {
		return agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s sent an answer that is not the expected JSON: is it an agentkeys server?", host)
	}
	return nil
}
