package agentkeys_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

func TestResolveAllowedHosts(t *testing.T) {
	tests := []struct {
		name     string
		explicit []string
		service  string
		credName string
		want     string
		code     string
	}{
		{"explicit wins", []string{"acme.atlassian.net"}, "", "Jira", "acme.atlassian.net", ""},
		{"service", nil, "stripe", "payments", "api.stripe.com,files.stripe.com", ""},
		{"service alias case", nil, "Google Maps", "x", "maps.googleapis.com", ""},
		{"recognised from name", nil, "", "Resend Production", "api.resend.com", ""},
		{"recognised two words", nil, "", "google maps key", "maps.googleapis.com", ""},
		{"recognised alias", nil, "", "slack-bot", "slack.com,hooks.slack.com", ""},
		{"preset with a host to fill in", nil, "", "jira-prod", "", agentkeys.EINVALID},
		{"service with a host to fill in", nil, "supabase", "x", "", agentkeys.EINVALID},
		{"ambiguous name", nil, "", "stripe to resend bridge", "", agentkeys.EINVALID},
		{"unknown name", nil, "", "my thing", "", agentkeys.EINVALID},
		{"unknown service", nil, "nope", "Resend", "", agentkeys.EINVALID},
		{"bad explicit", []string{"*"}, "", "Resend", "", agentkeys.EINVALID},
		{"duplicates dropped", []string{"A.com", "a.com."}, "", "", "a.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := agentkeys.ResolveAllowedHosts(tt.explicit, tt.service, tt.credName)
			if code := agentkeys.ErrorCode(err); code != tt.code {
				t.Fatalf("code = %q (%v), want %q", code, err, tt.code)
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("hosts = %v, want %s", got, tt.want)
			}
		})
	}
	for _, service := range []string{"resend", "stripe", "github", "anthropic", "openai", "slack", "twilio", "atlassian", "google-maps", "telegram", "cloudflare", "supabase", "notion", "linear"} {
		if _, ok := agentkeys.LookupPreset(service); !ok {
			t.Errorf("no preset for %s", service)
		}
	}
	for _, p := range agentkeys.Presets {
		if strings.Contains(strings.Join(p.Hosts, ""), "<") {
			continue // a host the user fills in; ResolveAllowedHosts says so (above)
		}
		if _, err := agentkeys.ParseAllowedHosts(p.Hosts); err != nil {
			t.Errorf("preset %s has a bad host: %v", p.Service, err)
		}
	}
}

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		p, w := agentkeys.NewProxyToken(), agentkeys.NewWorkspaceKey()
		if !agentkeys.IsProxyToken(p) || !agentkeys.IsWorkspaceKey(w) || agentkeys.IsProxyToken(w) || agentkeys.IsWorkspaceKey(p) {
			t.Fatalf("bad token forms %q %q", p, w)
		}
		// 256 bits in base62 is 43 characters, always.
		if len(p) != len("pxr_")+43 || len(w) != len("ak_ws_")+43 {
			t.Fatalf("unexpected lengths %d %d", len(p), len(w))
		}
		if seen[p] || seen[w] {
			t.Fatal("repeated token")
		}
		seen[p], seen[w] = true, true
	}
	h := agentkeys.HashToken("pxr_abc")
	if len(h) != 64 || !agentkeys.EqualHash(h, agentkeys.HashToken("pxr_abc")) || agentkeys.EqualHash(h, agentkeys.HashToken("pxr_abd")) {
		t.Error("HashToken/EqualHash")
	}
	a, b := agentkeys.NewID("cred"), agentkeys.NewID("cred")
	if !strings.HasPrefix(a, "cred_") || len(a) != len("cred_")+26 || a == b {
		t.Errorf("NewID: %q %q", a, b)
	}
}

