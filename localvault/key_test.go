package localvault_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

func wantContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func wantNoVaultFiles(t *testing.T, home string) {
	t.Helper()
	for _, n := range []string{localvault.DBFileName, localvault.DBFileName + "-wal", localvault.DBFileName + "-shm", localvault.KeyFileName} {
		if _, err := os.Stat(filepath.Join(home, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed init", n)
		}
	}
}

func TestInit_MasterKey(t *testing.T) {
	cfg := testConfig(t) // its keystore fails the test's calls if touched
	res := mustInit(t, cfg)
	if res.KeySource != localvault.SourceEnvironment || !strings.HasPrefix(res.WorkspaceID, "ws_") ||
		!agentkeys.IsWorkspaceKey(res.WorkspaceKey) || res.Path != filepath.Join(cfg.Home, "vault.db") {
		t.Fatalf("init result = %+v", res)
	}
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	st, err := v.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := agentkeys.WorkspaceStatus{ID: res.WorkspaceID, Name: "Personal", Plan: agentkeys.PlanUnlimited, Mode: agentkeys.ModeLocal,
		Location: res.Path, KeySource: localvault.SourceEnvironment}
	if *st != want {
		t.Fatalf("status = %+v, want %+v", *st, want)
	}
	var schema int
	if err := rawDB(t, cfg.Home).QueryRow("PRAGMA user_version").Scan(&schema); err != nil || schema != localvault.SchemaVersion() {
		t.Fatalf("schema version = %d (%v), want %d", schema, err, localvault.SchemaVersion())
	}
	// Only the hash of the workspace key is stored.
	files := snapshot(t, cfg.Home)
	for name, b := range files {
		if strings.Contains(string(b), res.WorkspaceKey) {
			t.Fatalf("%s contains the workspace key", name)
		}
	}
}

func TestInit_BadMasterKey(t *testing.T) {
	k16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	k33 := base64.StdEncoding.EncodeToString(make([]byte, 33))
	for name, key := range map[string]string{"NotBase64": "not base64 at all!", "Short": k16, "Long": k33} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MasterKey = key
			_, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
			wantCode(t, err, agentkeys.EINVALID)
			wantContains(t, err, "AGENTKEYS_MASTER_KEY", "32")
			wantNoVaultFiles(t, cfg.Home)
		})
	}
}

func TestInit_MasterKeyEncodings(t *testing.T) {
	k, _ := agentkeys.NewKey()
	for name, enc := range map[string]*base64.Encoding{"Std": base64.StdEncoding, "RawStd": base64.RawStdEncoding, "URL": base64.URLEncoding, "RawURL": base64.RawURLEncoding} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MasterKey = enc.EncodeToString(k[:]) + "\n"
			mustInit(t, cfg)
			cfg.MasterKey = base64.StdEncoding.EncodeToString(k[:]) // the same key in another spelling opens it
			v, err := localvault.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			v.Close()
		})
	}
}

func TestInit_ExistingVault(t *testing.T) {
	for _, withPass := range []bool{false, true} {
		cfg := testConfig(t)
		opts := localvault.InitOptions{}
		if withPass {
			cfg.MasterKey, cfg.Passphrase, opts.UsePassphrase = "", "pw", true
		}
		if _, err := localvault.Init(context.Background(), cfg, opts); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, cfg.Home)
		_, err := localvault.Init(context.Background(), cfg, opts)
		wantCode(t, err, agentkeys.ECONFLICT)
		wantContains(t, err, "already exists")
		wantSnapshot(t, cfg.Home, before)
	}
}

func TestOpen_WrongMasterKey(t *testing.T) {
	ctx := context.Background()
	v, cfg := mustOpenVault(t)
	if _, err := v.CreateCredential(ctx, apiKeyInput("a", "v")); err != nil {
		t.Fatal(err)
	}
	v.Close()
	before := snapshot(t, cfg.Home)
	cfg.MasterKey = testMasterKey(t)
	_, err := localvault.Open(ctx, cfg)
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	wantContains(t, err, "wrong vault key", "AGENTKEYS_MASTER_KEY")
	wantSnapshot(t, cfg.Home, before)
}

func TestOpen_MasterKeyMissing(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	cfg.MasterKey = ""
	cfg.Keychain = newMemKeyStore()
	_, err := localvault.Open(context.Background(), cfg)
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	wantContains(t, err, "AGENTKEYS_MASTER_KEY")
}

