// Package client is the Go SDK for agentkeys: agent code calls APIs through
// the proxy with NewProxy, and people and programs manage a server's
// workspace with New — its REST API (/api/v1) and its hosted proxy
// (/v1/proxy).
//
// # Agent code: NewProxy
//
// An agent holds a pxr_ proxy token (or a workspace key and a credential
// name), never the credential. NewProxy returns a *ProxyClient: an
// http.Client (&pc.Client where one is wanted) whose every request goes to
// `agentkeys up` or a server's /v1/proxy; the request's URL is the target,
// and the proxy adds the credential:
//
//	hc, err := client.NewProxy("", "") // AGENTKEYS_API_KEY or AGENTKEYS_PROXY_TOKEN_*, AGENTKEYS_PROXY_URL
//	resp, err := hc.Get("https://api.stripe.com/v1/balance")
//
// With a workspace key, For("stripe") names the credential. An upstream's
// 4xx/5xx is an ordinary response; an answer the proxy made itself (a bad
// token, a host off the allowlist, an unreachable upstream) is a *ProxyError
// with the protocol's code. The TypeScript (@agentkeys-io/sdk) and Python
// (agentkeys) SDKs in sdk/ behave the same: sdk/cases.json is their shared
// contract, run by this package's tests too.
//
// # Webhooks
//
// VerifyWebhook checks the seed's X-AgentKeys-Signature (hex HMAC-SHA256 of
// the raw body); VerifyStandardWebhook checks a Standard Webhooks delivery.
//
// # Managing a workspace: New
//
// A *Client implements agentkeys.Vault, so the CLI, the TUI and the MCP
// server work on a server's workspace exactly as they work on the local
// vault. Every method maps to one documented route. Errors the server reports
// ({"error","code","status"}) come back as *agentkeys.Error with the server's
// code (or, when the body carries none, the code for the HTTP status);
// failures to reach the server are EUNAVAILABLE. No error message, log line
// or String form ever contains the API key.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server's address, such as https://app.agentkeys.io
	// (the seed's "apiUrl"). A trailing slash or "/api/v1" is ignored.
	// It must be https://, or http:// to a loopback host; plain http to any
	// other host needs AllowInsecureHTTP, because the API key would cross
	// the network in clear text.
	BaseURL string
	// APIKey is the workspace key (ak_ws_…) sent as Authorization: Bearer.
	APIKey string
	// HTTPClient sends the requests; nil means a client with connection,
	// TLS and response-header timeouts but no overall timeout (proxied
	// streams may be long). Redirects are never followed, whatever the
	// client given: an upstream's redirect is returned to the caller, and the
	// API key is never re-sent to another address.
	HTTPClient *http.Client
	// UserAgent is sent with every request; "" means DefaultUserAgent.
	UserAgent string
	// AllowInsecureHTTP permits an http:// BaseURL on a non-loopback host.
	AllowInsecureHTTP bool
}

// Client talks to one agentkeys server with one workspace key. It is safe
// for concurrent use.
type Client struct {
	base     string // scheme://host[:port][/prefix], no trailing slash
	host     string // for messages
	key      string
	hc       *http.Client
	ua       string
	proxyURL string
}

var _ agentkeys.Vault = (*Client)(nil)

// DefaultUserAgent is sent when Config.UserAgent is empty:
// "agentkeys/<version>", the version of this module in the program's build
// ("dev" when the build recorded none).
var DefaultUserAgent = version.UserAgent()

// maxResponseBytes caps a JSON answer of the REST API (a list of 10,000
// credentials is a few MiB).
const maxResponseBytes = 64 << 20

// maxErrorBytes caps an error body read to build a message.
const maxErrorBytes = 64 << 10

// New returns a Client for cfg. Returns EINVALID when the base URL is not an
// absolute http(s) URL (or is plain http to a non-loopback host without
// AllowInsecureHTTP), or when the API key is missing or not an ak_ws_ key.
// New makes no request: call Status to check the key.
func New(cfg Config) (*Client, error) {
	base, host, err := parseBaseURL(cfg.BaseURL, cfg.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	key := strings.TrimSpace(cfg.APIKey)
	switch {
	case key == "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing API key: give the workspace key (ak_ws_…)")
	case !agentkeys.IsWorkspaceKey(key) || strings.ContainsAny(key, " \t\r\n\x00"):
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the API key is not a workspace key: it must start with ak_ws_ (a pxr_ proxy token only works with the proxy)")
	}
	return &Client{
		base:     base,
		host:     host,
		key:      key,
		hc:       httpClient(cfg.HTTPClient),
		ua:       userAgent(cfg.UserAgent),
		proxyURL: base + "/v1/proxy",
	}, nil
}

// BaseURL returns the server's address as the client uses it (no trailing
// slash, no /api/v1).
func (c *Client) BaseURL() string { return c.base }

// String describes the client without its key.
func (c *Client) String() string { return "agentkeys client for " + c.base }

