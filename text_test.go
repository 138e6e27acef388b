package agentkeys_test

import (
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestValidateName_RefusesInvisibleAndControl: every writer's one
// validation refuses names that could rewrite a terminal or hide what they
// say: C0 and C1 controls, bidi overrides and isolates, other invisible
// format characters, separators, private use and invalid UTF-8.
func TestValidateName_RefusesInvisibleAndControl(t *testing.T) {
	bad := map[string]string{
		"ESC CSI":           "a\x1b[2Jb",
		"OSC title":         "a\x1b]0;pwned\x07",
		"BEL":               "a\x07b",
		"DEL":               "a\x7fb",
		"C1 CSI":            "a\u009b2Jb",
		"C1 OSC":            "a\u009d0;x\u009c",
		"C1 NEL":            "a\u0085b",
		"RLO":               "invoice\u202Etxt.exe",
		"LRO":               "a\u202Db",
		"LRE":               "a\u202Ab",
		"PDF":               "a\u202Cb",
		"LRI":               "a\u2066b",
		"RLI":               "a\u2067b",
		"FSI":               "a\u2068b",
		"PDI":               "a\u2069b",
		"LRM":               "a\u200Eb",
		"RLM":               "a\u200Fb",
		"ALM":               "a\u061Cb",
		"zero width space":  "re\u200Bsend",
		"ZWJ":               "a\u200Db",
		"word joiner":       "a\u2060b",
		"BOM":               "\uFEFFname",
		"soft hyphen":       "a\u00ADb",
		"tag char":          "a\U000E0041b",
		"line separator":    "a\u2028b",
		"para separator":    "a\u2029b",
		"private use":       "a\uE000b",
		"invalid UTF-8":     "a\xffb",
		"overlong":          "a\xc0\xafb",
		"lone continuation": "a\x80b",
		"replacement char":  "a\uFFFDb",
		"interlinear":       "a\uFFF9b",
	}
	for name, in := range bad {
		for _, what := range []string{"credential", "agent", "workspace"} {
			if got, err := agentkeys.ValidateName(what, in); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Errorf("%s: ValidateName(%s, %q) = %q, %v; want EINVALID", name, what, in, got, err)
			} else if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f || r >= 0x2000 && r <= 0x206f }) {
				t.Errorf("%s: the message repeats the character: %q", name, err.Error())
			}
		}
		in := &agentkeys.CredentialInput{Name: in, Type: agentkeys.APIKey, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}}
		if err := in.Normalize(); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("%s: CredentialInput.Normalize = %v", name, err)
		}
		q := &agentkeys.CredentialInput{Name: "q", Type: agentkeys.QueryParam, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Param: "k" + in.Name, Value: "v"}}
		if err := q.Normalize(); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("%s: query parameter name accepted: %v", name, err)
		}
	}
	for _, ok := range []string{"Résumé API", "日本語のキー", "key 🔑", "Stripe (prod) #2", "שלום", "مفتاح"} {
		if got, err := agentkeys.ValidateName("credential", ok); err != nil || got != ok {
			t.Errorf("ValidateName(%q) = %q, %v", ok, got, err)
		}
	}
}

func TestSafeText(t *testing.T) {
	tests := map[string]string{
		"plain":                "plain",
		"Résumé 🔑":             "Résumé 🔑",
		"a\x1b[2Jb":            `a\x1b[2Jb`,
		"a\u009b2Jb":           `a\x9b2Jb`,
		"invoice\u202Etxt.exe": `invoice\u202etxt.exe`,
		"a\u2066b\u2069":       `a\u2066b\u2069`,
		"a\xffb":               `a\xffb`,
		"a\tb\nc\rd":           `a b\x0ac\x0dd`,
		"\uFEFFx\u200By":       `\ufeffx\u200by`,
	}
	for in, want := range tests {
		if got := agentkeys.SafeText(in); got != want {
			t.Errorf("SafeText(%q) = %q, want %q", in, got, want)
		}
		if err := agentkeys.CheckText("x", agentkeys.SafeText(in)); err != nil {
			t.Errorf("SafeText(%q) is not itself safe: %v", in, err)
		}
	}
}
