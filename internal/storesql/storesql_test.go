package storesql_test

import (
	"slices"
	"testing"
	"testing/fstest"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

func TestCheckCredential(t *testing.T) {
	t.Run("NormalisesACopy", func(t *testing.T) {
		in := &agentkeys.CredentialInput{Name: " Resend ", Type: "api-key", AllowedHosts: []string{"API.Example.com", "api.example.com"},
			Secret: agentkeys.Secret{Value: "re_1"}}
		if _, err := storesql.CheckCredential(in); err != nil {
			t.Fatal(err)
		}
		if in.Name != " Resend " || in.Type != "api-key" || !slices.Equal(in.AllowedHosts, []string{"API.Example.com", "api.example.com"}) {
			t.Fatalf("the caller's input changed: %+v", in)
		}
	})
	for name, in := range map[string]*agentkeys.CredentialInput{
		"ErrMissing":              nil,
		"ErrPublicSuffixWildcard": {Name: "x", Type: agentkeys.APIKey, AllowedHosts: []string{"*.co.uk"}, Secret: agentkeys.Secret{Value: "v"}},
		"ErrType":                 {Name: "x", Type: "NOPE", AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}},
		"ErrSecretForType":        {Name: "x", Type: agentkeys.BasicAuth, AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: "v"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := storesql.CheckCredential(in); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestCheckCredentialUpdate(t *testing.T) {
	if _, err := storesql.CheckCredentialUpdate(nil); err != nil {
		t.Fatalf("nil update: %v", err)
	}
	for name, upd := range map[string]*agentkeys.CredentialUpdate{
		"ErrEmptyHosts":           {AllowedHosts: []string{}},
		"ErrPublicSuffixWildcard": {AllowedHosts: []string{"*.com.au"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := storesql.CheckCredentialUpdate(upd); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := storesql.LoadMigrations(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].SQL != "A" || ms[1].Version != 2 {
		t.Fatalf("got %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"ErrGap":    {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"ErrNoNum":  {"m/init.sql": {}},
		"ErrZeroth": {"m/0000_a.sql": {}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := storesql.LoadMigrations(fsys, "m"); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
