package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// FuzzCheckTarget checks the destination check as the proxy runs it (IDNA
// step, then agentkeys.CheckTarget): an accepted URL never has user info or
// a fragment, its host matches the allowlist, and the host that would be
// dialled (after re-parsing the URL sent upstream) is the host that matched.
func FuzzCheckTarget(f *testing.F) {
	for _, s := range []string{
		"https://api.example.com/v1", "https://API.Example.COM./x?y=1", "https://api.example.com@evil.com/",
		"https://evil.com\\@api.example.com/", "https://api.example.com#x", "https://аpi.example.com/",
		"https://api.example.com.evil.com/", "http://127.1:8080/", "http://127.0.0.1:8080/", "http://[::1]:8080/",
		"https://x.apis.example.org/", "https://bücher.de/", "https://ｅｘａｍｐｌｅ.com/", "https://a%2eb.example.org/",
		"https://api.example.com:443/", "https://api.example.com:0443/", "//api.example.com", "https:api.example.com",
	} {
		f.Add(s, "api.example.com")
		f.Add(s, "*.apis.example.org")
		f.Add(s, "127.0.0.1:8080")
	}
	f.Add("https://xn--bcher-kva.de/", "xn--bcher-kva.de")
	f.Fuzz(func(t *testing.T, raw, pattern string) {
		allowed, err := agentkeys.ParseAllowedHosts([]string{pattern})
		if err != nil {
			return
		}
		norm, err := proxy.NormalizeTarget(raw)
		if err != nil {
			return
		}
		u, err := agentkeys.CheckTarget(norm, allowed)
		if err != nil {
			return
		}
		if u.User != nil || u.Fragment != "" || strings.Contains(norm, "#") || strings.Contains(raw, "\\") {
			t.Fatalf("accepted %q (→ %q) with user info, fragment or backslash", raw, norm)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if !agentkeys.MatchHost(allowed, u.Hostname(), u.Port()) {
			t.Fatalf("accepted %q: host %q port %q does not match %v", raw, u.Hostname(), u.Port(), allowed)
		}
		if u.Scheme == "http" && !agentkeys.IsLoopbackHost(u.Hostname()) {
			t.Fatalf("accepted plain http to %q", u.Host)
		}
		for i := 0; i < len(u.Host); i++ {
			if u.Host[i] >= 0x80 || u.Host[i] <= 0x20 {
				t.Fatalf("accepted non-ASCII or control byte in host %q", u.Host)
			}
		}
		// What the transport dials is the re-serialised URL's host.
		again, err := url.Parse(u.String())
		if err != nil {
			t.Fatalf("accepted URL %q does not re-parse: %v", u.String(), err)
		}
		if again.Host != u.Host || again.User != nil {
			t.Fatalf("re-parsed host %q differs from checked host %q", again.Host, u.Host)
		}
	})
}

// FuzzInject sends agent-chosen headers, Connection tokens and queries
// through the real handler (Do → Rewrite → Inject) to a recording transport:
// the upstream-bound request holds exactly one value under every injected
// name, the credential's, with no CR or LF, and none of agentkeys' own headers.
func FuzzInject(f *testing.F) {
	f.Add(uint8(0), "sk_live_1", "Authorization", "Bearer agent", "Authorization", "a=1")
	f.Add(uint8(1), "sid=abc; csrf=x", "Cookie", "sid=agent; theme=dark", "Cookie", "")
	f.Add(uint8(2), "key-1", "x-api-key", "agent", "x-api-key, close", "")
	f.Add(uint8(3), "secret", "X-Other", "1", "", "key=agent&key=again&x=%zz")
	f.Add(uint8(4), "pw", "authorization", "Basic Zm9vOmJhcg==", "keep-alive, Authorization", "")
	f.Add(uint8(5), "tok", "X-Target-Url", "https://evil.example/", "X-Credential-Name", "")
	f.Fuzz(func(t *testing.T, kind uint8, value, agentName, agentValue, connection, query string) {
		var typ agentkeys.CredentialType
		var s agentkeys.Secret
		switch kind % 6 {
		case 0:
			typ, s = agentkeys.APIKey, agentkeys.Secret{Value: value}
		case 1:
			typ, s = agentkeys.Cookie, agentkeys.Secret{Value: value}
		case 2:
			typ, s = agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "X-Api-Key", Value: value}}}
		case 3:
			typ, s = agentkeys.QueryParam, agentkeys.Secret{Param: "key", Value: value}
		case 4:
			typ, s = agentkeys.BasicAuth, agentkeys.Secret{Username: "user", Password: value}
		case 5:
			typ, s = agentkeys.OAuth, agentkeys.Secret{Value: value}
		}
		if s.Validate(typ) != nil || strings.ContainsAny(query, "#\\ \t\r\n\x00") || strings.ContainsAny(agentValue+connection, "\r\n\x00") {
			return
		}
		rt := &recordingTransport{}
		b := newMemBackend()
		tok := b.assign(b.addCredential(t, "fuzz", typ, []string{"api.example.com"}, s), "a")
		h := proxy.New(b, proxy.Config{Transport: rt})
		target := "https://api.example.com/p"
		if query != "" {
			target += "?" + query
		}
		hdr := http.Header{}
		hdr.Add(agentName, agentValue)
		if connection != "" {
			hdr.Add("Connection", connection)
		}
		resp, err := h.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, URL: target, Header: hdr})
		if err != nil {
			return // refused (bad target); nothing was sent
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out := rt.last()
		if out.Method == "" {
			t.Fatal("no upstream request recorded")
		}
		for k := range out.Header {
			switch http.CanonicalHeaderKey(k) {
			case agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod, agentkeys.HeaderCredentialName:
				t.Fatalf("%s reached the upstream", k)
			}
		}
		one := func(name, want string) {
			var got []string
			for k, vv := range out.Header {
				if strings.EqualFold(k, name) {
					got = append(got, vv...)
				}
			}
			if len(got) != 1 || (want != "" && got[0] != want) || strings.ContainsAny(got[0], "\r\n") {
				t.Fatalf("%s = %q, want exactly one value %q", name, got, want)
			}
		}
		switch typ {
		case agentkeys.APIKey, agentkeys.OAuth:
			one("Authorization", "Bearer "+value)
		case agentkeys.BasicAuth:
			one("Authorization", "")
		case agentkeys.CustomHeader:
			one("X-Api-Key", value)
			if len(out.Header.Values("Authorization")) != 0 {
				t.Fatal("the agent's Authorization reached the upstream")
			}
		case agentkeys.Cookie:
			one("Cookie", "")
			// Every cookie the credential sets appears exactly as often as in
			// the credential: none of the agent's cookies of that name survive.
			count := func(names []string) map[string]int {
				m := map[string]int{}
				for _, n := range names {
					m[n]++
				}
				return m
			}
			got, want := count(agentkeys.CookieNames(out.Header.Get("Cookie"))), count(agentkeys.CookieNames(value))
			for name, n := range want {
				if got[name] != n {
					t.Fatalf("cookie %q appears %d times in %q, want %d", name, got[name], out.Header.Get("Cookie"), n)
				}
			}
		case agentkeys.QueryParam:
			if strings.Contains(out.URL.RawQuery, "\r") || strings.Contains(out.URL.RawQuery, "\n") {
				t.Fatalf("CR/LF in query %q", out.URL.RawQuery)
			}
			q, err := url.ParseQuery(out.URL.RawQuery)
			if v := q["key"]; len(v) != 1 || v[0] != value {
				t.Fatalf("key = %q in %q (%v)", v, out.URL.RawQuery, err)
			}
			if len(out.Header.Values("Authorization")) != 0 {
				t.Fatal("the agent's Authorization reached the upstream")
			}
		}
	})
}
