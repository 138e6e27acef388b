package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentkeys/agentkeys"
)

// Redacted is what the proxy puts in place of a credential value an
// upstream echoed back (agentkeys.RedactedEcho).
const Redacted = agentkeys.RedactedEcho

// completeMarker finishes a Redacted marker cut off at the end of body.
func completeMarker(body []byte) []byte {
	for k := len(Redacted) - 1; k >= 2; k-- {
		if bytes.HasSuffix(body, []byte(Redacted[:k])) {
			return append(body[:len(body):len(body)], Redacted[k:]...)
		}
	}
	return body
}

// proxyMethods are the methods proxy_request accepts.
var proxyMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func (s *Server) proxyRequestTool() toolDef {
	tool := mcp.NewTool(ToolProxyRequest,
		mcp.WithToolTitle("Proxied HTTP request"),
		mcp.WithDescription(fmt.Sprintf("Make an HTTP request through AgentKeys, which injects a stored credential (API key, cookie, basic auth, headers or query parameter) so you never handle the secret. "+
			"Name the credential with credentialName (see list_credentials), or pass a proxyToken (pxr_…) from assign_credential — exactly one of the two. "+
			"The URL must be a full https:// URL on one of the credential's allowed hosts (plain http only to loopback hosts listed exactly); do not add the credential yourself. "+
			"Returns the upstream's status, headers and body (text, or base64 when binary, see bodyEncoding). Bodies longer than %d bytes are cut off and truncated is true. "+
			"If the upstream echoes the credential back, it is replaced with "+Redacted+". "+
			"A 4xx/5xx status from the upstream is a normal result: read status and body.", s.maxBody)),
		annotations("Proxied HTTP request", false, true, false, true),
		mcp.WithString("url", mcp.Required(), mcp.MinLength(1),
			mcp.Description("Full target URL, e.g. https://api.resend.com/emails. Must be on the credential's allowed hosts.")),
		mcp.WithString("method", mcp.Enum(proxyMethods...), mcp.DefaultString("GET"),
			mcp.Description("HTTP method; GET when omitted.")),
		mcp.WithObject("headers", mcp.AdditionalProperties(obj{"type": "string"}),
			mcp.Description("Extra request headers, name → value, e.g. {\"Content-Type\": \"application/json\"}. Headers the credential sets are replaced by the injected ones.")),
		mcp.WithString("body", mcp.Description("Request body as text, e.g. a JSON document. Set Content-Type in headers.")),
		mcp.WithString("credentialName", mcp.Description("Name (or id) of the credential to inject, as shown by list_credentials. Give this or proxyToken.")),
		mcp.WithString("proxyToken", mcp.Description("A proxy token (pxr_…) from assign_credential; the request is made as that agent with that credential. Give this or credentialName.")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"status":       obj{"type": "integer", "description": "Upstream HTTP status code."},
			"headers":      obj{"type": "object", "additionalProperties": obj{"type": "string"}, "description": "Response headers; repeated headers joined with \", \"."},
			"body":         str("Response body: text, or base64 when bodyEncoding is \"base64\"."),
			"bodyEncoding": obj{"type": "string", "enum": []string{"text", "base64"}, "description": "\"text\" (UTF-8) or \"base64\" (binary body)."},
			"bodyBytes":    obj{"type": "integer", "description": "Bytes of body returned (before base64), at most the limit."},
			"truncated":    obj{"type": "boolean", "description": fmt.Sprintf("True when the body was longer than %d bytes (or did not finish in time) and was cut off.", s.maxBody)},
			"requestId":    str("AgentKeys request id, also in the audit log."),
			"redacted":     obj{"type": "integer", "description": "How many copies of the credential value the upstream echoed back and AgentKeys replaced with " + Redacted + " (absent when none)."},
		}, "status", "headers", "body", "bodyEncoding", "bodyBytes", "truncated"))),
	)
	return toolDef{tool: tool, handler: s.proxyRequest}
}

type proxyArgs struct {
	URL            string            `json:"url"`
	Method         string            `json:"method"`
	Headers        map[string]string `json:"headers"`
	Body           *string           `json:"body"`
	CredentialName string            `json:"credentialName"`
	ProxyToken     string            `json:"proxyToken"`
}

