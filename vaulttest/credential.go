package vaulttest

import (
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// validInputs has one valid input per credential type.
func validInputs() map[agentkeys.CredentialType]*agentkeys.CredentialInput {
	h := []string{"api.example.com"}
	return map[agentkeys.CredentialType]*agentkeys.CredentialInput{
		agentkeys.APIKey:       {Name: "Key", Type: agentkeys.APIKey, AllowedHosts: h, Secret: agentkeys.Secret{Value: "k-1"}},
		agentkeys.Cookie:       {Name: "Cookie", Type: agentkeys.Cookie, AllowedHosts: h, Secret: agentkeys.Secret{Value: "a=b; c=d"}},
		agentkeys.BasicAuth:    {Name: "Basic", Type: agentkeys.BasicAuth, AllowedHosts: h, Secret: agentkeys.Secret{Username: "u", Password: "p"}},
		agentkeys.CustomHeader: {Name: "Header", Type: agentkeys.CustomHeader, AllowedHosts: h, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "h-1"}}}},
		agentkeys.QueryParam:   {Name: "Query", Type: agentkeys.QueryParam, AllowedHosts: h, Secret: agentkeys.Secret{Param: "key", Value: "q-1"}},
		agentkeys.OAuth:        {Name: "OAuth", Type: agentkeys.OAuth, AllowedHosts: h, Secret: agentkeys.Secret{Value: "at-1"}},
	}
}

