package localvault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/zalando/go-keyring"
)

// KeyStore is the OS keychain as the vault sees it. SystemKeychain implements
// it with go-keyring; tests pass their own.
type KeyStore interface {
	// Get returns the secret stored for service and user, or an error
	// wrapping ErrKeyNotFound when there is none.
	Get(service, user string) (string, error)
	// Set stores secret for service and user, replacing any earlier one.
	Set(service, user, secret string) error
	// Delete removes the secret; ErrKeyNotFound when there is none.
	Delete(service, user string) error
}

var (
	// ErrKeyNotFound is what a KeyStore returns when it holds no such entry.
	ErrKeyNotFound = errors.New("not found in the OS keychain")
	// ErrKeychainUnavailable is what SystemKeychain returns when there is no
	// keychain to talk to (no D-Bus session bus on Linux), or it did not
	// answer within its timeout (a locked keyring waiting for a prompt).
	ErrKeychainUnavailable = errors.New("the OS keychain is not available")
)

// KeychainService is the service name the vault's root key is stored
// under in the OS keychain. The user (account) is the vault's workspace id.
const KeychainService = "agentkeys"

// DefaultKeychainTimeout bounds every SystemKeychain call.
const DefaultKeychainTimeout = 5 * time.Second

// SystemKeychain is the OS keychain through github.com/zalando/go-keyring:
// the macOS Keychain, the Windows Credential Manager, or the freedesktop
// Secret Service (gnome-keyring, KWallet) over D-Bus on Linux.
//
// Every call runs in its own goroutine and is abandoned after Timeout: a
// locked keyring can otherwise wait for a GUI prompt forever. On Linux and
// the BSDs, when neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus
// exists, every call returns ErrKeychainUnavailable at once (without a bus,
// the D-Bus library may try to auto-launch one).
type SystemKeychain struct {
	// Timeout bounds each call; 0 means DefaultKeychainTimeout.
	Timeout time.Duration
}

var _ KeyStore = SystemKeychain{}

// Get implements KeyStore.
func (k SystemKeychain) Get(service, user string) (string, error) {
	var out string
	err := k.call(func() error {
		s, err := keyring.Get(service, user)
		out = s
		return err
	})
	return out, err
}

// Set implements KeyStore.
func (k SystemKeychain) Set(service, user, secret string) error {
	return k.call(func() error { return keyring.Set(service, user, secret) })
}

// Delete implements KeyStore.
func (k SystemKeychain) Delete(service, user string) error {
	return k.call(func() error { return keyring.Delete(service, user) })
}

func (k SystemKeychain) call(fn func() error) error {
	if err := sessionBusMissing(); err != nil {
		return err
	}
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultKeychainTimeout
	}
	done := make(chan error, 1) // buffered: an abandoned call can still finish and exit
	go func() { done <- fn() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case errors.Is(err, keyring.ErrNotFound):
			return ErrKeyNotFound
		default:
			// go-keyring's errors name the backend's failure, never the secret.
			return fmt.Errorf("%w: %v", ErrKeychainUnavailable, err)
		}
	case <-t.C:
		return fmt.Errorf("%w: no answer within %s (is the keyring locked?)", ErrKeychainUnavailable, timeout)
	}
}

// sessionBusMissing returns ErrKeychainUnavailable on systems that reach the
// Secret Service over D-Bus when no session bus can be found.
func sessionBusMissing() error {
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "android", "plan9", "js", "wasip1":
		return nil
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: no D-Bus session bus (neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus is set)", ErrKeychainUnavailable)
}
