package agentkeys

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// Inject puts the secret into req as its type says, replacing whatever the
// request carried under the same header, cookie or query parameter name, so
// the upstream sees exactly one value. It returns the names it set (for
// callers that must protect them from later removal).
func (s *Secret) Inject(t CredentialType, req *http.Request) []string {
	switch t {
	case APIKey, OAuth:
		setHeader(req.Header, "Authorization", "Bearer "+s.Value)
		return []string{"Authorization"}
	case BasicAuth:
		setHeader(req.Header, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.Username+":"+s.Password)))
		return []string{"Authorization"}
	case Cookie:
		setHeader(req.Header, "Cookie", mergeCookies(req.Header.Values("Cookie"), s.Value))
		return []string{"Cookie"}
	case CustomHeader:
		names := make([]string, 0, len(s.Headers))
		for _, h := range s.Headers {
			setHeader(req.Header, h.Name, h.Value)
			names = append(names, http.CanonicalHeaderKey(h.Name))
		}
		return names
	case QueryParam:
		req.URL.RawQuery = replaceQueryParam(req.URL.RawQuery, s.Param, s.Value)
		req.URL.ForceQuery = false
		return nil
	}
	return nil
}

// setHeader removes every spelling of name from h and sets one value.
func setHeader(h http.Header, name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
	h[http.CanonicalHeaderKey(name)] = []string{value}
}

// mergeCookies keeps the agent's cookies whose names the credential does not
// set, and appends the credential's pairs, in one Cookie header.
func mergeCookies(agent []string, injected string) string {
	ours := parseCookiePairs(injected)
	names := make(map[string]bool, len(ours))
	for _, p := range ours {
		names[p[0]] = true
	}
	var out []string
	for _, line := range agent {
		for _, p := range parseCookiePairs(line) {
			if !names[p[0]] {
				out = append(out, p[0]+"="+p[1])
			}
		}
	}
	for _, p := range ours {
		out = append(out, p[0]+"="+p[1])
	}
	return strings.Join(out, "; ")
}

// parseCookiePairs splits "a=b; c=d" leniently (values pasted from DevTools
// may hold characters a strict parser refuses). Pairs without a name are
// dropped.
func parseCookiePairs(s string) [][2]string {
	var out [][2]string
	for _, part := range strings.Split(s, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	return out
}

// CookieNames returns the cookie names in a "a=b; c=d" value.
func CookieNames(value string) []string {
	var names []string
	for _, p := range parseCookiePairs(value) {
		names = append(names, p[0])
	}
	return names
}

// replaceQueryParam drops every occurrence of name from a raw query (keeping
// the order and encoding of the rest) and appends name=value.
func replaceQueryParam(rawQuery, name, value string) string {
	var kept []string
	if rawQuery != "" {
		for _, part := range strings.Split(rawQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			if dk, err := url.QueryUnescape(k); err == nil && dk == name || k == name {
				continue
			}
			if part != "" {
				kept = append(kept, part)
			}
		}
	}
	kept = append(kept, url.QueryEscape(name)+"="+url.QueryEscape(value))
	return strings.Join(kept, "&")
}
