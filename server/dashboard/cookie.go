package dashboard

import (
	"encoding/json"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// cookieValue is the Cookie form's paste-all mode: it turns what a person
// pasted into a COOKIE credential's value, "name=value; name2=value2".
// Accepted:
//   - a Cookie header as DevTools shows it ("a=b; c=d"), with or without
//     "Cookie:" in front, on one line or several;
//   - a JSON cookie export: an array of objects with "name" and "value"
//     (as cookie-editing browser extensions export), or an object whose
//     "cookies" member is such an array (Playwright's storage state).
//
// Returns EINVALID saying what was expected; the message never quotes the
// paste (it holds secrets).
func cookieValue(paste string) (string, error) {
	paste = strings.TrimSpace(paste)
	if strings.HasPrefix(paste, "[") || strings.HasPrefix(paste, "{") {
		return jsonCookies(paste)
	}
	if len(paste) >= 7 && strings.EqualFold(paste[:7], "cookie:") {
		paste = paste[7:]
	}
	var pairs []string
	for i, part := range strings.FieldsFunc(paste, func(r rune) bool { return r == ';' || r == '\n' || r == '\r' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return "", agentkeys.Errorf(agentkeys.EINVALID, "part %d of the pasted cookies is not name=value: paste the Cookie header from DevTools (name=value; name2=value2) or a JSON cookie export", i+1)
		}
		pairs = append(pairs, strings.TrimSpace(name)+"="+strings.TrimSpace(value))
	}
	if len(pairs) == 0 {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "no cookies pasted: paste the Cookie header from DevTools (name=value; name2=value2) or a JSON cookie export")
	}
	return strings.Join(pairs, "; "), nil
}

type exportedCookie struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

func jsonCookies(paste string) (string, error) {
	bad := agentkeys.Errorf(agentkeys.EINVALID, "the pasted JSON is not a cookie export: give an array of objects with \"name\" and \"value\" strings (or {\"cookies\": [...]}), or paste the Cookie header instead")
	var list []exportedCookie
	if strings.HasPrefix(paste, "{") {
		var state struct {
			Cookies *[]exportedCookie `json:"cookies"`
		}
		if json.Unmarshal([]byte(paste), &state) != nil || state.Cookies == nil {
			return "", bad
		}
		list = *state.Cookies
	} else if json.Unmarshal([]byte(paste), &list) != nil {
		return "", bad
	}
	var pairs []string
	for i, c := range list {
		if c.Name == nil || strings.TrimSpace(*c.Name) == "" || c.Value == nil {
			return "", agentkeys.Errorf(agentkeys.EINVALID, "cookie %d of the JSON export has no name or no value: each needs \"name\" and \"value\" strings", i+1)
		}
		pairs = append(pairs, strings.TrimSpace(*c.Name)+"="+*c.Value)
	}
	if len(pairs) == 0 {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "the JSON cookie export holds no cookies")
	}
	return strings.Join(pairs, "; "), nil
}