func (s *Server) proxyRequest(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args proxyArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	req, err := s.buildProxyRequest(ctx, &args)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, s.deadline)
	defer cancel()
	resp, err := s.vault.Proxy(callCtx, req)
	if err != nil {
		return nil, proxyError(err)
	}
	defer resp.Body.Close()

	body, truncated, err := readLimited(resp.Body, s.maxBody)
	if err != nil && len(body) == 0 && !errors.Is(err, context.DeadlineExceeded) {
		return nil, agentkeys.Errorf(agentkeys.EUPSTREAM, "the upstream answered %d but its body could not be read: retry the request", resp.StatusCode)
	}
	if err != nil {
		truncated = true // what arrived before the stream broke or the deadline
	}
	// The proxy has already replaced any echo of the credential, for every
	// backend (local, remote, one-off); count what it replaced, and finish a
	// replacement marker the size limit cut, so the model reads it whole.
	if truncated {
		body = completeMarker(body)
	}
	redacted := bytes.Count(body, []byte(Redacted))
	for _, vv := range resp.Header {
		for _, v := range vv {
			redacted += strings.Count(v, Redacted)
		}
	}
	out := proxyOut(resp, body, truncated)
	if redacted > 0 {
		out["redacted"] = redacted
	}
	return mcp.NewToolResultStructured(out, proxyText(out, s.maxBody)), nil
}

// buildProxyRequest validates the arguments and builds the ProxyRequest.
func (s *Server) buildProxyRequest(ctx context.Context, a *proxyArgs) (*agentkeys.ProxyRequest, error) {
	if strings.TrimSpace(a.URL) == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing url: give the full https:// URL to call, e.g. https://api.example.com/v1/things")
	}
	method := strings.ToUpper(strings.TrimSpace(a.Method))
	if method == "" {
		method = http.MethodGet
	}
	if !contains(proxyMethods, method) {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "method %q is not supported: use one of %s", a.Method, strings.Join(proxyMethods, ", "))
	}
	token := strings.TrimSpace(a.ProxyToken)
	name := strings.TrimSpace(a.CredentialName)
	switch {
	case token == "" && name == "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "say which credential to use: give credentialName (see list_credentials) or a proxyToken from assign_credential")
	case agentkeys.IsWorkspaceKey(token):
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "a workspace key (ak_ws_…) needs credentialName too")
		}
	case token != "" && name != "":
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "give either proxyToken or credentialName, not both: a proxy token already names its credential")
	case token != "" && !agentkeys.IsProxyToken(token):
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "proxyToken is not a proxy token (they start with pxr_): use the token assign_credential returned, or give credentialName instead")
	}
	if name != "" && token == "" && strings.HasPrefix(strings.ToLower(name), "cred_") {
		// Accept an id where a name is expected, as the CLI does; the proxy
		// itself routes by name. A plain name goes to the proxy as it is:
		// a lookup would open a CUSTOM_HEADER or QUERY_PARAM value for its
		// names (FindCredential) only for the proxy to open it again.
		if c, err := s.vault.FindCredential(ctx, name); err == nil {
			name = c.Name
		} else if agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND {
			return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential named %q: call list_credentials to see the names", name)
		} else {
			return nil, err
		}
	}
	header := http.Header{}
	for k, v := range a.Headers {
		if !validToken(k) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "header name %q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "header %s contains a line break or NUL byte", k)
		}
		header.Set(k, v)
	}
	req := &agentkeys.ProxyRequest{
		Token:          token,
		CredentialName: name,
		Method:         method,
		URL:            strings.TrimSpace(a.URL),
		Header:         header,
	}
	if a.Body != nil && *a.Body != "" {
		if method == http.MethodGet || method == http.MethodHead {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "a %s request cannot carry a body: use POST, PUT or PATCH", method)
		}
		req.Body = strings.NewReader(*a.Body)
	}
	return req, nil
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// proxyError adds what to do next to a proxy refusal. The proxy's messages
// never carry a credential value; anything that is not an *agentkeys.Error
// is reported generically (a *url.Error would print a query-parameter secret).
func proxyError(err error) error {
	var e *agentkeys.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.DeadlineExceeded) {
			return agentkeys.Errorf(agentkeys.ETIMEOUT, "the upstream did not answer in time: retry later")
		}
		if errors.Is(err, context.Canceled) {
			return agentkeys.Errorf(agentkeys.EUPSTREAM, "the request was cancelled")
		}
		return agentkeys.Errorf(agentkeys.EUPSTREAM, "the request could not be completed: check the URL and retry")
	}
	hint := map[string]string{
		agentkeys.EUNAUTHORIZED: "get a new proxy token with assign_credential, or use credentialName",
		agentkeys.EDESTINATION:  "call only the hosts list_credentials shows for this credential; to reach another host, the user must create a credential allowed on it",
		agentkeys.ENOTFOUND:     "call list_credentials to see the credential names",
		agentkeys.ETOOLARGE:     "send a smaller body",
		agentkeys.ERATELIMIT:    "wait and retry later",
		agentkeys.EUPSTREAM:     "check the URL and that the service is up, then retry",
		agentkeys.ETIMEOUT:      "retry later",
	}[e.Code]
	if e.Code == agentkeys.EDESTINATION && !strings.Contains(e.Message, "allowed hosts") {
		hint = "" // the message (https only) says what to do
	}
	if hint == "" || strings.Contains(e.Message, hint) {
		return e
	}
	return &agentkeys.Error{Code: e.Code, Message: strings.TrimRight(e.Message, ". ") + ": " + hint}
}