func TestSealSecret(t *testing.T) {
	key, _ := agentkeys.NewKey()
	secret := &agentkeys.Secret{Value: "canary-seal-value", Headers: []agentkeys.Header{{Name: "x-api-key", Value: "h"}}}
	sealed, err := agentkeys.SealSecret(key, secret, "ws_1", "cred_1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("canary-seal-value")) {
		t.Fatal("plaintext in ciphertext")
	}
	got, err := agentkeys.OpenSecret(key, sealed, "ws_1", "cred_1", 1)
	if err != nil || got.Value != secret.Value || len(got.Headers) != 1 {
		t.Fatalf("round trip: %v %v", got, err)
	}
	t.Run("ErrTamper", func(t *testing.T) {
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			if _, err := agentkeys.OpenSecret(key, bad, "ws_1", "cred_1", 1); err != agentkeys.ErrDecrypt {
				t.Fatalf("byte %d flipped: err = %v, want ErrDecrypt", i, err)
			}
		}
	})
	t.Run("ErrWrongBinding", func(t *testing.T) {
		other, _ := agentkeys.NewKey()
		for name, open := range map[string]func() error{
			"credential": func() error { _, err := agentkeys.OpenSecret(key, sealed, "ws_1", "cred_2", 1); return err },
			"workspace":  func() error { _, err := agentkeys.OpenSecret(key, sealed, "ws_2", "cred_1", 1); return err },
			"version":    func() error { _, err := agentkeys.OpenSecret(key, sealed, "ws_1", "cred_1", 2); return err },
			"key":        func() error { _, err := agentkeys.OpenSecret(other, sealed, "ws_1", "cred_1", 1); return err },
			"short":      func() error { _, err := agentkeys.OpenSecret(key, sealed[:10], "ws_1", "cred_1", 1); return err },
		} {
			if err := open(); err != agentkeys.ErrDecrypt {
				t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
			}
		}
	})
	t.Run("WrapKey", func(t *testing.T) {
		root, _ := agentkeys.NewKey()
		wrapped, err := agentkeys.WrapKey(root, key, agentkeys.DataKeyAAD("ws_1", 1))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := agentkeys.UnwrapKey(root, wrapped, agentkeys.DataKeyAAD("ws_1", 1)); err != nil || got != key {
			t.Fatal("unwrap failed")
		}
		other, _ := agentkeys.NewKey()
		if _, err := agentkeys.UnwrapKey(other, wrapped, agentkeys.DataKeyAAD("ws_1", 1)); err != agentkeys.ErrDecrypt {
			t.Fatalf("wrong root key: %v", err)
		}
	})
}

func TestSecretNeverPrints(t *testing.T) {
	s := agentkeys.Secret{Value: "canary-print", Password: "canary-print", Headers: []agentkeys.Header{{Name: "a", Value: "canary-print"}}}
	key, _ := agentkeys.NewKey()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "key", key)
	j, _ := json.Marshal(map[string]any{"s": s, "p": &s})
	out := fmt.Sprintf("%v %+v %#v %s %v %#v", s, s, s, s, key, key) + logs.String() + string(j)
	if strings.Contains(out, "canary-print") || strings.Contains(out, fmt.Sprint(key[:])) {
		t.Fatalf("secret printed: %s", out)
	}
}

