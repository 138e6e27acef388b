package client

import (
	"context"
	"net/http"
	"net/url"
)

// StartOAuth starts OAuth Connect on the server: POST
// /api/v1/oauth/{provider}/start. It returns the URL to open in a browser;
// once the person approves, the server stores the OAUTH credential name in
// the workspace (FindCredential then finds it). Returns EINVALID for an
// unknown provider or a bad name, ENOTFOUND when the server has no app for
// the provider, ECONFLICT when name is taken by a credential of another
// type.
func (c *Client) StartOAuth(ctx context.Context, provider, name string, scopes []string) (string, error) {
	in := map[string]any{"name": name}
	if len(scopes) > 0 {
		in["scopes"] = scopes
	}
	var out struct {
		AuthorizeURL string `json:"authorizeUrl"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/oauth/"+url.PathEscape(provider)+"/start", nil, in, &out); err != nil {
		return "", err
	}
	return out.AuthorizeURL, nil
}
