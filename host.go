package agentkeys

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ParseHostPattern validates one allowlist entry and returns it normalised:
// an exact host ("api.resend.com"), optionally with a port
// ("127.0.0.1:8080", "[::1]:8080"), or a wildcard "*.suffix" that matches any
// host below suffix (not suffix itself). Hosts are lowercased and lose a
// trailing dot. Refused with EINVALID: "*", "*.", "*.com" (a wildcard needs at
// least two labels after it), wildcards inside a label, URLs, paths,
// non-ASCII hosts (give the punycode "xn--" form) and bad ports.
func ParseHostPattern(s string) (string, error) {
	raw := strings.TrimSpace(s)
	p := strings.ToLower(raw)
	switch {
	case p == "":
		return "", Errorf(EINVALID, "empty allowed host")
	case strings.Contains(p, "://") || strings.ContainsAny(p, "/?#@\\ \t"):
		return "", Errorf(EINVALID, "allowed host %q must be a host name such as api.example.com, not a URL or path", raw)
	}
	for _, r := range p {
		if r > 0x7e || r < 0x21 {
			return "", Errorf(EINVALID, "allowed host %q is not ASCII: give its punycode form (xn--…)", raw)
		}
	}
	host, port, err := splitHostPort(p)
	if err != nil {
		return "", Errorf(EINVALID, "allowed host %q: %s", raw, err.Message)
	}
	wildcard := false
	if strings.HasPrefix(host, "*.") {
		wildcard = true
		host = host[2:]
	}
	if strings.Contains(host, "*") {
		return "", Errorf(EINVALID, "allowed host %q: a wildcard may only be a whole first label, as in *.example.com", raw)
	}
	if wildcard && (net.ParseIP(host) != nil || !strings.Contains(host, ".")) {
		return "", Errorf(EINVALID, "allowed host %q is too broad: a wildcard needs a domain with at least two labels, as in *.example.com", raw)
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return "", Errorf(EINVALID, "allowed host %q is not a valid host name", raw)
	}
	out := host
	if strings.Contains(host, ":") { // IPv6 literal
		out = "[" + host + "]"
	}
	if wildcard {
		out = "*." + out
	}
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port", strips a
// trailing dot from the host and checks the port is 1–65535.
func splitHostPort(s string) (host, port string, err *Error) {
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", Errorf(EINVALID, "unclosed [ in IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", "", Errorf(EINVALID, "bad IPv6 address")
		}
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", Errorf(EINVALID, "unexpected text after ]")
			}
			port = rest[1:]
		}
		return host, port, checkPort(port, rest != "")
	case strings.Count(s, ":") > 1:
		return "", "", Errorf(EINVALID, "put an IPv6 address in brackets, as in [::1]:8080")
	}
	host, port, hasPort := strings.Cut(s, ":")
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", "", Errorf(EINVALID, "missing host")
	}
	return host, port, checkPort(port, hasPort)
}

func checkPort(port string, given bool) *Error {
	if !given {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '0' {
		return Errorf(EINVALID, "port must be a number from 1 to 65535")
	}
	return nil
}

// validHostname checks LDH labels (underscore allowed, as some APIs use it),
// each 1–63 bytes, 253 in all.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParseAllowedHosts validates and normalises a list of host patterns,
// dropping duplicates and keeping order. Returns EINVALID for the first bad one.
func ParseAllowedHosts(patterns []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range patterns {
		n, err := ParseHostPattern(p)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// CheckTarget parses the URL an agent wants to reach and checks it against a
// credential's allowlist. It returns the URL with its host normalised
// (lowercase, no trailing dot). Nothing is decrypted or dialled before this
// check passes.
//
// Returns EINVALID for a URL that is not absolute http(s), has user info, a
// fragment, a backslash, control characters or a non-ASCII host (callers
// that accept Unicode hosts convert them to punycode first); EDESTINATION
// when the host (and port, where the entry names one) matches no entry, or
// the scheme is http to anything but a loopback host listed exactly.
func CheckTarget(rawURL string, allowed []string) (*url.URL, error) {
	u, err := ParseTarget(rawURL)
	if err != nil {
		return nil, err
	}
	host, port := u.Hostname(), u.Port()
	exact := false
	ok := false
	for _, p := range allowed {
		if m, isExact := matchPattern(p, host, port); m {
			ok = true
			exact = exact || isExact
		}
	}
	if !ok {
		return nil, Errorf(EDESTINATION, "destination %s is not on this credential's allowed hosts (%s)", u.Host, strings.Join(allowed, ", "))
	}
	if u.Scheme == "http" && !(exact && IsLoopbackHost(host)) {
		return nil, Errorf(EDESTINATION, "destination http://%s refused: use https (plain http is allowed only to loopback hosts listed exactly)", u.Host)
	}
	return u, nil
}

// ParseTarget parses and normalises a target URL without an allowlist; see
// CheckTarget for what it refuses.
func ParseTarget(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		return nil, Errorf(EINVALID, "missing target URL: set the X-Target-Url header to the full https:// URL to call")
	}
	if strings.ContainsAny(rawURL, "\\\x00\r\n\t ") {
		return nil, Errorf(EINVALID, "target URL contains a backslash, space or control character")
	}
	for i := 0; i < len(rawURL); i++ {
		if rawURL[i] < 0x20 || rawURL[i] == 0x7f {
			return nil, Errorf(EINVALID, "target URL contains a control character")
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, Errorf(EINVALID, "target URL is malformed: give a full URL such as https://api.example.com/v1/things")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, Errorf(EINVALID, "target URL must start with https:// (got scheme %q)", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, Errorf(EINVALID, "target URL has no host: give a full URL such as https://api.example.com/v1/things")
	case u.User != nil:
		return nil, Errorf(EINVALID, "target URL may not contain user info (user@host)")
	case u.Fragment != "" || strings.Contains(rawURL, "#"):
		return nil, Errorf(EINVALID, "target URL may not contain a fragment (#…)")
	}
	for _, r := range u.Host {
		if r > 0x7e {
			return nil, Errorf(EINVALID, "target host is not ASCII: use its punycode (xn--) form")
		}
	}
	host, port, perr := splitHostPort(strings.ToLower(u.Host))
	if perr != nil {
		return nil, Errorf(EINVALID, "target URL host: %s", perr.Message)
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return nil, Errorf(EINVALID, "target host %q is not a valid host name", host)
	}
	h := host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if port != "" {
		h += ":" + port
	}
	u.Host = h
	return u, nil
}

// MatchHost reports whether host (normalised, no port) with port ("" when
// the URL gave none) matches any allowlist pattern.
func MatchHost(allowed []string, host, port string) bool {
	for _, p := range allowed {
		if m, _ := matchPattern(p, host, port); m {
			return true
		}
	}
	return false
}

// matchPattern matches one normalised pattern. exact is true for an exact
// (non-wildcard) match.
func matchPattern(pattern, host, port string) (match, exact bool) {
	ph, pp, err := splitHostPort(pattern)
	if err != nil {
		return false, false
	}
	if pp != "" && pp != port {
		return false, false
	}
	if suffix, ok := strings.CutPrefix(ph, "*."); ok {
		return strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1, false
	}
	return host == ph, host == ph
}

// IsLoopbackHost reports whether host is "localhost" (or below it) or a
// loopback IP literal in canonical form.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