func (s *suite) testCreateCredential(t *testing.T) {
	t.Run("EveryType", func(t *testing.T) {
		v := s.vault(t)
		for _, typ := range agentkeys.CredentialTypes {
			in := validInputs()[typ]
			before := time.Now().Add(-time.Minute)
			c := mustCreateCredential(t, v, in)
			if !strings.HasPrefix(c.ID, "cred_") {
				t.Errorf("%s: id %q does not start with cred_", typ, c.ID)
			}
			if c.Name != in.Name || c.Type != typ {
				t.Errorf("%s: got name %q type %q", typ, c.Name, c.Type)
			}
			if strings.Join(c.AllowedHosts, ",") != "api.example.com" {
				t.Errorf("%s: allowed hosts %q", typ, c.AllowedHosts)
			}
			if c.CreatedAt.Before(before) || c.CreatedAt.After(time.Now().Add(time.Minute)) {
				t.Errorf("%s: createdAt %v is not now", typ, c.CreatedAt)
			}
			if c.LastUsedAt != nil {
				t.Errorf("%s: new credential has lastUsedAt %v", typ, c.LastUsedAt)
			}
			got, err := v.FindCredential(t.Context(), c.ID)
			mustNoErr(t, err, "FindCredential")
			if got.ID != c.ID || got.Name != c.Name || got.Type != c.Type || !got.CreatedAt.Equal(c.CreatedAt) {
				t.Errorf("%s: stored %+v, created %+v", typ, got, c)
			}
		}
		if n := len(credentialNames(t, v)); n != len(agentkeys.CredentialTypes) {
			t.Fatalf("listed %d credentials, want %d", n, len(agentkeys.CredentialTypes))
		}
	})
	t.Run("NormalisesInput", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, &agentkeys.CredentialInput{
			Name: "  Spaced  ", Type: "api-key", AllowedHosts: []string{"API.Example.COM.", "api.example.com", "*.Example.org"},
			Secret: agentkeys.Secret{Value: "v"},
		})
		if c.Name != "Spaced" || c.Type != agentkeys.APIKey {
			t.Fatalf("got name %q type %q, want Spaced API_KEY", c.Name, c.Type)
		}
		if got := strings.Join(c.AllowedHosts, ","); got != "api.example.com,*.example.org" {
			t.Fatalf("allowed hosts = %s", got)
		}
	})
	t.Run("PresetFromName", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, &agentkeys.CredentialInput{Name: "Resend Production", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "re_1"}})
		if got := strings.Join(c.AllowedHosts, ","); got != "api.resend.com" {
			t.Fatalf("allowed hosts = %s, want api.resend.com", got)
		}
	})
	t.Run("PresetFromService", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, &agentkeys.CredentialInput{Name: "payments", Service: "stripe", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "sk"}})
		if got := strings.Join(c.AllowedHosts, ","); got != "api.stripe.com,files.stripe.com" {
			t.Fatalf("allowed hosts = %s", got)
		}
	})
	t.Run("ErrDuplicateName", func(t *testing.T) {
		v := s.vault(t)
		mustCreateCredential(t, v, apiKey("Stripe Live", "one"))
		for _, name := range []string{"Stripe Live", "stripe live", "STRIPE LIVE", " Stripe Live "} {
			_, err := v.CreateCredential(t.Context(), apiKey(name, "two"))
			wantCode(t, err, agentkeys.ECONFLICT)
		}
		wantUnchanged(t, v, []string{"Stripe Live"}, nil)
	})
	t.Run("ConcurrentSameName", func(t *testing.T) {
		v := s.vault(t)
		const n = 8
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func(i int) {
				_, err := v.CreateCredential(t.Context(), apiKey([]string{"Race", "race", "RACE", "rAcE"}[i%4], "v"))
				errs <- err
			}(i)
		}
		ok := 0
		for i := 0; i < n; i++ {
			err := <-errs
			switch agentkeys.ErrorCode(err) {
			case "":
				ok++
			case agentkeys.ECONFLICT:
			default:
				t.Errorf("concurrent create: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent creates of one name succeeded, want exactly 1", ok)
		}
		if got := credentialNames(t, v); len(got) != 1 {
			t.Fatalf("credentials = %q", got)
		}
	})
	bad := []struct {
		name string
		in   *agentkeys.CredentialInput
	}{
		{"ErrUnknownType", &agentkeys.CredentialInput{Name: "x", Type: "PASSWORD", AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Value: "v"}}},
		{"ErrEmptyType", &agentkeys.CredentialInput{Name: "x", AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Value: "v"}}},
		{"ErrMissingName", apiKey("  ", "v")},
		{"ErrLongName", apiKey(strings.Repeat("n", 101), "v")},
		{"ErrControlCharInName", apiKey("a\x01b", "v")},
		{"ErrMissingValue", apiKey("x", "")},
		{"ErrBlankValue", apiKey("x", "   ")},
		{"ErrMissingOAuthToken", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.OAuth, AllowedHosts: []string{"a.example.com"}}},
		{"ErrValueWithNewline", apiKey("x", "abc\r\nX-Evil: 1")},
		{"ErrValueWithNUL", apiKey("x", "abc\x00")},
		{"ErrMissingUsername", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.BasicAuth, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Password: "p"}}},
		{"ErrMissingPassword", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.BasicAuth, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Username: "u"}}},
		{"ErrColonInUsername", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.BasicAuth, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Username: "u:v", Password: "p"}}},
		{"ErrBadCookie", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.Cookie, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Value: ";;"}}},
		{"ErrNoHeaders", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.CustomHeader, AllowedHosts: []string{"a.example.com"}}},
		{"ErrHostHeader", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.CustomHeader, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "Host", Value: "evil.example"}}}}},
		{"ErrContentLengthHeader", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.CustomHeader, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "content-length", Value: "1"}}}}},
		{"ErrHopByHopHeader", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.CustomHeader, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "Connection", Value: "close"}}}}},
		{"ErrBadHeaderName", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.CustomHeader, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x key", Value: "v"}}}}},
		{"ErrMissingParam", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.QueryParam, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Value: "v"}}},
		{"ErrBadParam", &agentkeys.CredentialInput{Name: "x", Type: agentkeys.QueryParam, AllowedHosts: []string{"a.example.com"}, Secret: agentkeys.Secret{Param: "a&b", Value: "v"}}},
		{"ErrNoAllowedHosts", &agentkeys.CredentialInput{Name: "my thing", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "v"}}},
		{"ErrUnknownService", &agentkeys.CredentialInput{Name: "x", Service: "nosuchservice", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "v"}}},
	}
	for _, host := range []string{"*", "*.", "*.com", "*.co.uk", "*.com.au:443", "a*.example.com", "https://api.example.com", "api.example.com/v1", "user@api.example.com", "api.example.com:0", "api.example.com:99999", "exämple.com", "bad host"} {
		bad = append(bad, struct {
			name string
			in   *agentkeys.CredentialInput
		}{"ErrBadHost/" + host, apiKey("x", "v", host)})
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			v := s.vault(t)
			mustCreateCredential(t, v, apiKey("existing", "v"))
			_, err := v.CreateCredential(t.Context(), tc.in)
			wantCode(t, err, agentkeys.EINVALID)
			wantUnchanged(t, v, []string{"existing"}, nil)
		})
	}
}

