package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Base-URL mode lets a client that only knows "a base URL and an API key"
// use the proxy unchanged: the target host is part of the path,
//
//	/to/<host[:port]>/<path>?<query>  →  https://<host[:port]>/<path>?<query>
//
// (http:// when the host is a loopback name or address, which CheckTarget
// allows only when the credential lists it exactly), and the agent's pxr_
// token sits where the client sends its own key: Authorization: Bearer,
// x-api-key, api-key, x-goog-api-key, or a key= query parameter. The request
// is turned into the /v1/proxy form (the target URL from the path,
// Authorization: Bearer pxr_…) and served by the same code, so every
// /v1/proxy guarantee holds:
// allowlist before decryption, audit, revocation and expiry, streaming,
// redirects returned, JSON errors with X-Agentkeys-Error.
//
// The token never reaches the upstream: every key slot is removed (the
// credential is then injected as usual); a request that carries a proxy
// token anywhere else — another header, another query parameter, the path —
// is refused; and a request body is read through a guard that stops the
// request, before the token's bytes are sent, if the token appears in it.

// BaseURLPrefix is the path prefix of base-URL mode. A client's base URL is
// the proxy's URL + BaseURLPrefix + the API's host and base path, e.g.
// http://127.0.0.1:8787/to/api.openai.com/v1.
const BaseURLPrefix = "/to/"

// keyHeaders are the request headers clients put their API key in. All are
// removed before forwarding.
var keyHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"}

// keyParam is the query parameter some clients (Google's) put their key in.
const keyParam = "key"

func isBaseURL(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, BaseURLPrefix) }

// serveBaseURL serves one base-URL request through serve.
// It costs what the /v1/proxy form costs within a few allocations: the
// target is handed to serve as a string, not through a header.
func (h *Handler) serveBaseURL(w http.ResponseWriter, r *http.Request) {
	target, err := baseURLRequest(r)
	h.serveOrRefuse(w, r, tokenAuthority, err, target)
}

// keySlots collects the proxy token found in the key slots of a request.
type keySlots struct{ token string }

// take keeps v if it is a proxy token; a second, different one is an error.
func (k *keySlots) take(v string) error {
	v = strings.TrimSpace(v)
	if !agentkeys.IsProxyToken(v) {
		return nil
	}
	if k.token != "" && k.token != v {
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "the request carries two different proxy tokens: send one")
	}
	k.token = v
	return nil
}

// baseURLRequest turns r, in place (nothing else holds it), into the
// /v1/proxy form and returns its target URL (from the path):
// Authorization: Bearer with the token found in a key slot, every key slot
// and agentkeys protocol header the agent sent removed, the key= query
// parameter holding the token removed, the body guarded. On error the
// target is still returned when it could be read, so the refusal's audit
// row names it.
func baseURLRequest(r *http.Request) (string, error) {
	hdr := r.Header
	authVals := hdr["Authorization"]
	// The target comes from the path only: an agent's own X-Target-Url or
	// X-Target-Method would aim the request elsewhere.
	for _, name := range []string{agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod, agentkeys.HeaderCredentialName} {
		delete(hdr, name)
	}

	rest := strings.TrimPrefix(r.URL.EscapedPath(), BaseURLPrefix)
	host, path, _ := strings.Cut(rest, "/")
	if host == "" || strings.ContainsAny(host, "%@") {
		return "", agentkeys.Errorf(agentkeys.EINVALID,
			"base-URL requests look like /to/<host>/<path>, e.g. /to/api.openai.com/v1/chat/completions")
	}
	scheme := "https"
	if isLoopbackTarget(host) {
		scheme = "http" // CheckTarget allows it only to loopback hosts listed exactly
	}

	var slots keySlots
	query, err := takeKeyParam(r.URL.RawQuery, &slots)
	var target string
	if query != "" {
		target = scheme + "://" + host + "/" + path + "?" + query
	} else {
		target = scheme + "://" + host + "/" + path
	}
	if err != nil {
		return target, err
	}
	for _, name := range keyHeaders {
		for _, v := range hdr[name] {
			if name == "Authorization" {
				if kind, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.EqualFold(kind, "Bearer") {
					v = cred
				}
			}
			if err := slots.take(v); err != nil {
				return target, err
			}
		}
		delete(hdr, name)
	}
	token := slots.token
	if token == "" {
		return target, agentkeys.Errorf(agentkeys.EUNAUTHORIZED,
			"missing proxy token: put the pxr_ token where the client sends its API key (Authorization: Bearer, x-api-key, api-key, x-goog-api-key or the key= query parameter)")
	}
	// A proxy token anywhere else would be forwarded as is.
	for name, vals := range hdr {
		for _, v := range vals {
			if containsProxyToken(v) {
				return target, agentkeys.Errorf(agentkeys.EINVALID,
					"a proxy token is in the %s header too: send it only where the client sends its API key", name)
			}
		}
	}
	if containsProxyToken(r.URL.Path) || containsProxyToken(query) || strings.Contains(query, "%") && containsProxyToken(unescapeQuery(query)) {
		return target, agentkeys.Errorf(agentkeys.EINVALID,
			"a proxy token is in the URL: send it only where the client sends its API key")
	}
	if len(authVals) == 1 && strings.HasPrefix(authVals[0], "Bearer ") && authVals[0][len("Bearer "):] == token {
		hdr["Authorization"] = authVals // already the /v1/proxy form
	} else {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &tokenGuard{rc: r.Body, token: []byte(token)}
	}
	return target, nil
}