// readLimited reads up to limit bytes of r. truncated is true when more was
// there. err is a read error (other than EOF) that ended the body early.
func readLimited(r io.Reader, limit int) (body []byte, truncated bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(body) > limit {
		return body[:limit], true, nil
	}
	return body, false, err
}

// proxyOut shapes the upstream's answer; binary bodies become base64.
func proxyOut(resp *http.Response, body []byte, truncated bool) obj {
	headers := obj{}
	for k, v := range resp.Header {
		headers[k] = strings.Join(v, ", ")
	}
	encoding := "text"
	text := body
	if truncated {
		// Do not let the cut split a UTF-8 sequence into "binary".
		for i := 0; i < utf8.UTFMax && len(text) > 0 && !utf8.Valid(text); i++ {
			text = text[:len(text)-1]
		}
	}
	var bodyOut string
	if utf8.Valid(text) && !strings.ContainsRune(string(text), 0) {
		bodyOut = string(text)
		body = text
	} else {
		encoding = "base64"
		bodyOut = base64.StdEncoding.EncodeToString(body)
	}
	out := obj{
		"status":       resp.StatusCode,
		"headers":      headers,
		"body":         bodyOut,
		"bodyEncoding": encoding,
		"bodyBytes":    len(body),
		"truncated":    truncated,
	}
	if id := resp.Header.Get(agentkeys.HeaderRequestID); id != "" {
		out["requestId"] = id
	}
	return out
}

// proxyText is the text fallback: the response as a person reads it.
func proxyText(out obj, limit int) string {
	var b strings.Builder
	status := out["status"].(int)
	fmt.Fprintf(&b, "HTTP %d %s\n", status, http.StatusText(status))
	headers := out["headers"].(obj)
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\n", k, headers[k])
	}
	b.WriteString("\n")
	if out["bodyEncoding"] == "base64" {
		fmt.Fprintf(&b, "[binary body, %d bytes, base64]\n", out["bodyBytes"])
	}
	b.WriteString(out["body"].(string))
	if n, ok := out["redacted"].(int); ok {
		fmt.Fprintf(&b, "\n[the upstream echoed the credential value back %d time(s); AgentKeys replaced it with %s]", n, Redacted)
	}
	if out["truncated"].(bool) {
		if out["bodyBytes"].(int) >= limit-utf8.UTFMax {
			fmt.Fprintf(&b, "\n[body truncated at %d bytes]", limit)
		} else {
			b.WriteString("\n[body incomplete: the upstream did not finish sending it in time]")
		}
	}
	return b.String()
}
