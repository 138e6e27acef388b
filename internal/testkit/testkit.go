// Package testkit is what the tests of several packages share, so each is
// written once: a real local vault in a temporary home joined to the real
// in-process proxy (OpenVault), in-memory keychains that keep tests away
// from the OS keychain (Keychain, NoKeychain), and a loopback upstream API
// that records what it received (Upstream). It is for _test files only.
package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/proxy"
)

// Keychain is an in-memory localvault.KeyStore. The zero value is empty
// and ready; when Fail is set every call returns it.
type Keychain struct {
	Fail error

	mu sync.Mutex
	m  map[string]string
}

// Get implements localvault.KeyStore.
func (k *Keychain) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Fail != nil {
		return "", k.Fail
	}
	v, ok := k.m[service+"/"+user]
	if !ok {
		return "", localvault.ErrKeyNotFound
	}
	return v, nil
}

// Set implements localvault.KeyStore.
func (k *Keychain) Set(service, user, secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Fail != nil {
		return k.Fail
	}
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[service+"/"+user] = secret
	return nil
}

// Delete implements localvault.KeyStore.
func (k *Keychain) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Fail != nil {
		return k.Fail
	}
	if _, ok := k.m[service+"/"+user]; !ok {
		return localvault.ErrKeyNotFound
	}
	delete(k.m, service+"/"+user)
	return nil
}

// Len is how many entries k holds.
func (k *Keychain) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// NoKeychain is a keychain that is not there, as on a headless Linux box:
// every call returns localvault.ErrKeychainUnavailable.
func NoKeychain() *Keychain { return &Keychain{Fail: localvault.ErrKeychainUnavailable} }

// MasterKey returns a fresh AGENTKEYS_MASTER_KEY value (base64 of 32
// random bytes).
func MasterKey(tb testing.TB) string {
	tb.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// VaultOptions changes what OpenVault builds. The zero value is a vault
// unlocked by a random master key, with no keychain, and a proxy with its
// default transport.
type VaultOptions struct {
	Now       func() time.Time  // the vault's and the proxy's clock
	Transport http.RoundTripper // the proxy's transport
	Keychain  localvault.KeyStore
	Logger    *slog.Logger
}

// Vault is a local vault joined to the in-process proxy: the
// *localvault.Vault's methods, and Proxy through Handler. It implements
// agentkeys.Vault (and agentkeys.ProxyBackend).
type Vault struct {
	*localvault.Vault
	Handler      *proxy.Handler
	Config       localvault.Config
	WorkspaceKey string // the ak_ws_ key Init returned
	opts         VaultOptions
}

var _ agentkeys.Vault = (*Vault)(nil)

// Proxy implements agentkeys.Vault through the proxy handler.
func (v *Vault) Proxy(ctx context.Context, req *agentkeys.ProxyRequest) (*http.Response, error) {
	return v.Handler.Do(ctx, req)
}

// OpenVault creates a vault in a temporary home and opens it, closed at
// cleanup.
func OpenVault(tb testing.TB, o VaultOptions) *Vault {
	tb.Helper()
	if o.Keychain == nil {
		o.Keychain = NoKeychain()
	}
	cfg := localvault.Config{Home: tb.TempDir(), MasterKey: MasterKey(tb), Keychain: o.Keychain, Now: o.Now, Logger: o.Logger}
	res, err := localvault.Init(context.Background(), cfg, localvault.InitOptions{})
	if err != nil {
		tb.Fatalf("init vault: %v", err)
	}
	v := open(tb, cfg, o)
	v.WorkspaceKey = res.WorkspaceKey
	return v
}

// Reopen closes v (which flushes its queued audit writes) and opens the
// same vault again, closed at cleanup.
func (v *Vault) Reopen(tb testing.TB) *Vault {
	tb.Helper()
	if err := v.Close(); err != nil {
		tb.Fatalf("close vault: %v", err)
	}
	nv := open(tb, v.Config, v.opts)
	nv.WorkspaceKey = v.WorkspaceKey
	return nv
}

func open(tb testing.TB, cfg localvault.Config, o VaultOptions) *Vault {
	tb.Helper()
	lv, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open vault: %v", err)
	}
	tb.Cleanup(func() { lv.Close() })
	h := proxy.New(lv, proxy.Config{Transport: o.Transport, Now: o.Now, Logger: o.Logger})
	return &Vault{Vault: lv, Handler: h, Config: cfg, opts: o}
}

// Received is one request an Upstream got.
type Received struct {
	Method   string
	URL      *url.URL
	Path     string
	RawQuery string
	Header   http.Header
	Body     string
}

// Upstream is an API on 127.0.0.1 that records every request it receives
// and answers with its handler (by default 200 with {"ok":true}).
type Upstream struct {
	*httptest.Server
	mu  sync.Mutex
	got []Received
}

// NewUpstream starts an Upstream answering with h (nil: the default),
// closed at cleanup.
func NewUpstream(tb testing.TB, h http.HandlerFunc) *Upstream {
	tb.Helper()
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, Received{Method: r.Method, URL: r.URL, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: string(b)})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	tb.Cleanup(u.Close)
	return u
}

// Host is the upstream's host:port, for allowlists.
func (u *Upstream) Host() string { return strings.TrimPrefix(u.URL, "http://") }

// Last is the latest request; the test fails when there was none.
func (u *Upstream) Last(tb testing.TB) Received {
	tb.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		tb.Fatal("the upstream received no request")
	}
	return u.got[len(u.got)-1]
}

// All is every request so far, oldest first.
func (u *Upstream) All() []Received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Received(nil), u.got...)
}

// Count is how many requests the upstream received.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

// SyncBuffer is a bytes.Buffer safe for a writer and a reader goroutine
// (a logger and the test reading what it logged).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
