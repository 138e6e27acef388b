// Package hostpolicy refuses allowlist wildcards that would span a public
// suffix, such as *.co.uk or *.com.au: they match every site registered
// under it. agentkeys.ParseHostPattern (standard library only) already
// refuses single-label ones (*.com); the rest need the Public Suffix List,
// which golang.org/x/net/publicsuffix carries. The stores apply it to every
// allowlist they are given.
package hostpolicy

import (
	"net"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/agentkeys/agentkeys"
)

// CheckWildcards returns EINVALID for a pattern "*.S" (or "*.S:port") of
// normalised patterns whose S is a public suffix run by a registry (the
// ICANN section of the list). Suffixes in the list's private section —
// platforms whose customers get subdomains, such as atlassian.net — stay
// allowed: a credential for such a platform is often meant for every
// subdomain of it.
func CheckWildcards(patterns []string) error {
	for _, p := range patterns {
		rest, ok := strings.CutPrefix(p, "*.")
		if !ok {
			continue
		}
		if host, _, err := net.SplitHostPort(rest); err == nil {
			rest = host
		}
		if suffix, icann := publicsuffix.PublicSuffix(rest); icann && suffix == rest {
			return agentkeys.Errorf(agentkeys.EINVALID,
				"allowed host %q would match every site registered under the public suffix %q: name the domain instead (for example *.example.%s)", p, rest, rest)
		}
	}
	return nil
}
