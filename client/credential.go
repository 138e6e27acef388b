package client

import (
	"context"
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// credentialsPath is the REST collection of credentials.
const credentialsPath = "/api/v1/credentials"

// ListCredentials implements agentkeys.CredentialService: GET
// /api/v1/credentials. The server orders them by name.
func (c *Client) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	var out struct {
		Credentials []*agentkeys.Credential `json:"credentials"`
	}
	if err := c.call(ctx, http.MethodGet, credentialsPath, nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Credentials == nil {
		out.Credentials = []*agentkeys.Credential{}
	}
	return out.Credentials, nil
}

// FindCredential implements agentkeys.CredentialService: GET
// /api/v1/credentials/{id} when ref has an id's form, else (or when no
// credential has that id) the list, matched by name case-insensitively.
// A CUSTOM_HEADER or QUERY_PARAM credential found in the list is then read
// by id, for the header or parameter names the list leaves out. Returns
// ENOTFOUND otherwise.
func (c *Client) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "cred_") {
		cred, err := c.credentialByID(ctx, ref)
		if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
			return cred, err
		}
	}
	if ref != "" {
		list, err := c.ListCredentials(ctx)
		if err != nil {
			return nil, err
		}
		for _, cred := range list {
			if strings.EqualFold(cred.Name, ref) {
				if cred.Type.HasInjectedNames() {
					return c.credentialByID(ctx, cred.ID)
				}
				return cred, nil
			}
		}
	}
	return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id or name %q: see `agentkeys credentials list`", ref)
}

// credentialByID is GET /api/v1/credentials/{id}. Returns ENOTFOUND for an
// id no credential has, or that cannot be one.
func (c *Client) credentialByID(ctx context.Context, id string) (*agentkeys.Credential, error) {
	p, ok := pathID(id)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
	}
	var cred agentkeys.Credential
	if err := c.call(ctx, http.MethodGet, credentialsPath+"/"+p, nil, nil, &cred); err != nil {
		return nil, err
	}
	return &cred, nil
}

// CreateCredential implements agentkeys.CredentialService: POST
// /api/v1/credentials. The server normalises and validates the input
// exactly as the local vault does (agentkeys.CredentialInput.Normalize), so
// the errors are the same: EINVALID, ECONFLICT. A missing or unknown type
// is refused here, before anything is sent. Secret.RefreshToken and
// Secret.ExpiresAt are not sent: the REST API has no fields for them yet.
func (c *Client) CreateCredential(ctx context.Context, in *agentkeys.CredentialInput) (*agentkeys.Credential, error) {
	if in == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential")
	}
	// The server refuses a missing type too (400); checking here saves the
	// round trip and keeps the value off the wire for a request bound to fail.
	if _, err := agentkeys.ParseCredentialType(string(in.Type)); err != nil {
		return nil, err
	}
	if in.ExpiresAt != nil {
		if err := agentkeys.CheckExpiry(*in.ExpiresAt); err != nil {
			return nil, err
		}
	}
	body := agentkeys.CredentialRequest{
		Name:         in.Name,
		Type:         string(in.Type),
		Value:        in.Secret.Value,
		AllowedHosts: in.AllowedHosts,
		Service:      in.Service,
		Username:     in.Secret.Username,
		Password:     in.Secret.Password,
		Headers:      in.Secret.Headers,
		Param:        in.Secret.Param,
		RawResponses: in.Secret.RawResponses,
		ExpiresAt:    in.ExpiresAt,
	}
	var cred agentkeys.Credential
	if err := c.call(ctx, http.MethodPost, credentialsPath, nil, &body, &cred); err != nil {
		return nil, err
	}
	return &cred, nil
}

// UpdateCredential implements agentkeys.CredentialService: PATCH
// /api/v1/credentials/{id} with only the parts that change. A non-nil empty
// AllowedHosts is sent as [] (and refused by the server with EINVALID); a
// Secret replaces the whole value, so all its fields are sent.
func (c *Client) UpdateCredential(ctx context.Context, id string, upd *agentkeys.CredentialUpdate) (*agentkeys.Credential, error) {
	p, ok := pathID(id)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
	}
	var body agentkeys.CredentialPatch
	if upd != nil {
		body.Name = upd.Name
		if upd.AllowedHosts != nil {
			body.AllowedHosts = &upd.AllowedHosts
		}
		if upd.ExpiresAt != nil {
			body.ExpiresAt = agentkeys.OptionalTime{Set: true} // a zero time clears the expiry: null
			if !upd.ExpiresAt.IsZero() {
				if err := agentkeys.CheckExpiry(*upd.ExpiresAt); err != nil {
					return nil, err
				}
				t := upd.ExpiresAt.UTC()
				body.ExpiresAt.Time = &t
			}
		}
		if s := upd.Secret; s != nil {
			// The value is always present so that an empty Secret is a
			// (refused) value change, not "no change".
			body.Value = &s.Value
			if s.Username != "" {
				body.Username = &s.Username
			}
			if s.Password != "" {
				body.Password = &s.Password
			}
			if len(s.Headers) > 0 {
				body.Headers = &s.Headers
			}
			if s.Param != "" {
				body.Param = &s.Param
			}
		}
	}
	var cred agentkeys.Credential
	if err := c.call(ctx, http.MethodPatch, credentialsPath+"/"+p, nil, &body, &cred); err != nil {
		return nil, err
	}
	return &cred, nil
}

// DeleteCredential implements agentkeys.CredentialService: DELETE
// /api/v1/credentials/{id}. Returns ENOTFOUND for an unknown id.
func (c *Client) DeleteCredential(ctx context.Context, id string) error {
	p, ok := pathID(id)
	if !ok {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id %q: see `agentkeys credentials list`", id)
	}
	return c.call(ctx, http.MethodDelete, credentialsPath+"/"+p, nil, nil, nil)
}
