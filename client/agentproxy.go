package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// DefaultProxyURL is where `agentkeys up` listens by default.
const DefaultProxyURL = "http://127.0.0.1:8787"

// ProxyClient is an *http.Client for agent code: every request it sends
// goes to the agentkeys proxy's /v1/proxy, which checks the token, checks
// the request's URL against the credential's allowlist, injects the
// credential and streams the upstream's answer back. Use it as any
// http.Client (Do, Get, Post, Head, PostForm); the request's URL is the
// target, never the proxy.
//
// Like the TypeScript and Python SDKs: an upstream's 4xx/5xx is a normal
// response; redirects are returned, not followed; an answer the proxy made
// itself (X-Agentkeys-Error) is a *ProxyError, which http.Client wraps in a
// *url.Error (errors.As finds it, and agentkeys.ErrorCode gives its code).
// A proxy that cannot be reached is EUNAVAILABLE.
type ProxyClient struct {
	http.Client
	rt *proxyTransport
}

// NewProxy returns a ProxyClient for token and proxyURL.
//
// token is a proxy token (pxr_…, one credential) or a workspace key
// (ak_ws_…, any credential by name: call For, or set X-Credential-Name on
// the request); "" means AGENTKEYS_API_KEY, then the first
// AGENTKEYS_PROXY_TOKEN_* variable by name. proxyURL is the proxy's address
// (`agentkeys up`'s http://127.0.0.1:8787, or a server's
// https://agentkeys.example.com); /v1/proxy is added unless it ends with it;
// "" means AGENTKEYS_PROXY_URL, then DefaultProxyURL. Returns EINVALID when
// there is no token or the URL is not an absolute http(s) URL. NewProxy makes
// no request.
func NewProxy(token, proxyURL string) (*ProxyClient, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		token = envToken()
	}
	switch {
	case token == "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing token: give a pxr_… proxy token or an ak_ws_… workspace key, or set AGENTKEYS_API_KEY or AGENTKEYS_PROXY_TOKEN_<NAME>")
	case !headerSafe(token):
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the token contains a control character: copy it again")
	}
	if strings.TrimSpace(proxyURL) == "" {
		proxyURL = strings.TrimSpace(os.Getenv("AGENTKEYS_PROXY_URL"))
	}
	if proxyURL == "" {
		proxyURL = DefaultProxyURL
	}
	endpoint, err := proxyEndpoint(proxyURL)
	if err != nil {
		return nil, err
	}
	return newProxyClient(&proxyTransport{token: token, endpoint: endpoint, base: defaultTransport()}), nil
}

func newProxyClient(rt *proxyTransport) *ProxyClient {
	p := &ProxyClient{rt: rt}
	p.Client.Transport = rt
	p.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return p
}

// For returns a ProxyClient that names credential in every request (needed
// with a workspace key; ignored with a proxy token, which names its own). It
// shares p's connections.
func (p *ProxyClient) For(credential string) *ProxyClient {
	rt := *p.rt
	rt.credential = strings.TrimSpace(credential)
	return newProxyClient(&rt)
}

// ProxyURL returns the endpoint requests go to (…/v1/proxy).
func (p *ProxyClient) ProxyURL() string { return p.rt.endpoint }

// String describes the client without its token.
func (p *ProxyClient) String() string { return "agentkeys proxy client for " + p.rt.endpoint }

// ProxyError is an answer the agentkeys proxy made itself: Code is one of the
// protocol's codes (agentkeys.EUNAUTHORIZED, EDESTINATION, ENOTFOUND, …),
// Status the HTTP status, RequestID its X-Agentkeys-Request-Id.
type ProxyError struct {
	Code      string
	Status    int
	Message   string
	RequestID string
}

// Error implements error.
func (e *ProxyError) Error() string { return e.Message }

// Unwrap returns the *agentkeys.Error with the same code and message, so
// agentkeys.ErrorCode and errors.As(err, **agentkeys.Error) work.
func (e *ProxyError) Unwrap() error { return &agentkeys.Error{Code: e.Code, Message: e.Message} }

// proxyTransport sends each request to the proxy endpoint, the request's URL
// and method in X-Target-Url and X-Target-Method.
type proxyTransport struct {
	token      string
	endpoint   string
	credential string
	base       http.RoundTripper
}