func (s *suite) testListCredentials(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		v := s.vault(t)
		cs, err := v.ListCredentials(t.Context())
		mustNoErr(t, err, "ListCredentials")
		if len(cs) != 0 {
			t.Fatalf("new vault lists %d credentials", len(cs))
		}
	})
	t.Run("OrderedByName", func(t *testing.T) {
		v := s.vault(t)
		// Case-insensitively: upper-case names sort among the others.
		for _, n := range []string{"charlie", "Bravo2", "alpha1", "Alpha", "bravo"} {
			mustCreateCredential(t, v, apiKey(n, "v"))
		}
		if got := strings.Join(credentialNames(t, v), ","); got != "Alpha,alpha1,bravo,Bravo2,charlie" {
			t.Fatalf("order = %s", got)
		}
	})
}

func (s *suite) testFindCredential(t *testing.T) {
	v := s.vault(t)
	c := mustCreateCredential(t, v, apiKey("GitHub Bot", "v"))
	mustCreateCredential(t, v, apiKey("other", "v"))
	for _, ref := range []string{c.ID, "GitHub Bot", "github bot", "GITHUB BOT"} {
		t.Run("ByRef/"+ref, func(t *testing.T) {
			got, err := v.FindCredential(t.Context(), ref)
			mustNoErr(t, err, "FindCredential")
			if got.ID != c.ID {
				t.Fatalf("found %s, want %s", got.ID, c.ID)
			}
		})
	}
	for _, ref := range []string{"nope", "cred_00000000000000000000000000", "GitHub", ""} {
		t.Run("ErrNotFound/"+ref, func(t *testing.T) {
			_, err := v.FindCredential(t.Context(), ref)
			wantCode(t, err, agentkeys.ENOTFOUND)
		})
	}
	t.Run("InjectedNames", s.testInjectedNames)
}

// testInjectedNames: FindCredential, by id and by name, names the headers
// of a CUSTOM_HEADER credential and the parameter of a QUERY_PARAM one
// (never a value), follows a new value, and gives other types none;
// ListCredentials opens no value, so it names nothing.
func (s *suite) testInjectedNames(t *testing.T) {
	v := s.vault(t)
	ins := validInputs()
	ins[agentkeys.CustomHeader].Secret.Headers = []agentkeys.Header{{Name: "x-api-key", Value: "h-1"}, {Name: "Anthropic-Version", Value: "h-2"}}
	wantHeaders := map[agentkeys.CredentialType]string{agentkeys.CustomHeader: "x-api-key,Anthropic-Version"}
	wantParam := map[agentkeys.CredentialType]string{agentkeys.QueryParam: "key"}
	for _, typ := range agentkeys.CredentialTypes {
		c := mustCreateCredential(t, v, ins[typ])
		for _, ref := range []string{c.ID, strings.ToLower(c.Name)} {
			got, err := v.FindCredential(t.Context(), ref)
			mustNoErr(t, err, "FindCredential")
			if h := strings.Join(got.HeaderNames, ","); h != wantHeaders[typ] || got.ParamName != wantParam[typ] {
				t.Errorf("%s by %q: header names %q, parameter name %q; want %q, %q", typ, ref, h, got.ParamName, wantHeaders[typ], wantParam[typ])
			}
			wantNoSecret(t, string(typ), got, "h-1", "h-2", "q-1", "k-1", "at-1", "a=b")
		}
	}
	list, err := v.ListCredentials(t.Context())
	mustNoErr(t, err, "ListCredentials")
	for _, c := range list {
		if c.HeaderNames != nil || c.ParamName != "" {
			t.Errorf("ListCredentials names %s's value (%q, %q): the list must open no value", c.Name, c.HeaderNames, c.ParamName)
		}
	}
	for _, tc := range []struct {
		name           string
		secret         *agentkeys.Secret
		headers, param string
	}{
		{"Header", &agentkeys.Secret{Headers: []agentkeys.Header{{Name: "X-New", Value: "h-3"}}}, "X-New", ""},
		{"Query", &agentkeys.Secret{Param: "api_key", Value: "q-2"}, "", "api_key"},
	} {
		c, err := v.FindCredential(t.Context(), tc.name)
		mustNoErr(t, err, "FindCredential")
		_, err = v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{Secret: tc.secret})
		mustNoErr(t, err, "UpdateCredential")
		got, err := v.FindCredential(t.Context(), tc.name)
		mustNoErr(t, err, "FindCredential")
		if h := strings.Join(got.HeaderNames, ","); h != tc.headers || got.ParamName != tc.param {
			t.Errorf("%s after a new value: header names %q, parameter name %q; want %q, %q", tc.name, h, got.ParamName, tc.headers, tc.param)
		}
	}
}

