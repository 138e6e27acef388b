package agentkeys_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestSealer: a Sealer and the package functions open each other's
// ciphertexts, refuse the same things, and a Sealer is safe for concurrent
// use and never prints its key.
func TestSealer(t *testing.T) {
	key, _ := agentkeys.NewKey()
	sl, err := agentkeys.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := &agentkeys.Secret{Value: "canary-sealer", Username: "u", Param: "p"}
	byFunc, _ := agentkeys.SealSecret(key, secret, "ws_1", "cred_1", 1)
	bySealer, err := sl.SealSecret(secret, "ws_1", "cred_1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bySealer, []byte("canary-sealer")) || bytes.Equal(byFunc, bySealer) {
		t.Fatal("plaintext in the ciphertext, or a nonce reused")
	}
	for name, open := range map[string]func() (*agentkeys.Secret, error){
		"sealer opens SealSecret": func() (*agentkeys.Secret, error) { return sl.OpenSecret(byFunc, "ws_1", "cred_1", 1) },
		"OpenSecret opens sealer": func() (*agentkeys.Secret, error) { return agentkeys.OpenSecret(key, bySealer, "ws_1", "cred_1", 1) },
	} {
		if got, err := open(); err != nil || got.Value != secret.Value || got.Username != "u" || got.Param != "p" {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	other, _ := agentkeys.NewSealer(agentkeys.Key{1})
	tampered := bytes.Clone(bySealer)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() error{
		"credential": func() error { _, err := sl.OpenSecret(bySealer, "ws_1", "cred_2", 1); return err },
		"workspace":  func() error { _, err := sl.OpenSecret(bySealer, "ws_2", "cred_1", 1); return err },
		"version":    func() error { _, err := sl.OpenSecret(bySealer, "ws_1", "cred_1", 2); return err },
		"key":        func() error { _, err := other.OpenSecret(bySealer, "ws_1", "cred_1", 1); return err },
		"tampered":   func() error { _, err := sl.OpenSecret(tampered, "ws_1", "cred_1", 1); return err },
		"short":      func() error { _, err := sl.Open(bySealer[:10], nil); return err },
	} {
		if err := open(); err != agentkeys.ErrDecrypt {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			aad := []byte(fmt.Sprint(i))
			for range 100 {
				c, err := sl.Seal([]byte("v"), aad)
				if err != nil {
					t.Error(err)
					return
				}
				if p, err := agentkeys.Open(key, c, aad); err != nil || string(p) != "v" {
					t.Errorf("concurrent round trip: %q %v", p, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	if out := fmt.Sprintf("%v %+v %#v %s", sl, sl, sl, sl); strings.Contains(out, "aead") || strings.Count(out, "REDACTED") != 4 {
		t.Errorf("a Sealer prints as %q", out)
	}
}

// BenchmarkOpenSecret compares opening with the key (the cipher set up per
// call) and with a Sealer held for the key.
func BenchmarkOpenSecret(b *testing.B) {
	key, _ := agentkeys.NewKey()
	sealed, _ := agentkeys.SealSecret(key, &agentkeys.Secret{Value: "re_bench_secret_value"}, "ws_1", "cred_1", 1)
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := agentkeys.OpenSecret(key, sealed, "ws_1", "cred_1", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sealer", func(b *testing.B) {
		sl, _ := agentkeys.NewSealer(key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sl.OpenSecret(sealed, "ws_1", "cred_1", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// wireMirror is the sealed encoding of a Secret (the tags of SealSecret's
// wire type), for decoding a plaintext with encoding/json alone.
type wireMirror struct {
	Value        string             `json:"v,omitempty"`
	Username     string             `json:"u,omitempty"`
	Password     string             `json:"p,omitempty"`
	Headers      []agentkeys.Header `json:"h,omitempty"`
	Param        string             `json:"q,omitempty"`
	RefreshToken string             `json:"r,omitempty"`
	ExpiresAt    *time.Time         `json:"e,omitempty"`
	RawResponses bool               `json:"raw,omitempty"`
	OAuthApp     string             `json:"a,omitempty"`
	Scopes       []string           `json:"s,omitempty"`
	TokenType    string             `json:"t,omitempty"`
}

// checkOpensLikeJSON seals plain as a credential's plaintext and checks
// that OpenSecret decodes it exactly as encoding/json does, or refuses it
// with ErrDecrypt when encoding/json refuses it.
func checkOpensLikeJSON(t *testing.T, sl *agentkeys.Sealer, plain []byte) {
	t.Helper()
	sealed, err := sl.Seal(plain, agentkeys.CredentialAAD("ws_1", "cred_1", 1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sl.OpenSecret(sealed, "ws_1", "cred_1", 1)
	var w wireMirror
	if jerr := json.Unmarshal(plain, &w); jerr != nil {
		if err != agentkeys.ErrDecrypt {
			t.Fatalf("%q: encoding/json refuses it (%v), OpenSecret: %+v %v", plain, jerr, got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q: encoding/json decodes it, OpenSecret: %v", plain, err)
	}
	want := agentkeys.Secret{Value: w.Value, Username: w.Username, Password: w.Password, Headers: w.Headers, Param: w.Param, RefreshToken: w.RefreshToken,
		RawResponses: w.RawResponses, OAuthApp: w.OAuthApp, Scopes: w.Scopes, TokenType: w.TokenType}
	if w.ExpiresAt != nil {
		want.ExpiresAt = *w.ExpiresAt
	}
	if fmt.Sprintf("%q %q %q %q %q %q %v %v %q %q %q", got.Value, got.Username, got.Password, got.Headers, got.Param, got.RefreshToken, got.ExpiresAt, got.RawResponses, got.OAuthApp, got.Scopes, got.TokenType) !=
		fmt.Sprintf("%q %q %q %q %q %q %v %v %q %q %q", want.Value, want.Username, want.Password, want.Headers, want.Param, want.RefreshToken, want.ExpiresAt, want.RawResponses, want.OAuthApp, want.Scopes, want.TokenType) {
		t.Fatalf("%q: OpenSecret %+v, encoding/json %+v", plain, got, want)
	}
}

var secretPlaintexts = []string{
	`{"A":[{"0000":""}]}`, `{"s":["repo","read:org"],"a":"github","t":"bearer","raw":true}`,
	`{"v":"re_live_123"}`, `{}`, `{"v":"a","u":"b","p":"c","q":"d","r":"e"}`, `{"u":"user","p":"pa ss:w=rd"}`,
	`{"V":"x"}`, `{"v":"x","v":"y"}`, `{"v":"a\"b"}`, `{"v":"\u00e9\u003c"}`, `{"v":"é ☃ 𝄞"}`, "{\"v\":\"\xff\"}",
	`{"v":"x",}`, `{"v":1}`, `{"v":"x"} `, ` {"v":"x"}`, `{"v": "x"}`, `{"v":"x","h":[{"name":"a","value":"b"}]}`,
	`{"v":"x","e":"2026-01-01T00:00:00Z"}`, "{\"v\":\"tab\there\"}", `{"v":"<>&"}`, `{"x":"y"}`, `{"v":"x"`, `{`, ``,
	`{"":"x"}`, `{"v":""}`, `{"v":"x","u":null}`, `null`, `[]`, `{"v":"x"}{}`,
}

// TestOpenSecret_DecodesLikeJSON: OpenSecret reads every plaintext as
// encoding/json would (it skips encoding/json for the common form).
func TestOpenSecret_DecodesLikeJSON(t *testing.T) {
	sl, _ := agentkeys.NewSealer(agentkeys.Key{7})
	for _, p := range secretPlaintexts {
		checkOpensLikeJSON(t, sl, []byte(p))
	}
	for _, s := range []*agentkeys.Secret{
		{Value: "plain"}, {Value: "quote\"back\\slash\n<html>&"}, {Username: "u", Password: "p\u2028"},
		{Value: "v", Headers: []agentkeys.Header{{Name: "x-a", Value: "b"}}, ExpiresAt: time.Unix(1, 5).UTC()},
		{Value: string([]byte{0xff, 'a'})},
	} {
		sealed, err := sl.SealSecret(s, "ws_1", "cred_1", 1)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := sl.Open(sealed, agentkeys.CredentialAAD("ws_1", "cred_1", 1))
		if err != nil {
			t.Fatal(err)
		}
		checkOpensLikeJSON(t, sl, plain)
	}
}

func FuzzOpenSecret_DecodesLikeJSON(f *testing.F) {
	for _, p := range secretPlaintexts {
		f.Add([]byte(p))
	}
	sl, _ := agentkeys.NewSealer(agentkeys.Key{7})
	f.Fuzz(func(t *testing.T, plain []byte) { checkOpensLikeJSON(t, sl, plain) })
}

// TestSealSecret_RawResponses: the opt-out of echo redaction is sealed with
// the value and comes back when it is opened; without it, it is off.
func TestSealSecret_RawResponses(t *testing.T) {
	var k agentkeys.Key
	k[0] = 7
	for _, raw := range []bool{false, true} {
		sealed, err := agentkeys.SealSecret(k, &agentkeys.Secret{Value: "v", RawResponses: raw}, "ws_1", "cred_1", 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := agentkeys.OpenSecret(k, sealed, "ws_1", "cred_1", 1)
		if err != nil || s.Value != "v" || s.RawResponses != raw {
			t.Fatalf("RawResponses %v: opened %v, %v", raw, s.RawResponses, err)
		}
	}
}
