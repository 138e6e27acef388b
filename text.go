package agentkeys

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// unsafeRune reports whether r must not appear in a name or any text a
// person will read in a terminal: C0 and C1 controls (ESC, CSI U+009B, OSC
// U+009D…), DEL, format characters (bidi overrides and isolates
// U+202A–U+202E and U+2066–U+2069, marks U+200E/U+200F/U+061C, zero-width
// characters, the BOM, soft hyphen, tag characters), line and paragraph
// separators, private-use and unassigned-surrogate code points, and the
// replacement character that invalid UTF-8 decodes to.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r < 0x7f:
		return false
	case r == utf8.RuneError:
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp)
}

// CheckText returns EINVALID when s is not valid UTF-8 or holds a
// character unsafeRune refuses (named by code point, never shown as is).
// what names the field in the message ("credential name"). Every name a
// writer stores (credential, agent, workspace names; header and query
// parameter names) passes through it, whichever front-end it came from.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s is not valid UTF-8 text", what)
	}
	for _, r := range s {
		if unsafeRune(r) {
			return Errorf(EINVALID, "%s contains an invisible or control character (U+%04X): use visible text only", what, r)
		}
	}
	return nil
}

// SafeText returns s with every character CheckText refuses written as a
// visible escape (\x1b, \u202e) and invalid UTF-8 bytes as \xNN, so a
// string from storage or an upstream cannot move the cursor, recolour,
// retitle or reorder a person's terminal. Printers (tables, the TUI, error
// lines) pass every such string through it; text that is already safe comes
// back unchanged without copying.
func SafeText(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune)
		}
	}
	return true
}
