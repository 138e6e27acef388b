package cmd

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

// wireVault sets f.Vault and f.ProxyHandler to open the local vault in
// Config.Home. This is where the local store and the in-process proxy are
// joined: one proxy.Handler is built on the vault (its ProxyBackend), and
// f.Vault is the vault's contents with that handler as its Proxy
// (agentkeys.WithProxy). wireRemote wraps both afterwards, switching to a
// server's workspace when the configuration names one.
func wireVault(f *Factory) {
	var (
		mu sync.Mutex
		v  *localvault.Vault
		h  *proxy.Handler
		av agentkeys.Vault // v joined to h
	)
	open := func(ctx context.Context) (agentkeys.Vault, *proxy.Handler, error) {
		mu.Lock()
		defer mu.Unlock()
		if v != nil {
			return av, h, nil
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
		ph := proxy.New(lv, proxy.Config{Logger: f.Logger})
		v, h, av = lv, ph, agentkeys.WithProxy(lv, ph)
		f.onClose(func() error {
			mu.Lock()
			defer mu.Unlock()
			err := v.Close()
			v, h, av = nil, nil, nil
			return err
		})
		return av, h, nil
	}
	f.Vault = func(ctx context.Context) (agentkeys.Vault, error) {
		v, _, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	f.LocalVault = func(ctx context.Context) (*localvault.Vault, error) {
		if _, _, err := open(ctx); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
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