func TestSecretValidate(t *testing.T) {
	tests := []struct {
		name string
		typ  agentkeys.CredentialType
		s    agentkeys.Secret
		ok   bool
	}{
		{"api key", agentkeys.APIKey, agentkeys.Secret{Value: "k"}, true},
		{"api key missing", agentkeys.APIKey, agentkeys.Secret{}, false},
		{"api key blank", agentkeys.APIKey, agentkeys.Secret{Value: "  "}, false},
		{"api key CR", agentkeys.APIKey, agentkeys.Secret{Value: "a\rb"}, false},
		{"api key LF", agentkeys.APIKey, agentkeys.Secret{Value: "a\nX-Evil: 1"}, false},
		{"api key NUL", agentkeys.APIKey, agentkeys.Secret{Value: "a\x00"}, false},
		{"api key control", agentkeys.APIKey, agentkeys.Secret{Value: "a\x01b"}, false},
		{"api key DEL", agentkeys.APIKey, agentkeys.Secret{Value: "a\x7fb"}, false},
		{"api key tab", agentkeys.APIKey, agentkeys.Secret{Value: "a\tb"}, true},
		{"cookie control", agentkeys.Cookie, agentkeys.Secret{Value: "a=\x02"}, false},
		{"basic control password", agentkeys.BasicAuth, agentkeys.Secret{Username: "u", Password: "p\x01"}, true},
		{"cookie", agentkeys.Cookie, agentkeys.Secret{Value: "a=b; c=d"}, true},
		{"cookie no pair", agentkeys.Cookie, agentkeys.Secret{Value: ";;="}, false},
		{"cookie no equals", agentkeys.Cookie, agentkeys.Secret{Value: "notacookie"}, false},
		{"cookie one bad pair", agentkeys.Cookie, agentkeys.Secret{Value: "a=1; junk"}, false},
		{"cookie bad name", agentkeys.Cookie, agentkeys.Secret{Value: "a b=1"}, false},
		{"cookie trailing semicolon", agentkeys.Cookie, agentkeys.Secret{Value: "a=1; b=; "}, true},
		{"basic", agentkeys.BasicAuth, agentkeys.Secret{Username: "u", Password: "p"}, true},
		{"basic colon user", agentkeys.BasicAuth, agentkeys.Secret{Username: "u:x", Password: "p"}, false},
		{"basic no password", agentkeys.BasicAuth, agentkeys.Secret{Username: "u"}, false},
		{"header", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "v"}}}, true},
		{"header none", agentkeys.CustomHeader, agentkeys.Secret{}, false},
		{"header host", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "host", Value: "v"}}}, false},
		{"header content-length", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "Content-Length", Value: "1"}}}, false},
		{"header connection", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "connection", Value: "close"}}}, false},
		{"header proxy-", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "Proxy-Foo", Value: "1"}}}, false},
		{"header bad name", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x y", Value: "1"}}}, false},
		{"header twice", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "a", Value: "1"}, {Name: "A", Value: "2"}}}, false},
		{"header LF value", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "a", Value: "1\n"}}}, false},
		{"header control value", agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "a", Value: "1\x1b"}}}, false},
		{"query", agentkeys.QueryParam, agentkeys.Secret{Param: "key", Value: "v"}, true},
		{"query no param", agentkeys.QueryParam, agentkeys.Secret{Value: "v"}, false},
		{"query bad param", agentkeys.QueryParam, agentkeys.Secret{Param: "a&b", Value: "v"}, false},
		{"unknown type", agentkeys.CredentialType("NOPE"), agentkeys.Secret{Value: "v"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate(tt.typ)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if agentkeys.ErrorCode(err) != agentkeys.EINVALID {
					t.Errorf("code %s", agentkeys.ErrorCode(err))
				}
				for _, v := range []string{tt.s.Value, tt.s.Password} {
					if len(v) > 3 && strings.Contains(err.Error(), v) {
						t.Errorf("message echoes the value: %s", err)
					}
				}
			}
		})
	}
	if _, err := agentkeys.ParseCredentialType("api-key"); err != nil {
		t.Error(err)
	}
	if _, err := agentkeys.ParseCredentialType("bogus"); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Error("bogus type accepted")
	}
}