// isLoopbackTarget is agentkeys.IsLoopbackHost for host[:port], skipping
// it (and the allocations of its IP parse) for names that cannot be
// loopback: neither an IP literal nor a name with "localhost" in it.
func isLoopbackTarget(host string) bool {
	h := strings.TrimPrefix(host, "[")
	if h == "" {
		return false
	}
	if c := h[0]; !(c >= '0' && c <= '9' || c == ':') && !strings.Contains(strings.ToLower(h), "localhost") {
		return false
	}
	return agentkeys.IsLoopbackHost(hostOnly(host))
}

// hostOnly is host without its port (and IPv6 brackets).
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// takeKeyParam passes every key= value of the raw query that is a proxy
// token to slots and returns the query without those parameters; the
// others are kept byte for byte.
func takeKeyParam(raw string, slots *keySlots) (string, error) {
	if raw == "" || !strings.Contains(raw, keyParam+"=") && !strings.Contains(raw, "%") {
		return raw, nil
	}
	kept := make([]string, 0, 4)
	for _, part := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == keyParam {
			if dv, err := url.QueryUnescape(v); err == nil && agentkeys.IsProxyToken(strings.TrimSpace(dv)) {
				if err := slots.take(dv); err != nil {
					return raw, err
				}
				continue
			}
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&"), nil
}

// unescapeQuery is the raw query with its escapes decoded ("" if it has a
// bad one: the upstream could not decode it either).
func unescapeQuery(q string) string {
	u, _ := url.QueryUnescape(q)
	return u
}

// containsProxyToken reports whether s holds something with the pxr_ form.
func containsProxyToken(s string) bool {
	for {
		i := strings.Index(s, agentkeys.ProxyTokenPrefix)
		if i < 0 {
			return false
		}
		s = s[i+len(agentkeys.ProxyTokenPrefix):]
		n := 0
		for n < len(s) && isAlnum(s[n]) {
			n++
		}
		if n >= 20 {
			return true
		}
	}
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// errTokenInBody stops a base-URL request whose body holds its proxy token.
var errTokenInBody = errors.New("proxy: the request body holds the proxy token")

// tokenGuard passes a request body through, holding back the last
// len(token)-1 bytes read until more arrive, so that the token's bytes are
// never passed on: where they appear, reading stops with errTokenInBody (the
// request is cut off and the agent gets 400).
type tokenGuard struct {
	rc         io.ReadCloser
	token      []byte
	buf        []byte // buf[start:end] read and not yet passed on
	start, end int
	err        error // the body's own error (io.EOF at the end) once met
	found      bool
}

func (g *tokenGuard) Read(p []byte) (int, error) {
	if g.found {
		return 0, errTokenInBody
	}
	if g.buf == nil {
		g.buf = make([]byte, 16<<10+len(g.token))
	}
	for {
		safe := g.end - g.start
		if g.err == nil {
			safe -= len(g.token) - 1
		}
		if safe > 0 {
			n := copy(p, g.buf[g.start:g.start+safe])
			g.start += n
			return n, nil
		}
		if g.err != nil {
			return 0, g.err
		}
		// Keep what is held back at the front, and read after it.
		g.end = copy(g.buf, g.buf[g.start:g.end])
		g.start = 0
		n, err := g.rc.Read(g.buf[g.end:])
		from := max(0, g.end-(len(g.token)-1))
		g.end += n
		if bytes.Contains(g.buf[from:g.end], g.token) {
			g.found = true
			return 0, errTokenInBody
		}
		if err != nil {
			g.err = err
		}
	}
}

func (g *tokenGuard) Close() error { return g.rc.Close() }