func TestPassphrase(t *testing.T) {
	ctx := context.Background()
	cfg := localvault.Config{Home: t.TempDir(), Passphrase: "correct horse battery staple", Keychain: &memKeyStore{Fail: errTouched}}
	res, err := localvault.Init(ctx, cfg, localvault.InitOptions{UsePassphrase: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeySource != localvault.SourcePassphrase {
		t.Fatalf("key source = %s", res.KeySource)
	}
	kf := filepath.Join(cfg.Home, localvault.KeyFileName)
	if got := mode(t, kf); got != 0o600 {
		t.Errorf("key file mode = %o, want 600", got)
	}
	raw, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("key file is not JSON: %v", err)
	}
	if doc["kdf"] != "argon2id" || doc["memoryKiB"] != float64(19*1024) || doc["iterations"] != float64(2) || doc["parallelism"] != float64(1) ||
		doc["salt"] == "" || doc["wrappedKey"] == "" {
		t.Fatalf("key file = %s", raw)
	}
	if strings.Contains(string(raw), cfg.Passphrase) {
		t.Fatal("key file contains the passphrase")
	}

	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeySource() != localvault.SourcePassphrase {
		t.Fatalf("KeySource() = %s", v.KeySource())
	}
	if _, err := v.CreateCredential(ctx, apiKeyInput("a", "secret-value")); err != nil {
		t.Fatal(err)
	}
	v.Close()
	before := snapshot(t, cfg.Home)

	t.Run("ReopenReadsValue", func(t *testing.T) {
		v, err := localvault.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		r, err := v.RouteByName(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		s, err := v.OpenSecret(ctx, r)
		if err != nil || s.Value != "secret-value" {
			t.Fatalf("OpenSecret = %v", err)
		}
	})
	t.Run("ErrWrongPassphrase", func(t *testing.T) {
		c := cfg
		c.Passphrase = "Correct horse battery staple"
		_, err := localvault.Open(ctx, c)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "wrong passphrase", "AGENTKEYS_PASSPHRASE")
		wantSnapshot(t, cfg.Home, before)
	})
	t.Run("ErrNoPassphrase", func(t *testing.T) {
		c := cfg
		c.Passphrase = ""
		_, err := localvault.Open(ctx, c)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "AGENTKEYS_PASSPHRASE")
		wantSnapshot(t, cfg.Home, before)
	})
	t.Run("MasterKeyTakesPrecedence", func(t *testing.T) {
		c := cfg
		c.MasterKey = testMasterKey(t)
		_, err := localvault.Open(ctx, c)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "AGENTKEYS_MASTER_KEY")
	})
	t.Run("ErrDamagedKeyFile", func(t *testing.T) {
		c := cfg
		c.Home = t.TempDir()
		for _, n := range []string{localvault.DBFileName, localvault.KeyFileName} {
			if err := os.WriteFile(filepath.Join(c.Home, n), before[n], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(c.Home, localvault.KeyFileName), []byte(`{"version":1,"kdf":"argon2id","memoryKiB":99999999,"iterations":2,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","wrappedKey":"AA=="}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := localvault.Open(ctx, c)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
	})
}

func TestInit_PassphraseErrors(t *testing.T) {
	t.Run("ErrMissingPassphrase", func(t *testing.T) {
		cfg := localvault.Config{Home: t.TempDir(), Keychain: &memKeyStore{Fail: errTouched}}
		_, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{UsePassphrase: true})
		wantCode(t, err, agentkeys.EINVALID)
		wantContains(t, err, "AGENTKEYS_PASSPHRASE")
		wantNoVaultFiles(t, cfg.Home)
	})
	t.Run("ErrBothMasterKeyAndPassphrase", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Passphrase = "pw"
		_, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{UsePassphrase: true})
		wantCode(t, err, agentkeys.EINVALID)
		wantNoVaultFiles(t, cfg.Home)
	})
	t.Run("PassphraseFromEnvironment", func(t *testing.T) {
		cfg := localvault.Config{Home: t.TempDir(), Passphrase: "pw", Keychain: &memKeyStore{Fail: errTouched}}
		res, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
		if err != nil || res.KeySource != localvault.SourcePassphrase {
			t.Fatalf("Init = %+v, %v; want the passphrase source", res, err)
		}
	})
}

func TestKeychain_Fake(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	cfg := localvault.Config{Home: t.TempDir(), Keychain: ks}
	res := mustInit(t, cfg)
	if res.KeySource != localvault.SourceKeychain {
		t.Fatalf("key source = %s", res.KeySource)
	}
	stored, err := ks.Get(localvault.KeychainService, res.WorkspaceID)
	if err != nil {
		t.Fatalf("keychain entry %s/%s: %v", localvault.KeychainService, res.WorkspaceID, err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(stored); len(raw) != 32 {
		t.Fatalf("keychain holds %d bytes, want a 32-byte key", len(raw))
	}
	for name, b := range snapshot(t, cfg.Home) {
		if strings.Contains(string(b), stored) {
			t.Fatalf("%s contains the root key", name)
		}
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeySource() != localvault.SourceKeychain {
		t.Fatalf("KeySource() = %s", v.KeySource())
	}
	v.Close()

	t.Run("ErrInitAgain", func(t *testing.T) {
		before := snapshot(t, cfg.Home)
		_, err := localvault.Init(ctx, cfg, localvault.InitOptions{})
		wantCode(t, err, agentkeys.ECONFLICT)
		if ks.Len() != 1 {
			t.Fatalf("keychain holds %d entries after a refused init, want 1", ks.Len())
		}
		wantSnapshot(t, cfg.Home, before)
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		ks.Set(localvault.KeychainService, res.WorkspaceID, testMasterKey(t))
		defer ks.Set(localvault.KeychainService, res.WorkspaceID, stored)
		_, err := localvault.Open(ctx, cfg)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "wrong vault key", "keychain")
	})
	t.Run("ErrEntryMissing", func(t *testing.T) {
		ks.Delete(localvault.KeychainService, res.WorkspaceID)
		defer ks.Set(localvault.KeychainService, res.WorkspaceID, stored)
		_, err := localvault.Open(ctx, cfg)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "AGENTKEYS_MASTER_KEY", "agentkeys init --passphrase", "AGENTKEYS_PASSPHRASE", "keychain")
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		c := cfg
		c.Keychain = &memKeyStore{Fail: localvault.ErrKeychainUnavailable}
		_, err := localvault.Open(ctx, c)
		wantCode(t, err, agentkeys.EUNAVAILABLE)
		wantContains(t, err, "AGENTKEYS_MASTER_KEY", "agentkeys init --passphrase", "AGENTKEYS_PASSPHRASE", "keychain")
	})
	t.Run("MasterKeyTakesPrecedence", func(t *testing.T) {
		c := cfg
		c.MasterKey = stored // the very key, given in the environment
		c.Keychain = &memKeyStore{Fail: errTouched}
		v, err := localvault.Open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if v.KeySource() != localvault.SourceEnvironment {
			t.Fatalf("KeySource() = %s", v.KeySource())
		}
	})
}

func TestInit_NoKeySource(t *testing.T) {
	cfg := localvault.Config{Home: t.TempDir(), Keychain: &memKeyStore{Fail: localvault.ErrKeychainUnavailable}}
	_, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	wantContains(t, err, "AGENTKEYS_MASTER_KEY", "agentkeys init --passphrase", "AGENTKEYS_PASSPHRASE", "keychain")
	wantNoVaultFiles(t, cfg.Home)
}

func TestInit_FailureUndone(t *testing.T) {
	ks := newMemKeyStore()
	// '?' cannot be in a SQLite path here: the database step fails after
	// the key was stored in the keychain, which must be removed again.
	cfg := localvault.Config{Home: filepath.Join(t.TempDir(), "odd?name"), Keychain: ks}
	_, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
	if err == nil {
		t.Fatal("Init succeeded")
	}
	if ks.Len() != 0 {
		t.Fatal("the keychain entry of the failed init was left behind")
	}
	wantNoVaultFiles(t, cfg.Home)
}

func TestSystemKeychain_NoSessionBus(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("no D-Bus on " + runtime.GOOS)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	k := localvault.SystemKeychain{Timeout: time.Minute}
	start := time.Now()
	_, err := k.Get(localvault.KeychainService, "ws_nothing")
	if !errors.Is(err, localvault.ErrKeychainUnavailable) {
		t.Fatalf("Get = %v, want ErrKeychainUnavailable", err)
	}
	if err := k.Set(localvault.KeychainService, "ws_nothing", "x"); !errors.Is(err, localvault.ErrKeychainUnavailable) {
		t.Fatalf("Set = %v, want ErrKeychainUnavailable", err)
	}
	// Not a timing assertion: a one-minute timeout would have to expire for this to fail.
	if time.Since(start) > 30*time.Second {
		t.Fatal("the unavailable keychain was waited for")
	}
	// Init then names every option.
	_, err = localvault.Init(context.Background(), localvault.Config{Home: t.TempDir(), Keychain: k}, localvault.InitOptions{})
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	wantContains(t, err, "AGENTKEYS_MASTER_KEY", "AGENTKEYS_PASSPHRASE", "D-Bus")
}
