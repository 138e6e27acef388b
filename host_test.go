package agentkeys_test

import (
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

func TestParseHostPattern(t *testing.T) {
	good := map[string]string{
		"api.resend.com":     "api.resend.com",
		"API.Resend.COM.":    "api.resend.com",
		"*.atlassian.net":    "*.atlassian.net",
		"127.0.0.1:8080":     "127.0.0.1:8080",
		"[::1]:9000":         "[::1]:9000",
		"[0:0::1]:9000":      "[::1]:9000",
		"[2001:DB8::0:1]":    "[2001:db8::1]",
		"[::ffff:7f00:1]:80": "[::ffff:127.0.0.1]:80",
		"localhost:3000":     "localhost:3000",
		"app.localhost:3000": "app.localhost:3000",
		"8.8.8.8":            "8.8.8.8",
		"1.2.3.example.com":  "1.2.3.example.com",
		"*.a1.example.com":   "*.a1.example.com",
		"0x.example.com":     "0x.example.com",
		"my_host.example.io": "my_host.example.io",
		" x.com ":            "x.com",
	}
	for in, want := range good {
		got, err := agentkeys.ParseHostPattern(in)
		if err != nil || got != want {
			t.Errorf("ParseHostPattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "*", "*.", "*.com", "api.*.com", "a*b.example.com", "*example.com",
		"https://api.resend.com", "api.resend.com/v1", "user@host.com", "host.com:0",
		"host.com:65536", "host.com:abc", "::1", "[::1", "ápi.example.com",
		"-bad.example.com", "bad..example.com", "a b.com", "*.127.0.0.1",
		// wildcards that can match an IP literal
		"*.0.1", "*.0.0.1", "*.1.1:80", "*.0x1.0x2", "*.10.0.0", "*.example.0x7f",
		// IP addresses in other spellings
		"0x7f000001", "0x7f000001:8080", "1.2.3", "127.1", "127.1:80", "2130706433", "0177.0.0.1",
		"127.000.000.001", "0x7f.1", "example.123", "example.0xff", "1.2.3.4.5",
		"0.0.0.0:80", "[::]:80", "[::ffff:0.0.0.0]:80", "[fe80::1%25eth0]:80",
		// loopback entries without a port
		"localhost", "LOCALHOST.", "app.localhost", "*.localhost", "127.0.0.1", "127.0.0.2", "[::1]", "[::ffff:127.0.0.1]",
		// placeholders left unfilled
		"<site>.atlassian.net", "<project-ref>.supabase.co",
	}
	for _, in := range bad {
		if got, err := agentkeys.ParseHostPattern(in); err == nil {
			t.Errorf("ParseHostPattern(%q) = %q, want an error", in, got)
		} else if agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("ParseHostPattern(%q) code = %s, want %s", in, agentkeys.ErrorCode(err), agentkeys.EINVALID)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	allowed := []string{"api.resend.com", "*.atlassian.net", "127.0.0.1:8080", "localhost:9000", "*.example.org"}
	tests := []struct {
		url      string
		code     string // "" = allowed
		wantHost string
	}{
		{"https://api.resend.com/emails", "", "api.resend.com"},
		{"https://API.RESEND.COM./emails?x=1", "", "api.resend.com"},
		{"https://api.resend.com:8443/emails", "", "api.resend.com:8443"},
		{"https://acme.atlassian.net/rest/api/3/issue", "", "acme.atlassian.net"},
		{"https://a.b.atlassian.net/", "", "a.b.atlassian.net"},
		{"http://127.0.0.1:8080/x", "", "127.0.0.1:8080"},
		{"http://localhost:9000/x", "", "localhost:9000"},
		{"https://127.0.0.1:8080/x", "", "127.0.0.1:8080"},
		// refused destinations
		{"https://atlassian.net/", agentkeys.EDESTINATION, ""},
		{"https://api.resend.com.evil.com/", agentkeys.EDESTINATION, ""},
		{"https://evilapi.resend.com/", agentkeys.EDESTINATION, ""},
		{"https://notapi.resend.com/", agentkeys.EDESTINATION, ""},
		{"https://evil.com/api.resend.com", agentkeys.EDESTINATION, ""},
		{"https://evil.com?https://api.resend.com", agentkeys.EDESTINATION, ""},
		{"http://api.resend.com/emails", agentkeys.EDESTINATION, ""},
		{"http://x.example.org/", agentkeys.EDESTINATION, ""}, // http only to exact loopback entries
		{"https://127.0.0.1:8081/", agentkeys.EDESTINATION, ""},
		{"https://127.1:8080/", agentkeys.EINVALID, ""}, // IPs in other spellings are refused outright
		{"https://0x7f.1:8080/", agentkeys.EINVALID, ""},
		{"https://2130706433:8080/", agentkeys.EINVALID, ""},
		{"https://0x7f000001:8080/", agentkeys.EINVALID, ""},
		{"https://127.0.1:8080/", agentkeys.EINVALID, ""},
		{"https://0177.0.0.1:8080/", agentkeys.EINVALID, ""},
		{"https://0.0.0.0:8080/", agentkeys.EINVALID, ""},
		{"https://[::]:8080/", agentkeys.EINVALID, ""},
		{"https://[0:0::1]:8081/", agentkeys.EDESTINATION, ""},
		{"https://xn--pi-7ld.resend.com/", agentkeys.EDESTINATION, ""}, // punycode homograph
		// malformed
		{"", agentkeys.EINVALID, ""},
		{"api.resend.com/emails", agentkeys.EINVALID, ""},
		{"ftp://api.resend.com/", agentkeys.EINVALID, ""},
		{"https://user@api.resend.com/", agentkeys.EINVALID, ""},
		{"https://api.resend.com@evil.com/", agentkeys.EINVALID, ""},
		{"https://evil.com\\@api.resend.com/", agentkeys.EINVALID, ""},
		{"https://api.resend.com\\.evil.com/", agentkeys.EINVALID, ""},
		{"https://api.resend.com/#frag", agentkeys.EINVALID, ""},
		{"https://api.resend.com/ x", agentkeys.EINVALID, ""},
		{"https://api.resend.com/\r\nX: y", agentkeys.EINVALID, ""},
		{"https://аpi.resend.com/", agentkeys.EINVALID, ""}, // Cyrillic а: callers convert to punycode first
		{"https:///emails", agentkeys.EINVALID, ""},
		{"https:api.resend.com", agentkeys.EINVALID, ""},
		{"https://api.resend.com:99999/", agentkeys.EINVALID, ""},
		{"https://%61pi.resend.com/", agentkeys.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := agentkeys.CheckTarget(tt.url, allowed)
			if got := agentkeys.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if tt.code == "" && u.Host != tt.wantHost {
				t.Errorf("host = %q, want %q", u.Host, tt.wantHost)
			}
		})
	}
}

func TestCheckTarget_MessageHasNoQuery(t *testing.T) {
	_, err := agentkeys.CheckTarget("https://evil.com/p?key=canary-q", []string{"api.resend.com"})
	if err == nil {
		t.Fatal("want an error")
	}
	if msg := err.Error(); strings.Contains(msg, "canary-q") || strings.Contains(msg, "/p") {
		t.Errorf("message leaks the path or query: %s", msg)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "a.localhost": true, "127.0.0.1": true, "127.9.9.9": true,
		"::1": true, "[::1]": true, "10.0.0.1": false, "localhost.evil.com": false, "127.1": false, "example.com": false,
	} {
		if got := agentkeys.IsLoopbackHost(h); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func FuzzParseHostPattern(f *testing.F) {
	for _, s := range []string{"api.resend.com", "*.x.com", "[::1]:80", "127.0.0.1:8080", "*", "a*.b.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := agentkeys.ParseHostPattern(s)
		if err != nil {
			return
		}
		// A pattern that was accepted is stable and never a bare or inner wildcard.
		again, err := agentkeys.ParseHostPattern(p)
		if err != nil || again != p {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, p, again, err)
		}
		if p == "*" || p == "*." || strings.Contains(p[1:], "*") {
			t.Fatalf("accepted a broad wildcard: %q", p)
		}
	})
}
