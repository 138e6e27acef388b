package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestHostedProxy_SSRF: without --allow-loopback-targets the hosted proxy
// refuses, at connect time, loopback, private and link-local destinations
// even when the credential's allowlist names them; nothing reaches the
// upstream and the refusal is audited.
func TestHostedProxy_SSRF(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	up := newUpstream(t)
	_, port, _ := net.SplitHostPort(up.host())
	_, key := s.signup("Acme")
	targets := []struct{ host, url string }{
		{up.host(), up.URL + "/"},
		{"localhost:" + port, "http://localhost:" + port + "/"},
		{"app.localhost:" + port, "http://app.localhost:" + port + "/"},
		{"[::ffff:127.0.0.1]:" + port, "https://[::ffff:127.0.0.1]:" + port + "/"},
		{"10.0.0.1", "https://10.0.0.1/"},
		{"169.254.169.254", "https://169.254.169.254/latest/meta-data/"},
		{"100.64.0.1", "https://100.64.0.1/"},
		{"[::1]:" + port, "http://[::1]:" + port + "/"},
		{"[::ffff:7f00:1]:" + port, "http://[::ffff:7f00:1]:" + port + "/"},
	}
	ag := s.createAgent(key, "bot")
	for i, tc := range targets {
		t.Run(tc.host, func(t *testing.T) {
			a := s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "c" + string(rune('a'+i)), "type": "API_KEY", "value": "ssrf-secret", "allowedHosts": []string{tc.host}})
			a.want(t, 201, "")
			var c agentkeys.Credential
			a.decode(t, &c)
			g := s.assign(key, ag.ID, c.ID)
			pa := proxyGet(t, s.url, g.ProxyToken, "", tc.url)
			pa.want(t, 403, agentkeys.EDESTINATION)
			if strings.Contains(string(pa.body), "ssrf-secret") {
				t.Fatal("refusal carries the secret")
			}
		})
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("the loopback upstream received %d requests", n)
	}
}

// TestHostedProxy_NoOwnerAuthority: the store's RouteByName (the in-process
// owner path) is refused; over HTTP every request needs a token.
func TestHostedProxy_NoOwnerAuthority(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, err := s.store.RouteByName(t.Context(), "anything")
	if agentkeys.ErrorCode(err) != agentkeys.EFORBIDDEN {
		t.Fatalf("RouteByName = %v, want FORBIDDEN", err)
	}
	proxyGet(t, s.url, "", "", "https://api.example.com/").want(t, 401, agentkeys.EUNAUTHORIZED)
}

// startServe runs Server.Serve on 127.0.0.1:0 and returns its URL and a
// stop function that cancels it and returns Serve's result.
func startServe(t *testing.T, srv *server.Server, grace time.Duration) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, server.ListenConfig{Addr: "127.0.0.1:0", ShutdownTimeout: grace, Ready: func(u string) { ready <- u }})
	}()
	select {
	case u := <-ready:
		stopped := false
		var res error
		stop := func() error {
			if !stopped {
				stopped = true
				cancel()
				res = <-done
			}
			return res
		}
		t.Cleanup(func() { stop() })
		return u, stop
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	return "", nil
}

func newServer(t *testing.T, st *store.Store, allowLoopback bool) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: allowLoopback, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestServe_OwnAddressRefused: with loopback targets allowed, the proxy
// still refuses to call the server itself, and reaches another loopback
// upstream.
func TestServe_OwnAddressRefused(t *testing.T) {
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	base, _ := startServe(t, newServer(t, st, true), 5*time.Second)
	ws, err := st.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "a@example.com", Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	v := st.Workspace(ws.ID)
	self := strings.TrimPrefix(base, "http://")
	up := newUpstream(t)
	c, err := v.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "self", Type: agentkeys.APIKey, AllowedHosts: []string{self, up.host()}, Secret: agentkeys.Secret{Value: "own-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	proxyGet(t, base, ws.APIKey, c.Name, base+"/healthz").want(t, 403, agentkeys.EDESTINATION)
	proxyGet(t, base, ws.APIKey, c.Name, up.URL+"/ok").want(t, 200, "")
}

// TestServe_GracefulShutdown: a stream in flight when the server is told
// to stop runs to its end; then Serve returns nil.
func TestServe_GracefulShutdown(t *testing.T) {
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "last")
	}))
	t.Cleanup(up.Close)
	base, stop := startServe(t, newServer(t, st, true), 10*time.Second)
	ws, _ := st.CreateWorkspace(t.Context(), store.NewWorkspace{Email: "a@example.com", Name: "A"})
	if _, err := st.Workspace(ws.ID).CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "up", Type: agentkeys.APIKey,
		AllowedHosts: []string{strings.TrimPrefix(up.URL, "http://")}, Secret: agentkeys.Secret{Value: "v"}}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+ws.APIKey)
	req.Header.Set(agentkeys.HeaderCredentialName, "up")
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first " {
		t.Fatalf("first chunk = %q, %v", buf, err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned %v with a stream in flight", err)
	default:
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "last" {
		t.Fatalf("rest of the stream = %q, %v", rest, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve after drain = %v", err)
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		name string
		lc   server.ListenConfig
		ok   bool
	}{
		{"Loopback", server.ListenConfig{Addr: "127.0.0.1:8080"}, true},
		{"LocalhostName", server.ListenConfig{Addr: "localhost:8080"}, true},
		{"IPv6Loopback", server.ListenConfig{Addr: "[::1]:8080"}, true},
		{"AllInterfacesPlain", server.ListenConfig{Addr: ":8080"}, false},
		{"PublicPlain", server.ListenConfig{Addr: "0.0.0.0:8080"}, false},
		{"BehindProxy", server.ListenConfig{Addr: ":8080", BehindProxy: true}, true},
		{"TLS", server.ListenConfig{Addr: ":8443", TLSCert: "c.pem", TLSKey: "k.pem"}, true},
		{"HalfTLS", server.ListenConfig{Addr: "127.0.0.1:8443", TLSCert: "c.pem"}, false},
		{"NoPort", server.ListenConfig{Addr: "127.0.0.1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := server.CheckListen(tc.lc)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckListen(%+v) = %v", tc.lc, err)
			}
			if err != nil && agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Fatalf("code = %s", agentkeys.ErrorCode(err))
			}
		})
	}
}

// TestServe_TLS: with --tls-cert and --tls-key the server speaks HTTPS
// (and may then listen on any address).
func TestServe_TLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := newServer(t, st, false)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, server.ListenConfig{Addr: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile, Ready: func(u string) { ready <- u }})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base URL = %s", base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /healthz over TLS = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A missing certificate file is a usage error.
	err = srv.Serve(context.Background(), server.ListenConfig{Addr: "127.0.0.1:0", TLSCert: filepath.Join(dir, "none.pem"), TLSKey: keyFile})
	if agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Fatalf("Serve with a missing certificate = %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentkeys test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
