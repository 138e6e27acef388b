package mail_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/internal/smtptest"
	"github.com/agentkeys/agentkeys/server/mail"
)

// TestSend_ImplicitTLS: smtps:// speaks TLS from the first byte and checks
// the server's certificate; the message arrives with its headers.
func TestSend_ImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{ImplicitTLS: true})
	s, err := mail.New(mail.Config{URL: "smtps://" + srv.Addr, From: "agentkeys <noreply@example.com>", TLS: &tls.Config{RootCAs: srv.CA}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), "a@example.com", "Hello ünïcode", "line one\n.line two\n"); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || !got[0].TLS || !strings.Contains(got[0].Data, "To: <a@example.com>") ||
		!strings.Contains(got[0].Data, "\r\n.line two\r\n") || !strings.Contains(got[0].Data, "Subject: =?utf-8?") {
		t.Fatalf("delivered: %+v", got)
	}

	// An untrusted certificate is refused, and says so without the URL's password.
	s2, _ := mail.New(mail.Config{URL: "smtps://u:secret-pw@" + srv.Addr, From: "noreply@example.com"})
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