// Close releases idle connections. The Client stays usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// parseBaseURL validates and normalises a server address.
func parseBaseURL(raw string, allowHTTP bool) (base, host string, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", agentkeys.Errorf(agentkeys.EINVALID, "missing server URL: give one such as https://agentkeys.example.com")
	}
	u, perr := url.Parse(s)
	switch {
	case perr != nil || u.Host == "" || u.Opaque != "":
		return "", "", agentkeys.Errorf(agentkeys.EINVALID, "server URL %q is not a full URL such as https://agentkeys.example.com", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return "", "", agentkeys.Errorf(agentkeys.EINVALID, "server URL must start with https:// (got scheme %q)", u.Scheme)
	case u.User != nil:
		return "", "", agentkeys.Errorf(agentkeys.EINVALID, "server URL may not contain user info (user@host): the API key is sent in a header")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", "", agentkeys.Errorf(agentkeys.EINVALID, "server URL may not have a query or fragment")
	}
	if u.Scheme == "http" && !allowHTTP && !agentkeys.IsLoopbackHost(u.Hostname()) {
		return "", "", agentkeys.Errorf(agentkeys.EINVALID,
			"server URL %s uses plain http to a host that is not this machine: the API key would cross the network unencrypted; use https://", u.Scheme+"://"+u.Host)
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	path = strings.TrimSuffix(path, "/api/v1")
	return u.Scheme + "://" + u.Host + path, u.Host, nil
}

func userAgent(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "\r\n\x00") {
		return DefaultUserAgent
	}
	return s
}

// httpClient returns a copy of hc (or a default client) that never follows
// redirects.
func httpClient(hc *http.Client) *http.Client {
	var out http.Client
	if hc != nil {
		out = *hc
	} else {
		out.Transport = defaultTransport()
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// defaultTransport is tuned for many requests to one server. Compression is
// off so a proxied request reaches the upstream with the agent's headers
// only (no Accept-Encoding added on its behalf) and the answer comes back
// as the upstream sent it.
func defaultTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.TLSHandshakeTimeout = 10 * time.Second
	// The hosted proxy waits up to 60s for an upstream's header; leave it
	// room to answer with its own 504 first.
	tr.ResponseHeaderTimeout = 90 * time.Second
	tr.DisableCompression = true
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return tr
}

// newRequest builds a request to the REST API with the key and a JSON body.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	r, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "bad request to %s", c.host)
	}
	r.Header.Set("Authorization", "Bearer "+c.key)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", c.ua)
	if in != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r, nil
}

// call sends one REST request and decodes a 2xx JSON answer into out (when
// out is not nil). Any other answer becomes an *agentkeys.Error.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	r, err := c.newRequest(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.responseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		return nil
	}
	if err := decodeJSON(resp, out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s sent an answer that is not the expected JSON (%s %s): is it an agentkeys server?", c.host, method, path)
	}
	return nil
}

// decodeJSON decodes a JSON answer of at most maxResponseBytes.
func decodeJSON(resp *http.Response, out any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out)
}

// responseError turns a non-2xx answer into an *agentkeys.Error: the code
// from the body, else from the X-Agentkeys-Error header, else the code for
// the HTTP status. It reads (and the caller closes) the body.
func (c *Client) responseError(resp *http.Response) error {
	var body agentkeys.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	_ = json.Unmarshal(raw, &body)
	code := strings.TrimSpace(body.Code)
	if !validCode(code) {
		code = strings.TrimSpace(resp.Header.Get(agentkeys.HeaderError))
	}
	if !validCode(code) {
		code = agentkeys.CodeForStatus(resp.StatusCode)
	}
	msg := strings.TrimSpace(body.Error)
	if msg == "" {
		msg = fmt.Sprintf("the server at %s answered %s", c.host, statusText(resp.StatusCode))
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += ": check the server URL (it must point at the agentkeys server itself)"
		}
	}
	if code == agentkeys.ERATELIMIT {
		if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" && len(ra) < 40 && !strings.Contains(msg, "retry") {
			msg += " (retry after " + ra + "s)"
		}
	}
	return &agentkeys.Error{Code: code, Message: c.scrub(msg)}
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("%d %s", status, t)
	}
	return fmt.Sprint(status)
}

// validCode accepts codes that look like ours: upper-case letters and '_',
// at most 64 bytes. Anything else from the wire is ignored.
func validCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if !(code[i] >= 'A' && code[i] <= 'Z' || code[i] == '_') {
			return false
		}
	}
	return true
}

// scrub removes the API key from a text that came from the wire, in case a
// misbehaving server echoed it.
func (c *Client) scrub(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "REDACTED")
}

// transportError describes a failure to get an answer at all. It never
// quotes the underlying error, whose text may hold the request URL.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot reach the agentkeys server at %s: %s", c.host, describe(err))
}

// describe classifies a transport error in words that hold no URL.
func describe(err error) string {
	var (
		dnsErr *net.DNSError
		verify *tls.CertificateVerificationError
		recHdr tls.RecordHeaderError
		opErr  *net.OpError
		ne     net.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		return "host name not found"
	case errors.As(err, &verify):
		return "TLS certificate not trusted"
	case errors.As(err, &recHdr):
		return "TLS handshake failed (is it an http:// server?)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is `agentkeys serve` running there?)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connection failed"
	}
	return "request failed"
}

// pathID escapes an id for a URL path. Ids are letters, digits, '_' and
// '-'; anything else cannot name a row, so ok is false (the caller answers
// ENOTFOUND without a request).
func pathID(id string) (string, bool) {
	if id == "" || len(id) > 200 {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			return "", false
		}
	}
	return url.PathEscape(id), true
}