func TestInject(t *testing.T) {
	newReq := func() *http.Request {
		r, _ := http.NewRequest("GET", "https://api.example.com/p?a=1&key=agent&b=2", nil)
		r.Header["authorization"] = []string{"Bearer agent"} // non-canonical spelling
		r.Header.Add("Authorization", "Bearer agent2")
		r.Header.Set("X-Api-Key", "agent")
		r.Header.Add("Cookie", "keep=1; sid=agent")
		r.Header.Add("Cookie", "other=2")
		return r
	}
	t.Run("API_KEY", func(t *testing.T) {
		r := newReq()
		(&agentkeys.Secret{Value: "tok"}).Inject(agentkeys.APIKey, r)
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer tok" || len(r.Header["authorization"]) != 0 {
			t.Fatalf("Authorization = %v (raw %v)", got, r.Header)
		}
	})
	t.Run("BASIC_AUTH", func(t *testing.T) {
		r := newReq()
		(&agentkeys.Secret{Username: "u", Password: "p"}).Inject(agentkeys.BasicAuth, r)
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")) {
			t.Fatalf("Authorization = %v", got)
		}
	})
	t.Run("COOKIE", func(t *testing.T) {
		r := newReq()
		(&agentkeys.Secret{Value: "sid=real; ct0=x"}).Inject(agentkeys.Cookie, r)
		if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != "keep=1; other=2; sid=real; ct0=x" {
			t.Fatalf("Cookie = %v", got)
		}
	})
	t.Run("CUSTOM_HEADER", func(t *testing.T) {
		r := newReq()
		names := (&agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "real"}}}).Inject(agentkeys.CustomHeader, r)
		if got := r.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != "real" || names[0] != "X-Api-Key" {
			t.Fatalf("X-Api-Key = %v, names %v", got, names)
		}
	})
	t.Run("QUERY_PARAM", func(t *testing.T) {
		r := newReq()
		(&agentkeys.Secret{Param: "key", Value: "re al&x=y"}).Inject(agentkeys.QueryParam, r)
		if r.URL.RawQuery != "a=1&b=2&key=re+al%26x%3Dy" {
			t.Fatalf("query = %q", r.URL.RawQuery)
		}
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if q["key"][0] != "re al&x=y" || len(q["key"]) != 1 {
			t.Fatalf("parsed %v", q)
		}
	})
}

func TestErrorCodes(t *testing.T) {
	for code, status := range map[string]int{
		agentkeys.EINVALID: 400, agentkeys.EUNAUTHORIZED: 401, agentkeys.EDESTINATION: 403, agentkeys.EFORBIDDEN: 403,
		agentkeys.ENOTFOUND: 404, agentkeys.ETOOLARGE: 413, agentkeys.ERATELIMIT: 429, agentkeys.EUPSTREAM: 502,
		agentkeys.ETIMEOUT: 504, "WHATEVER": 500,
	} {
		if got := agentkeys.StatusForCode(code); got != status {
			t.Errorf("StatusForCode(%s) = %d, want %d", code, got, status)
		}
	}
	for _, code := range []string{agentkeys.EINVALID, agentkeys.EUNAUTHORIZED, agentkeys.ENOTFOUND, agentkeys.ECONFLICT, agentkeys.ETIMEOUT} {
		if got := agentkeys.CodeForStatus(agentkeys.StatusForCode(code)); got != code {
			t.Errorf("round trip %s -> %s", code, got)
		}
	}
	wrapped := fmt.Errorf("open: %w", agentkeys.Errorf(agentkeys.ENOTFOUND, "no such credential"))
	if agentkeys.ErrorCode(wrapped) != agentkeys.ENOTFOUND || agentkeys.ErrorMessage(wrapped) != "no such credential" {
		t.Error("wrapped error lost its code")
	}
	if agentkeys.ErrorCode(fmt.Errorf("boom")) != agentkeys.EINTERNAL || agentkeys.ErrorMessage(fmt.Errorf("boom")) != "internal error" {
		t.Error("plain errors are internal")
	}
}

