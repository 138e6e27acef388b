package mail_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/mail"
)

type session struct {
	mu   *sync.Mutex
	got  *[]string
	conn *smtp.Conn
}

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	_, isTLS := s.conn.TLSConnectionState()
	s.mu.Lock()
	*s.got = append(*s.got, map[bool]string{true: "tls:", false: "plain:"}[isTLS]+string(b))
	s.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// TestSend_ImplicitTLS: smtps:// speaks TLS from the first byte and checks
// the server's certificate; the message arrives with its headers.
func TestSend_ImplicitTLS(t *testing.T) {
	cert, pool := testCert(t)
	var mu sync.Mutex
	var got []string
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{mu: &mu, got: &got, conn: c}, nil }))
	srv.Domain = "localhost"
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	s, err := mail.New(mail.Config{URL: "smtps://" + ln.Addr().String(), From: "agentkeys <noreply@example.com>", TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), "a@example.com", "Hello ünïcode", "line one\n.line two\n"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], "tls:") || !strings.Contains(got[0], "To: <a@example.com>") ||
		!strings.Contains(got[0], "\r\n.line two\r\n") || !strings.Contains(got[0], "Subject: =?utf-8?") {
		t.Fatalf("delivered: %q", got)
	}

	// An untrusted certificate is refused, and says so without the URL's password.
	s2, _ := mail.New(mail.Config{URL: "smtps://u:secret-pw@" + ln.Addr().String(), From: "noreply@example.com"})
	err = s2.Send(t.Context(), "a@example.com", "x", "y")
	if agentkeys.ErrorCode(err) != agentkeys.EUNAVAILABLE || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("untrusted server: %v", err)
	}
}

func TestNew_Refusals(t *testing.T) {
	for _, tc := range []mail.Config{
		{URL: "http://u:secret-pw@example.com", From: "a@example.com"},
		{URL: "smtp://", From: "a@example.com"},
		{URL: "smtp://u:secret-pw@example.com", From: "not an address"},
	} {
		_, err := mail.New(tc)
		if agentkeys.ErrorCode(err) != agentkeys.EINVALID || strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("New(%q, %q) = %v", tc.URL, tc.From, err)
		}
	}
}

func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
