package agentkeys

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ParseHostPattern validates one allowlist entry and returns it normalised:
// an exact host ("api.resend.com"), optionally with a port
// ("127.0.0.1:8080", "[::1]:8080"), or a wildcard "*.suffix" that matches any
// host below suffix (not suffix itself). Hosts are lowercased and lose a
// trailing dot. Refused with EINVALID: "*", "*.", "*.com" (a wildcard needs at
// least two labels after it), wildcards inside a label, wildcards that could
// match an IP address ("*.0.1"), host names that read as an IP address in
// another spelling ("127.1", "0x7f000001"), 0.0.0.0 and ::, loopback
// entries without a port (localhost, *.localhost, 127.0.0.1, [::1]), URLs,
// paths, non-ASCII hosts (give the punycode "xn--" form) and bad ports. IP
// literals are stored in canonical form. Wildcards over a public suffix
// (*.co.uk, *.herokuapp.com) need the Public Suffix List and are refused by
// internal/hostpolicy in the stores.
func ParseHostPattern(s string) (string, error) {
	raw := strings.TrimSpace(s)
	p := strings.ToLower(raw)
	switch {
	case p == "":
		return "", Errorf(EINVALID, "empty allowed host")
	case strings.ContainsAny(p, "<>"):
		return "", Errorf(EINVALID, "allowed host %q has a placeholder: replace the <…> part with your own name", raw)
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
	if wildcard && endsInNumber(host) {
		return "", Errorf(EINVALID, "allowed host %q could match IP addresses: a wildcard must end in a domain name, as in *.example.com", raw)
	}
	host, herr := canonicalHost(host)
	if herr != nil {
		return "", Errorf(EINVALID, "allowed host %q: %s", raw, herr.Message)
	}
	if IsLoopbackHost(host) && port == "" {
		return "", Errorf(EINVALID, "allowed host %q is on this machine: add the port, as in %s:8080 (any local user can open a port, so every port would be too broad)", raw, bracket(host))
	}
	out := bracket(host)
	if wildcard {
		out = "*." + out
	}
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

// canonicalHost checks a host (name or IP literal, without brackets or
// port) and returns it in the one form that is stored and compared: IP
// literals canonical (netip), names as given. A name whose last label is a
// number ("1.2.3", "0x7f000001", "127.1") is refused: resolvers read it as
// an IPv4 address in another spelling, so it would not mean what it says.
func canonicalHost(host string) (string, *Error) {
	if strings.Contains(host, ":") || net.ParseIP(host) != nil {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return "", Errorf(EINVALID, "%q is not a valid IP address", host)
		}
		if a.Unmap().IsUnspecified() {
			return "", Errorf(EINVALID, "%s is not a destination: name the host or address to call", host)
		}
		return a.String(), nil
	}
	if endsInNumber(host) {
		return "", Errorf(EINVALID, "%q reads as an IP address in a non-standard spelling: write IPv4 addresses as four decimal numbers, as in 127.0.0.1", host)
	}
	if !validHostname(host) {
		return "", Errorf(EINVALID, "%q is not a valid host name", host)
	}
	return host, nil
}

// endsInNumber reports whether a host's last label is a decimal or 0x-hex
// number: what the WHATWG URL parser and inet_aton treat as an IPv4 address
// ("127.1", "0x7f000001", "2130706433", "1.2.3").
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// bracket puts an IPv6 literal in brackets.
func bracket(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
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
	host, perr = canonicalHost(host)
	if perr != nil {
		return nil, Errorf(EINVALID, "target URL host: %s", perr.Message)
	}
	h := bracket(host)
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
// loopback IP literal in canonical form. Names under .localhost are
// loopback by RFC 6761: the proxy's dialer connects them to 127.0.0.1
// without asking DNS, and sends plain http only to a connection whose
// address is loopback.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
