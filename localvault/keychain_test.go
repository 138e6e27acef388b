package localvault_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// TestSystemKeychain_Real runs against the real OS keychain, so it is
// opt-in: AGENTKEYS_TEST_KEYCHAIN=1. On Linux run it under dbus-run-session
// with an unlocked gnome-keyring (scripts/test.sh does that in CI).
func TestSystemKeychain_Real(t *testing.T) {
	if os.Getenv("AGENTKEYS_TEST_KEYCHAIN") != "1" {
		t.Skip("real OS keychain test not enabled: set AGENTKEYS_TEST_KEYCHAIN=1 (on Linux under dbus-run-session with an unlocked gnome-keyring)")
	}
	ctx := context.Background()
	k := localvault.SystemKeychain{Timeout: 10 * time.Second}
	user := "agentkeys-test-" + agentkeys.NewID("k")
	t.Cleanup(func() { k.Delete(localvault.KeychainService, user) })

	t.Run("StoreReadDelete", func(t *testing.T) {
		secret := testMasterKey(t)
		if err := k.Set(localvault.KeychainService, user, secret); err != nil {
			t.Fatalf("Set: %v", err)
		}
		got, err := k.Get(localvault.KeychainService, user)
		if err != nil || got != secret {
			t.Fatalf("Get = %v (match %v)", err, got == secret)
		}
		if err := k.Delete(localvault.KeychainService, user); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := k.Get(localvault.KeychainService, user); !errors.Is(err, localvault.ErrKeyNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrKeyNotFound", err)
		}
		if err := k.Delete(localvault.KeychainService, user); !errors.Is(err, localvault.ErrKeyNotFound) {
			t.Fatalf("second Delete = %v, want ErrKeyNotFound", err)
		}
	})

	t.Run("InitOpenVault", func(t *testing.T) {
		cfg := localvault.Config{Home: t.TempDir(), Keychain: k}
		res, err := localvault.Init(ctx, cfg, localvault.InitOptions{})
		if err != nil {
			t.Fatalf("Init: %v", err)
		}
		t.Cleanup(func() { k.Delete(localvault.KeychainService, res.WorkspaceID) })
		if res.KeySource != localvault.SourceKeychain {
			t.Fatalf("key source = %s, want keychain", res.KeySource)
		}
		stored, err := k.Get(localvault.KeychainService, res.WorkspaceID)
		if err != nil || stored == "" {
			t.Fatalf("vault key not in the keychain: %v", err)
		}
		v, err := localvault.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if v.KeySource() != localvault.SourceKeychain {
			t.Fatalf("KeySource() = %s", v.KeySource())
		}
		if _, err := v.CreateCredential(ctx, apiKeyInput("cred", "kc-value")); err != nil {
			t.Fatal(err)
		}
		v.Close()
		v, err = localvault.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer v.Close()
		r, err := v.RouteByName(ctx, "cred")
		if err != nil {
			t.Fatal(err)
		}
		if s, err := v.OpenSecret(ctx, r); err != nil || s.Value != "kc-value" {
			t.Fatalf("OpenSecret: %v", err)
		}
	})
}
