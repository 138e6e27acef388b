package agentkeys_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

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