func (s *suite) testUpdateCredential(t *testing.T) {
	setup := func(t *testing.T) (agentkeys.Vault, *agentkeys.Credential) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("main", "v1"))
		mustCreateCredential(t, v, apiKey("taken", "v"))
		return v, c
	}
	str := func(s string) *string { return &s }
	t.Run("Rename", func(t *testing.T) {
		v, c := setup(t)
		got, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{Name: str(" renamed ")})
		mustNoErr(t, err, "UpdateCredential")
		if got.Name != "renamed" || got.ID != c.ID {
			t.Fatalf("got %+v", got)
		}
		if _, err := v.FindCredential(t.Context(), "RENAMED"); err != nil {
			t.Fatalf("renamed credential not found by new name: %v", err)
		}
		if _, err := v.FindCredential(t.Context(), "main"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
			t.Fatalf("old name still found: %v", err)
		}
	})
	t.Run("RenameChangingCaseOnly", func(t *testing.T) {
		v, c := setup(t)
		got, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{Name: str("MAIN")})
		mustNoErr(t, err, "UpdateCredential")
		if got.Name != "MAIN" {
			t.Fatalf("name = %q", got.Name)
		}
	})
	t.Run("AllowedHosts", func(t *testing.T) {
		v, c := setup(t)
		got, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{AllowedHosts: []string{"New.Example.com", "*.example.net"}})
		mustNoErr(t, err, "UpdateCredential")
		if h := strings.Join(got.AllowedHosts, ","); h != "new.example.com,*.example.net" {
			t.Fatalf("allowed hosts = %s", h)
		}
		stored, err := v.FindCredential(t.Context(), c.ID)
		mustNoErr(t, err, "FindCredential")
		if h := strings.Join(stored.AllowedHosts, ","); h != "new.example.com,*.example.net" {
			t.Fatalf("stored allowed hosts = %s", h)
		}
	})
	t.Run("Secret", func(t *testing.T) {
		v, c := setup(t)
		_, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "v2"}})
		mustNoErr(t, err, "UpdateCredential")
		// What the upstream receives is checked in Proxy/UpdatedSecret.
	})
	t.Run("Nothing", func(t *testing.T) {
		v, c := setup(t)
		got, err := v.UpdateCredential(t.Context(), c.ID, &agentkeys.CredentialUpdate{})
		mustNoErr(t, err, "UpdateCredential")
		if got.Name != "main" {
			t.Fatalf("name = %q", got.Name)
		}
	})
	errs := []struct {
		name string
		id   string // "" means the credential's
		upd  *agentkeys.CredentialUpdate
		code string
	}{
		{"ErrNotFound", "cred_00000000000000000000000000", &agentkeys.CredentialUpdate{Name: str("x")}, agentkeys.ENOTFOUND},
		{"ErrDuplicateName", "", &agentkeys.CredentialUpdate{Name: str("TAKEN")}, agentkeys.ECONFLICT},
		{"ErrEmptyName", "", &agentkeys.CredentialUpdate{Name: str(" ")}, agentkeys.EINVALID},
		{"ErrEmptyAllowedHosts", "", &agentkeys.CredentialUpdate{AllowedHosts: []string{}}, agentkeys.EINVALID},
		{"ErrBadHost", "", &agentkeys.CredentialUpdate{AllowedHosts: []string{"*"}}, agentkeys.EINVALID},
		{"ErrPublicSuffixWildcard", "", &agentkeys.CredentialUpdate{AllowedHosts: []string{"api.example.com", "*.co.uk"}}, agentkeys.EINVALID},
		{"ErrMissingValue", "", &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{}}, agentkeys.EINVALID},
		{"ErrValueWithNewline", "", &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: "a\nb"}}, agentkeys.EINVALID},
		// A valid rename together with a bad part must not rename.
		{"ErrPartlyValid", "", &agentkeys.CredentialUpdate{Name: str("fresh"), AllowedHosts: []string{"*.com"}}, agentkeys.EINVALID},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			v, c := setup(t)
			id := tc.id
			if id == "" {
				id = c.ID
			}
			_, err := v.UpdateCredential(t.Context(), id, tc.upd)
			wantCode(t, err, tc.code)
			got, err := v.FindCredential(t.Context(), c.ID)
			mustNoErr(t, err, "FindCredential")
			if got.Name != "main" || strings.Join(got.AllowedHosts, ",") != "api.example.com" || !got.UpdatedAt.Equal(c.UpdatedAt) {
				t.Fatalf("refused update changed the credential: %+v", got)
			}
			wantUnchanged(t, v, []string{"main", "taken"}, nil)
		})
	}
}

