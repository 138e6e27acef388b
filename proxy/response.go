package proxy

// Response scrubbing: what the proxy takes out of an upstream's answer
// before the agent sees it (its own headers, the injected query parameter
// in URLs, the injected cookies' Set-Cookie lines) and where echo redaction
// (redact.go) is hooked in.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// modifyResponse drops agentkeys' own headers from the upstream's answer
// (so a proxy error cannot be faked), scrubs the injected query parameter
// and cookies, redacts echoes of the secret (redact.go) and watches the
// body for a broken stream. An error refuses the answer (upstreamError).
func modifyResponse(res *http.Response) error {
	for k := range res.Header {
		if hasPrefixFold(k, "x-agentkeys-") {
			delete(res.Header, k)
		}
	}
	x := res.Request.Context().Value(exchangeKey{}).(*exchange)
	x.noteUpstreamStatus(res.StatusCode) // oauth.go: a 401 refreshes the token before the next request
	if x.body != nil && !x.body.eof.Load() && !x.body.tooLarge.Load() {
		// The upstream answered before the agent's body was all sent. With
		// full-duplex answers Go's server would then read the rest of that
		// body to reuse the connection, however slowly it trickles in (and
		// the rest is of no use): close the connection after this answer.
		res.Header.Set("Connection", "close")
	}
	if x.queryParam != "" {
		// A redirect that keeps the query string (trailing slash, http→https)
		// would hand the injected secret to the agent. Drop the parameter: a
		// request to that URL through the proxy gets it injected again.
		for _, name := range []string{"Location", "Content-Location"} {
			for i, v := range res.Header[name] {
				res.Header[name][i] = dropQueryParam(v, x.queryParam)
			}
		}
		// Pagination links (RFC 8288) often repeat the query string too.
		for i, v := range res.Header["Link"] {
			res.Header["Link"][i] = dropQueryParamInLinks(v, x.queryParam)
		}
	}
	if len(x.cookieNames) > 0 {
		// A session refresh would hand the agent the injected cookie (or its
		// rotated successor): drop Set-Cookie for the names the proxy sets.
		res.Header["Set-Cookie"] = slices.DeleteFunc(res.Header["Set-Cookie"], func(line string) bool {
			name, _, _ := strings.Cut(line, "=")
			return slices.Contains(x.cookieNames, strings.TrimSpace(name))
		})
		if len(res.Header["Set-Cookie"]) == 0 {
			delete(res.Header, "Set-Cookie")
		}
	}
	// ReverseProxy clears the agent's response header after passing on a
	// 1xx (100 Continue, 103 Early Hints), request id included: set it again.
	x.w.Header().Set(agentkeys.HeaderRequestID, x.ev.RequestID)
	if x.redact != nil {
		if err := redactResponse(x.redact, res); err != nil {
			return err
		}
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil // the body is the upgraded connection; leave it as is
	}
	res.Body = &watchedBody{ReadCloser: res.Body, x: x}
	return nil
}

// dropQueryParam removes every occurrence of the query parameter name from
// the URL reference ref (absolute or relative), matching names as
// Secret.Inject does (raw or unescaped); the rest is kept as it was.
func dropQueryParam(ref, name string) string {
	base, query, ok := strings.Cut(ref, "?")
	if !ok {
		return ref
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	var kept []string
	for _, part := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == name || k == name {
			continue
		}
		kept = append(kept, part)
	}
	out := base
	if len(kept) > 0 {
		out += "?" + strings.Join(kept, "&")
	}
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// dropQueryParamInLinks applies dropQueryParam to every <URI-reference> of
// a Link header value.
func dropQueryParamInLinks(v, name string) string {
	var b strings.Builder
	for {
		start := strings.IndexByte(v, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(v[start:], '>')
		if end < 0 {
			break
		}
		end += start
		b.WriteString(v[:start+1])
		b.WriteString(dropQueryParam(v[start+1:end], name))
		b.WriteByte('>')
		v = v[end+1:]
	}
	b.WriteString(v)
	return b.String()
}