// ownHeaders are set by the transport; a caller's copies are dropped.
var ownHeaders = []string{"Authorization", agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod}

// RoundTrip implements http.RoundTripper.
func (t *proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := t.outbound(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot reach the agentkeys proxy at %s: %s (is `agentkeys up` running, and is AGENTKEYS_PROXY_URL right?)",
			hostOf(t.endpoint), describe(err))
	}
	if code := resp.Header.Get(agentkeys.HeaderError); code != "" {
		defer resp.Body.Close()
		return nil, t.proxyError(resp, code)
	}
	return resp, nil
}

// outbound builds the request to the proxy. It does not modify req.
func (t *proxyTransport) outbound(req *http.Request) (*http.Request, error) {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the request's URL must be an absolute http(s) URL: it is the target the proxy calls")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	inbound := method
	if !isToken(method) || method == http.MethodConnect {
		inbound = http.MethodPost
	}
	target := req.URL.String()
	if !headerSafe(target) || !headerSafe(method) {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the target URL or method contains a control character")
	}
	body := req.Body
	if body == nil {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(req.Context(), inbound, t.endpoint, body)
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "bad proxy request")
	}
	out.ContentLength = req.ContentLength
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength == 0 {
		out.ContentLength = -1 // unknown: stream it
	}
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	for _, h := range ownHeaders {
		out.Header.Del(h)
	}
	name := strings.TrimSpace(out.Header.Get(agentkeys.HeaderCredentialName))
	out.Header.Del(agentkeys.HeaderCredentialName)
	if t.credential != "" {
		name = t.credential
	}
	out.Header.Set("Authorization", "Bearer "+t.token)
	out.Header.Set(agentkeys.HeaderTargetURL, target)
	out.Header.Set(agentkeys.HeaderTargetMethod, method)
	if strings.HasPrefix(t.token, "ak_ws_") {
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential name: with a workspace key (ak_ws_…) use For(name) or set X-Credential-Name")
		}
		if !headerSafe(name) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "the credential name contains a control character")
		}
		out.Header.Set(agentkeys.HeaderCredentialName, name)
	}
	if out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", DefaultUserAgent)
	}
	return out, nil
}

// proxyError reads a proxy-made answer into a *ProxyError.
func (t *proxyTransport) proxyError(resp *http.Response, headerCode string) error {
	var body agentkeys.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	_ = json.Unmarshal(raw, &body)
	code := strings.TrimSpace(body.Code)
	if !validCode(code) {
		code = strings.TrimSpace(headerCode)
	}
	if !validCode(code) {
		code = agentkeys.CodeForStatus(resp.StatusCode)
	}
	msg := strings.TrimSpace(body.Error)
	if msg == "" {
		msg = fmt.Sprintf("the agentkeys proxy answered %s %s", statusText(resp.StatusCode), code)
	}
	msg = strings.ReplaceAll(msg, t.token, "REDACTED")
	return &ProxyError{Code: code, Status: resp.StatusCode, Message: msg, RequestID: resp.Header.Get(agentkeys.HeaderRequestID)}
}

// proxyEndpoint validates a proxy address and adds /v1/proxy.
func proxyEndpoint(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "", agentkeys.Errorf(agentkeys.EINVALID, "proxy URL %q is not a full URL such as http://127.0.0.1:8787", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", agentkeys.Errorf(agentkeys.EINVALID, "proxy URL must start with http:// or https:// (got scheme %q)", u.Scheme)
	case u.User != nil:
		return "", agentkeys.Errorf(agentkeys.EINVALID, "proxy URL may not contain user info (user@host): the token is sent in a header")
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if !strings.HasSuffix(path, "/v1/proxy") {
		path += "/v1/proxy"
	}
	return u.Scheme + "://" + u.Host + path, nil
}

func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Host
	}
	return endpoint
}

// envToken is AGENTKEYS_API_KEY, then the first AGENTKEYS_PROXY_TOKEN_* by name.
func envToken() string {
	if v := strings.TrimSpace(os.Getenv("AGENTKEYS_API_KEY")); v != "" {
		return v
	}
	var names []string
	for _, kv := range os.Environ() {
		if name, _, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "AGENTKEYS_PROXY_TOKEN_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}
