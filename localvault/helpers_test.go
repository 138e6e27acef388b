package localvault_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
)

// memKeyStore is an in-memory KeyStore for tests (never the real keychain).
type memKeyStore = testkit.Keychain

func newMemKeyStore() *memKeyStore { return &testkit.Keychain{} }

// testMasterKey returns a fresh AGENTKEYS_MASTER_KEY value.
func testMasterKey(tb testing.TB) string {
	tb.Helper()
	return testkit.MasterKey(tb)
}

// testConfig is a Config on a fresh temporary home with a master key and a
// keystore that fails loudly if touched.
func testConfig(tb testing.TB) localvault.Config {
	tb.Helper()
	home, key := tb.TempDir(), testMasterKey(tb)
	masterKeysMu.Lock()
	masterKeys[home] = key
	masterKeysMu.Unlock()
	return localvault.Config{Home: home, MasterKey: key, Keychain: &memKeyStore{Fail: errTouched}}
}

// masterKeys remembers each test home's master key, for configOf.
var (
	masterKeysMu sync.Mutex
	masterKeys   = map[string]string{}
)

var errTouched = &agentkeys.Error{Code: agentkeys.EINTERNAL, Message: "test keystore must not be used"}

// mustInit creates a vault for cfg.
func mustInit(tb testing.TB, cfg localvault.Config) *localvault.InitResult {
	tb.Helper()
	res, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
	if err != nil {
		tb.Fatalf("Init: %v", err)
	}
	return res
}

// mustOpenVault creates and opens a vault in a temporary home, closed at cleanup.
func mustOpenVault(tb testing.TB) (*localvault.Vault, localvault.Config) {
	tb.Helper()
	cfg := testConfig(tb)
	mustInit(tb, cfg)
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { v.Close() })
	return v, cfg
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := agentkeys.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// configOf rebuilds the Config a test vault was opened with: same home,
// and the master key found in the test's registry.
func configOf(t *testing.T, v *localvault.Vault) localvault.Config {
	t.Helper()
	masterKeysMu.Lock()
	defer masterKeysMu.Unlock()
	return localvault.Config{Home: filepath.Dir(v.Path()), MasterKey: masterKeys[filepath.Dir(v.Path())], Keychain: &memKeyStore{Fail: errTouched}}
}
