package client

import (
	"context"
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Status implements agentkeys.Vault: GET /api/v1/workspace/status (the
// seed's {"workspace": {...}}), with Mode "remote" and Location the server's
// URL filled in. Returns EUNAUTHORIZED for a wrong or revoked key; it is
// what `agentkeys login` calls to check a key.
func (c *Client) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	var out struct {
		Workspace *agentkeys.WorkspaceStatus `json:"workspace"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/workspace/status", nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Workspace == nil || out.Workspace.ID == "" {
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s sent a workspace status without a workspace: is it an agentkeys server?", c.host)
	}
	st := out.Workspace
	st.Mode = agentkeys.ModeRemote
	st.Location = c.base
	st.KeySource = ""
	return st, nil
}

// SignupInput is what POST /api/v1/signup takes.
type SignupInput struct {
	Email     string `json:"email"`
	Password  string `json:"password"`
	Workspace string `json:"workspace"` // the new workspace's name
}

// SignupResult is the answer to a sign-up: the new workspace and its API
// key, which the server shows this once.
type SignupResult struct {
	Workspace struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"workspace"`
	APIKey string `json:"apiKey"`
}

// Signup creates an account and a workspace on the server at cfg.BaseURL
// (cfg.APIKey is not needed and not sent) and returns the workspace's API
// key. Returns EFORBIDDEN when the server's sign-up is closed, ECONFLICT for
// a taken e-mail address, EINVALID for bad input. Neither the password nor
// the new key appears in any error.
func Signup(ctx context.Context, cfg Config, in SignupInput) (*SignupResult, error) {
	base, host, err := parseBaseURL(cfg.BaseURL, cfg.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, host: host, hc: httpClient(cfg.HTTPClient), ua: userAgent(cfg.UserAgent)}
	r, err := c.newRequest(ctx, http.MethodPost, "/api/v1/signup", nil, &in)
	if err != nil {
		return nil, err
	}
	r.Header.Del("Authorization")
	resp, err := c.hc.Do(r)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := c.responseError(resp).(*agentkeys.Error)
		if in.Password != "" {
			e.Message = strings.ReplaceAll(e.Message, in.Password, "REDACTED")
		}
		return nil, e
	}
	var out SignupResult
	if err := decodeJSON(resp, &out); err != nil || !agentkeys.IsWorkspaceKey(out.APIKey) {
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s answered the sign-up without a workspace key: is it an agentkeys server?", host)
	}
	return &out, nil
}
