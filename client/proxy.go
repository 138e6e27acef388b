package client

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Proxy implements agentkeys.Vault: one request through the server's hosted
// proxy, {BaseURL}/v1/proxy. The token is req.Token (a pxr_ proxy token, or
// an ak_ws_ key with req.CredentialName); when req.Token is "", the client's
// own workspace key is used with req.CredentialName, which is then required.
//
// The request body streams to the server as it is read, and the response
// body streams back as it arrives (the caller closes it). Answers the proxy
// made itself — they carry the X-Agentkeys-Error header, which the proxy
// strips from every upstream answer — come back as *agentkeys.Error with the
// protocol's codes (EUNAUTHORIZED, EINVALID, ENOTFOUND, EDESTINATION,
// ETOOLARGE, ERATELIMIT, EUPSTREAM, ETIMEOUT); every other answer, whatever
// its status, is the upstream's and is returned as the *http.Response.
// Redirects are returned, never followed. A server that cannot be reached
// is EUNAVAILABLE; a cancelled ctx returns ctx.Err().
func (c *Client) Proxy(ctx context.Context, req *agentkeys.ProxyRequest) (*http.Response, error) {
	if req == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no request given")
	}
	token, name := req.Token, strings.TrimSpace(req.CredentialName)
	if token == "" {
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential name: say which credential to use")
		}
		token = c.key
	}
	if !headerSafe(token) {
		// It could not travel in a header; it is no token we issued.
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "not a proxy token (pxr_…) or workspace key (ak_ws_…)")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	// The inbound method is the target's whenever it can be (so HEAD gets a
	// HEAD's framing); odd methods travel only in X-Target-Method, where the
	// server validates them like any agent's.
	inbound := method
	if !isToken(method) || method == http.MethodConnect {
		inbound = http.MethodPost
	}
	body := req.Body
	if body != nil {
		if rc, ok := body.(io.ReadCloser); ok {
			// The transport closes the request body; the caller owns it.
			body = io.NopCloser(rc)
		}
	}
	r, err := http.NewRequestWithContext(ctx, inbound, c.proxyURL, body)
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "bad proxy request")
	}
	if body != nil && r.GetBody == nil {
		r.ContentLength = -1 // unknown length: stream it
	}
	for k, vv := range req.Header {
		ck := http.CanonicalHeaderKey(k)
		for _, v := range vv {
			if !headerSafe(v) {
				return nil, agentkeys.Errorf(agentkeys.EINVALID, "request header %s contains a line break or NUL byte", ck)
			}
		}
		r.Header[ck] = append(r.Header[ck], vv...)
	}
	for _, h := range []string{"Authorization", agentkeys.HeaderCredentialName, agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod} {
		r.Header.Del(h)
	}
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", c.ua)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	if req.URL != "" {
		if !headerSafe(req.URL) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "target URL contains a control character")
		}
		r.Header.Set(agentkeys.HeaderTargetURL, req.URL)
	}
	if !headerSafe(method) {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "method contains a control character")
	}
	r.Header.Set(agentkeys.HeaderTargetMethod, method)
	if name != "" {
		if !headerSafe(name) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "credential name contains a control character")
		}
		r.Header.Set(agentkeys.HeaderCredentialName, name)
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.Header.Get(agentkeys.HeaderError) != "" {
		defer resp.Body.Close()
		e := c.responseError(resp).(*agentkeys.Error)
		if token != c.key {
			e.Message = strings.ReplaceAll(e.Message, token, "REDACTED")
		}
		return nil, e
	}
	return resp, nil
}

// headerSafe reports whether s can be a header value as given: no CR, LF,
// NUL or other control byte except tab.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether m is an RFC 9110 token (a valid method).
func isToken(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		ch := m[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(ch)) {
			return false
		}
	}
	return true
}
