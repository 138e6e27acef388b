package storesql

import (
	"encoding/json"
	"strings"
)

// DecodeHosts decodes an allowed_hosts column (a JSON array of strings, as
// json.Marshal writes it) exactly as json.Unmarshal into a []string would:
// an empty array gives an empty, non-nil slice. Arrays of plain printable
// ASCII strings without escapes (every normalised host list) are split
// directly; anything else goes through encoding/json. The direct path
// matters for `credentials list`, which decodes one list per credential
// (json.Unmarshal took about 7% of listing 10,000, go run ./bench/cli);
// FuzzDecodeHosts checks both paths agree.
func DecodeHosts(s string) ([]string, error) {
	if s == "[]" {
		return []string{}, nil
	}
	if len(s) >= 4 && strings.HasPrefix(s, `["`) && strings.HasSuffix(s, `"]`) {
		inner := s[2 : len(s)-2]
		if plainASCII(inner) {
			hosts := strings.Split(inner, `","`)
			if !anyHasQuote(hosts) {
				return hosts, nil
			}
		}
	}
	var hosts []string
	err := json.Unmarshal([]byte(s), &hosts)
	return hosts, err
}

// plainASCII reports whether s is printable ASCII without a backslash: a
// JSON string body that needs no unescaping.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

// anyHasQuote reports whether any of parts holds a double quote (the
// split did not fall on element boundaries, e.g. `["a", "b"]`).
func anyHasQuote(parts []string) bool {
	for _, p := range parts {
		if strings.Contains(p, `"`) {
			return true
		}
	}
	return false
}
