package proxy

import (
	"net/url"
	"strings"

	"github.com/agentkeys/agentkeys"
	"golang.org/x/net/idna"
)

// idnaProfile converts Unicode host names for lookup, strictly: UTS 46
// mapping, STD3 rules, hyphen, joiner and bidi checks, DNS lengths. A
// homograph (Cyrillic "а" for Latin "a") becomes an xn-- name that does not
// match the allowlist; a name that merely uses full-width forms of the same
// letters maps to that same ASCII name, which is also where it would be dialled.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// normalizeTarget converts a target URL whose host is not ASCII to the
// punycode form agentkeys.CheckTarget accepts. ASCII URLs, and anything
// CheckTarget will refuse anyway (backslashes, controls, user info,
// fragments, unparsable URLs), are returned unchanged for it to refuse.
// Returns EINVALID when the host is not a valid internationalised name.
func normalizeTarget(raw string) (string, error) {
	if isASCII(raw) || strings.ContainsAny(raw, "\\#@") || strings.IndexFunc(raw, isControl) >= 0 {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return raw, nil
	}
	host := u.Hostname()
	if isASCII(host) {
		return raw, nil
	}
	ascii, err := idnaProfile.ToASCII(host)
	if err != nil || ascii == "" {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "target host is not a valid internationalised domain name")
	}
	if port := u.Port(); port != "" {
		ascii += ":" + port
	}
	u.Host = ascii
	return u.String(), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }
