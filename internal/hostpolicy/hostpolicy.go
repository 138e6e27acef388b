// Package hostpolicy refuses allowlist wildcards that would span a public
// suffix, such as *.co.uk, *.com.au or *.herokuapp.com: they match every
// site registered (or every app deployed) under it. agentkeys.ParseHostPattern (standard library only) already
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
// normalised patterns whose S is a public suffix: in the list's ICANN
// section (co.uk, kyoto.jp) or its private one, where a platform gives
// anyone a subdomain (herokuapp.com, vercel.app, workers.dev, github.io,
// amazonaws.com, atlassian.net). Exact hosts under them (acme.atlassian.net)
// and wildcards one level down (*.acme.example.com) stay allowed.
func CheckWildcards(patterns []string) error {
	for _, p := range patterns {
		rest, ok := strings.CutPrefix(p, "*.")
		if !ok {
			continue
		}
		if host, _, err := net.SplitHostPort(rest); err == nil {
			rest = host
		}
		if suffix, _ := publicsuffix.PublicSuffix(rest); suffix == rest {
			return agentkeys.Errorf(agentkeys.EINVALID,
				"allowed host %q would match every site anyone can register under the public suffix %q: name your own host instead (for example acme.%s)", p, rest, rest)
		}
	}
	return nil
}