func TestCredentialInputNormalize(t *testing.T) {
	in := &agentkeys.CredentialInput{Name: "  Resend Production ", Type: "api_key", Secret: agentkeys.Secret{Value: "re_1"}}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	if in.Name != "Resend Production" || in.Type != agentkeys.APIKey || strings.Join(in.AllowedHosts, ",") != "api.resend.com" {
		t.Fatalf("normalised to %+v", in)
	}
	for name, in := range map[string]*agentkeys.CredentialInput{
		"no name":  {Type: agentkeys.APIKey, AllowedHosts: []string{"a.com"}, Secret: agentkeys.Secret{Value: "v"}},
		"bad type": {Name: "x", Type: "NOPE", AllowedHosts: []string{"a.com"}, Secret: agentkeys.Secret{Value: "v"}},
		"no hosts": {Name: "x", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "v"}},
		"no value": {Name: "x", Type: agentkeys.APIKey, AllowedHosts: []string{"a.com"}},
		"control":  {Name: "x\x1b", Type: agentkeys.APIKey, AllowedHosts: []string{"a.com"}, Secret: agentkeys.Secret{Value: "v"}},
		"too long": {Name: strings.Repeat("x", 101), Type: agentkeys.APIKey, AllowedHosts: []string{"a.com"}, Secret: agentkeys.Secret{Value: "v"}},
		"id-like":  {Name: agentkeys.NewID("agent"), Type: agentkeys.APIKey, AllowedHosts: []string{"a.com"}, Secret: agentkeys.Secret{Value: "v"}},
	} {
		if err := in.Normalize(); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}

func TestNewID_TimeOrdered(t *testing.T) {
	prev := agentkeys.NewID("evt")
	for i := 0; i < 50; i++ {
		time.Sleep(2 * time.Millisecond)
		next := agentkeys.NewID("evt")
		if next <= prev {
			t.Fatalf("ids not time-ordered: %s then %s", prev, next)
		}
		if strings.Trim(next[4:], "0123456789abcdefghjkmnpqrstvwxyz") != "" {
			t.Fatalf("not Crockford base32: %s", next)
		}
		prev = next
	}
}

func BenchmarkNewID(b *testing.B) {
	for b.Loop() {
		agentkeys.NewID("evt")
	}
}

func TestCredentialUpdateNormalize(t *testing.T) {
	name := "  New Name "
	upd := &agentkeys.CredentialUpdate{Name: &name, AllowedHosts: []string{"API.example.com.", "api.example.com"}}
	if err := upd.Normalize(); err != nil {
		t.Fatal(err)
	}
	if *upd.Name != "New Name" || strings.Join(upd.AllowedHosts, ",") != "api.example.com" {
		t.Fatalf("normalised to %q %v", *upd.Name, upd.AllowedHosts)
	}
	blank := " "
	for what, bad := range map[string]*agentkeys.CredentialUpdate{
		"blank name":  {Name: &blank},
		"empty hosts": {AllowedHosts: []string{}},
		"bad host":    {AllowedHosts: []string{"*"}},
	} {
		if err := bad.Normalize(); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", what, err)
		}
	}
	if err := (&agentkeys.CredentialUpdate{}).Normalize(); err != nil {
		t.Errorf("empty update: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	k, _ := agentkeys.NewKey()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := agentkeys.ParseKey("K", " "+enc.EncodeToString(k[:])+"\n")
		if err != nil || got != k {
			t.Fatalf("ParseKey: %v", err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		_, err := agentkeys.ParseKey("THE_KEY", bad)
		if agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), "THE_KEY") || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
}

func TestInferCredentialType(t *testing.T) {
	for _, tt := range []struct {
		headers, user, param bool
		want                 agentkeys.CredentialType
	}{
		{false, false, false, agentkeys.APIKey},
		{true, false, false, agentkeys.CustomHeader},
		{true, true, true, agentkeys.CustomHeader},
		{false, true, false, agentkeys.BasicAuth},
		{false, true, true, agentkeys.BasicAuth},
		{false, false, true, agentkeys.QueryParam},
	} {
		if got := agentkeys.InferCredentialType(tt.headers, tt.user, tt.param); got != tt.want {
			t.Errorf("InferCredentialType(%v, %v, %v) = %s, want %s", tt.headers, tt.user, tt.param, got, tt.want)
		}
	}
}