func (s *suite) testDeleteCredential(t *testing.T) {
	t.Run("Deletes", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("gone", "v"))
		mustCreateCredential(t, v, apiKey("kept", "v"))
		mustNoErr(t, v.DeleteCredential(t.Context(), c.ID), "DeleteCredential")
		_, err := v.FindCredential(t.Context(), c.ID)
		wantCode(t, err, agentkeys.ENOTFOUND)
		wantUnchanged(t, v, []string{"kept"}, nil)
		// The name is free again.
		mustCreateCredential(t, v, apiKey("GONE", "v"))
	})
	t.Run("RemovesGrants", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("gone", "v"))
		k := mustCreateCredential(t, v, apiKey("kept", "v"))
		a := mustCreateAgent(t, v, "bot")
		mustAssign(t, v, a.ID, c.ID)
		mustAssign(t, v, a.ID, k.ID)
		mustNoErr(t, v.DeleteCredential(t.Context(), c.ID), "DeleteCredential")
		got, err := v.FindAgent(t.Context(), a.ID)
		mustNoErr(t, err, "FindAgent")
		if len(got.Credentials) != 1 || got.Credentials[0].CredentialID != k.ID {
			t.Fatalf("agent credentials after delete = %+v", got.Credentials)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		v := s.vault(t)
		mustCreateCredential(t, v, apiKey("kept", "v"))
		wantCode(t, v.DeleteCredential(t.Context(), "cred_00000000000000000000000000"), agentkeys.ENOTFOUND)
		wantCode(t, v.DeleteCredential(t.Context(), ""), agentkeys.ENOTFOUND)
		wantUnchanged(t, v, []string{"kept"}, nil)
	})
	t.Run("ErrTwice", func(t *testing.T) {
		v := s.vault(t)
		c := mustCreateCredential(t, v, apiKey("gone", "v"))
		mustNoErr(t, v.DeleteCredential(t.Context(), c.ID), "DeleteCredential")
		wantCode(t, v.DeleteCredential(t.Context(), c.ID), agentkeys.ENOTFOUND)
	})
}
