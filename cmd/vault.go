package cmd

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

// wireVault sets f.Vault and f.ProxyHandler. This is the one place that
// decides local versus remote mode; today every command works on the local
// vault in Config.Home. (When `agentkeys login` arrives, a config with an
// apiKey and apiUrl will make Vault return a REST client instead, and
// ProxyHandler will refuse.)
func wireVault(f *Factory) {
	var (
		mu sync.Mutex
		v  *localvault.Vault
		h  *proxy.Handler
	)
	open := func(ctx context.Context) (*localvault.Vault, *proxy.Handler, error) {
		mu.Lock()
		defer mu.Unlock()
		if v != nil {
			return v, h, nil
		}
		cfg, err := f.Config()
		if err != nil {
			return nil, nil, err
		}
		lv, err := localvault.Open(ctx, f.localConfig(cfg))
		if err != nil && cfg.Passphrase == "" && f.IOStreams.IsStdinTTY() && isPassphraseLocked(cfg, err) {
			// A passphrase vault opened from a terminal: ask, rather than
			// making people put the passphrase in their environment.
			pass, perr := f.IOStreams.PromptSecret("Vault passphrase: ")
			if perr != nil {
				return nil, nil, perr
			}
			lc := f.localConfig(cfg)
			lc.Passphrase = pass
			lv, err = localvault.Open(ctx, lc)
		}
		if err != nil {
			return nil, nil, err
		}
		backend := &auditWaiter{ProxyBackend: lv}
		ph := proxy.New(backend, proxy.Config{Logger: f.Logger})
		lv.UseProxy(ph)
		v, h = lv, ph
		f.onClose(func() error {
			mu.Lock()
			defer mu.Unlock()
			backend.wait(5 * time.Second)
			err := v.Close()
			v, h = nil, nil
			return err
		})
		return v, h, nil
	}
	f.Vault = func(ctx context.Context) (agentkeys.Vault, error) {
		v, _, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	f.ProxyHandler = func(ctx context.Context) (http.Handler, error) {
		_, h, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
}

// localConfig is the localvault configuration for cfg.
func (f *Factory) localConfig(cfg *Config) localvault.Config {
	return localvault.Config{
		Home:       cfg.Home,
		MasterKey:  cfg.MasterKey,
		Passphrase: cfg.Passphrase,
		Keychain:   f.Keychain,
		Logger:     f.Logger,
		Now:        f.Now,
	}
}

// isPassphraseLocked reports whether err is a vault that needs its
// passphrase (there is a key file and no master key was given).
func isPassphraseLocked(cfg *Config, err error) bool {
	if cfg.MasterKey != "" || agentkeys.ErrorCode(err) != agentkeys.EUNAVAILABLE {
		return false
	}
	_, serr := os.Stat(filepath.Join(cfg.Home, localvault.KeyFileName))
	return !errors.Is(serr, os.ErrNotExist) && serr == nil
}

// auditWaiter counts proxied requests whose audit row was begun but whose
// outcome is not yet recorded. proxy.Handler.Do returns as soon as the
// answer is known and records the outcome a moment later, so a one-off
// `agentkeys proxy` must wait for it before closing the vault, or the row
// would stay "pending".
type auditWaiter struct {
	agentkeys.ProxyBackend
	wg sync.WaitGroup
}

func (a *auditWaiter) BeginAudit(ctx context.Context, e *agentkeys.AuditEvent) error {
	a.wg.Add(1)
	if err := a.ProxyBackend.BeginAudit(ctx, e); err != nil {
		a.wg.Done()
		return err
	}
	return nil
}

func (a *auditWaiter) EndAudit(ctx context.Context, e *agentkeys.AuditEvent) {
	defer a.wg.Done()
	a.ProxyBackend.EndAudit(ctx, e)
}

// wait waits up to d for every begun request to record its outcome.
func (a *auditWaiter) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
