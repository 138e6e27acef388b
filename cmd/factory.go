package cmd

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// Factory carries what commands need from the outside world: IO streams,
// configuration, and the vault they act on. Commands never open files or
// read the environment themselves; tests build a Factory with temporary
// streams and a temporary AGENTKEYS_HOME.
//
// Vault is the seam between local and remote mode: it returns an
// agentkeys.Vault and commands never know which kind it is. It opens the
// local vault in Config.Home, or, after `agentkeys login` (an apiKey and
// apiUrl in config.json or the environment), a client for that server's
// workspace (see wireRemote in remote.go).
type Factory struct {
	IOStreams *IOStreams

	// Getenv reads the environment (os.Getenv unless a test replaces it).
	Getenv func(string) string

	// Config loads configuration: flags over AGENTKEYS_* environment variables
	// over $AGENTKEYS_HOME/config.json. See Config.
	Config func() (*Config, error)

	// Vault opens (once) and returns the vault commands act on, with its
	// proxy wired so Vault.Proxy works in-process. The vault is closed by
	// Close. Returns ENOTFOUND when no vault exists (run `agentkeys init`) and
	// EUNAVAILABLE when its key is missing or wrong.
	Vault func(ctx context.Context) (agentkeys.Vault, error)

	// LocalVault opens (once, shared with Vault) the local vault itself, for
	// what only it can do: backup, export, key rotation. It ignores a login.
	LocalVault func(ctx context.Context) (*localvault.Vault, error)

	// ProxyHandler returns the /v1/proxy http.Handler over the same vault, for
	// `agentkeys up`. Only a local vault has one.
	ProxyHandler func(ctx context.Context) (http.Handler, error)

	// Logger receives diagnostics (never secrets) on stderr. Its level is
	// AGENTKEYS_LOG_LEVEL (debug, info, warn, error); by default error, so a
	// command's stderr is its one error line, and info for `agentkeys up`
	// (one line per proxied request).
	Logger *slog.Logger

	logLevel    *slog.LevelVar
	logLevelSet bool

	// Now is the clock, for tests.
	Now func() time.Time

	// Keychain is the OS keychain the local vault may keep its key in; nil
	// means the system's (go-keyring). Tests set their own.
	Keychain localvault.KeyStore

	// homeFlag is the value of the persistent --home flag, set by the root
	// command before any command runs.
	homeFlag string

	mu      sync.Mutex
	closers []func() error
}

// NewFactory returns a Factory over the given streams and environment lookup
// (nil: os.Getenv).
func NewFactory(ios *IOStreams, getenv func(string) string) *Factory {
	if getenv == nil {
		getenv = os.Getenv
	}
	f := &Factory{IOStreams: ios, Getenv: getenv, Now: time.Now}
	f.logLevel = new(slog.LevelVar)
	f.logLevel.Set(slog.LevelError)
	if lvl, ok := parseLevel(getenv("AGENTKEYS_LOG_LEVEL")); ok {
		f.logLevel.Set(lvl)
		f.logLevelSet = true
	}
	f.Logger = slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: f.logLevel}))
	f.Config = func() (*Config, error) { return loadConfig(f.homeFlag, f.Getenv) }
	wireVault(f)
	wireRemote(f) // after `agentkeys login`: the server's workspace instead
	return f
}

// onClose registers fn to run when the Factory is closed, last first.
func (f *Factory) onClose(fn func() error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closers = append(f.closers, fn)
}

// Close releases what commands opened (the vault: it flushes queued audit
// writes). It is safe to call more than once.
func (f *Factory) Close() error {
	f.mu.Lock()
	closers := f.closers
	f.closers = nil
	f.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// defaultLogLevel sets the log level unless AGENTKEYS_LOG_LEVEL chose one.
func (f *Factory) defaultLogLevel(l slog.Level) {
	if !f.logLevelSet {
		f.logLevel.Set(l)
	}
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// defaultHome is ~/.agentkeys.
func defaultHome(getenv func(string) string) (string, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", agentkeys.Errorf(agentkeys.EINVALID, "cannot find your home directory: set AGENTKEYS_HOME or --home")
		}
		home = h
	}
	return filepath.Join(home, ".agentkeys"), nil
}
