package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Redacted replaces a credential value that an upstream echoed back in a
// proxy_request response (some APIs repeat the key they were sent in an
// error message, debugging endpoints echo every header).
const Redacted = "[REDACTED by agentkeys]"

// minRedactLen is the shortest value redacted: shorter values are too likely
// to be ordinary text, and replacing them would garble the response while
// hiding little.
const minRedactLen = 6

// responseSecrets returns the strings of the request's credential that must
// not reach the model: each value as injected, and its encodings on the
// wire (base64 of user:password, the URL-escaped query value). ok is false
// when the vault cannot say (it does not expose agentkeys.ProxyBackend, as
// a remote workspace does not); err is set when it should but failed.
func (s *Server) responseSecrets(ctx context.Context, req *agentkeys.ProxyRequest) (secrets []string, ok bool, err error) {
	pb, isBackend := s.vault.(agentkeys.ProxyBackend)
	if !isBackend {
		return nil, false, nil
	}
	var route *agentkeys.Route
	if req.Token == "" {
		route, err = pb.RouteByName(ctx, req.CredentialName)
	} else {
		route, err = pb.Authorize(ctx, req.Token, req.CredentialName)
	}
	if err != nil {
		return nil, true, err
	}
	sec, err := pb.OpenSecret(ctx, route)
	if err != nil {
		return nil, true, err
	}
	var out []string
	add := func(v string) {
		if len(v) >= minRedactLen {
			out = append(out, v)
		}
	}
	add(sec.Value)
	add(url.QueryEscape(sec.Value))
	add(sec.Password)
	add(sec.RefreshToken)
	if sec.Username != "" || sec.Password != "" {
		add(base64.StdEncoding.EncodeToString([]byte(sec.Username + ":" + sec.Password)))
	}
	for _, h := range sec.Headers {
		add(h.Value)
	}
	if route.Credential != nil && route.Credential.Type == agentkeys.Cookie {
		for _, part := range strings.Split(sec.Value, ";") {
			if _, v, found := strings.Cut(part, "="); found {
				add(strings.TrimSpace(v))
			}
		}
	}
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, true, nil
}

// redactBytes replaces every secret in b, and, when the body was cut off,
// a tail that is the start of a secret. It returns the count replaced.
func redactBytes(b []byte, secrets []string, truncated bool) ([]byte, int) {
	n := 0
	for _, s := range secrets {
		if c := bytes.Count(b, []byte(s)); c > 0 {
			n += c
			b = bytes.ReplaceAll(b, []byte(s), []byte(Redacted))
		}
	}
	if truncated {
		for _, s := range secrets {
			for k := len(s) - 1; k >= 4; k-- {
				if bytes.HasSuffix(b, []byte(s[:k])) {
					b = append(b[:len(b)-k:len(b)-k], Redacted...)
					n++
					break
				}
			}
		}
	}
	return b, n
}

// redactHeader replaces secrets in every header value, in place.
func redactHeader(h http.Header, secrets []string) int {
	n := 0
	for k, vs := range h {
		for i, v := range vs {
			for _, s := range secrets {
				if c := strings.Count(v, s); c > 0 {
					n += c
					v = strings.ReplaceAll(v, s, Redacted)
				}
			}
			h[k][i] = v
		}
	}
	return n
}
