// Package mail sends the server's email (invitations) over SMTP: smtp://
// with STARTTLS whenever the server offers it, or smtps:// with implicit
// TLS. Credentials in the URL are sent only over TLS (or to a loopback
// server), and never appear in an error.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Config says how to reach the SMTP server.
type Config struct {
	// URL is smtp://[user:pass@]host[:port] (port 587 by default; STARTTLS
	// when offered) or smtps://[user:pass@]host[:port] (port 465; implicit
	// TLS).
	URL string
	// From is the sender address, e.g. "agentkeys <noreply@example.com>".
	From string
	// TLS replaces the TLS configuration (tests: a private CA). nil: the
	// system's roots, with the URL's host as the server name.
	TLS *tls.Config
	// Timeout bounds one whole send (default 30 s).
	Timeout time.Duration
}

// Sender sends mail through one SMTP server. It is safe for concurrent use.
type Sender struct {
	addr, host string
	implicit   bool
	user, pass string
	from       *mail.Address
	tls        *tls.Config
	timeout    time.Duration
}

// New checks cfg. Returns EINVALID for a URL that is not smtp:// or
// smtps://, or a From that is not an address; the message never quotes the
// URL (it may hold a password).
func New(cfg Config) (*Sender, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") || (u.Path != "" && u.Path != "/") {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--smtp-url must be smtp://[user:pass@]host[:port] or smtps://…")
	}
	from, err := mail.ParseAddress(strings.TrimSpace(cfg.From))
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--smtp-from must be an email address, such as \"agentkeys <noreply@example.com>\"")
	}
	s := &Sender{host: u.Hostname(), implicit: u.Scheme == "smtps", from: from, timeout: cfg.Timeout}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicit {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	s.tls = cfg.TLS
	if s.tls == nil {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.tls = s.tls.Clone()
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	return s, nil
}

// String names the server without its credentials.
func (s *Sender) String() string { return "SMTP server " + s.addr }

// Send sends one plain-text message to one address. Returns EINVALID for a
// bad recipient and EUNAVAILABLE when the server cannot be reached or
// refuses the message (the error names the server, never its password).
func (s *Sender) Send(ctx context.Context, to, subject, body string) error {
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return agentkeys.Errorf(agentkeys.EINVALID, "not an email address: %q", to)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.send(ctx, rcpt.Address, s.message(rcpt, subject, body)); err != nil {
		if ctx.Err() != nil {
			return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "could not send email through %s: timed out", s.addr)
		}
		msg := strings.ReplaceAll(err.Error(), s.pass, "REDACTED")
		if s.pass == "" {
			msg = err.Error()
		}
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "could not send email through %s: %s", s.addr, msg)
	}
	return nil
}

func (s *Sender) send(ctx context.Context, rcpt string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if s.implicit {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return err
			}
		}
	}
	if s.user != "" {
		// PlainAuth refuses to send the password without TLS unless the
		// server is on loopback.
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message is an RFC 5322 message with CRLF line ends.
func (s *Sender) message(to *mail.Address, subject, body string) []byte {
	id := make([]byte, 12)
	rand.Read(id)
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	var b strings.Builder
	for _, h := range [][2]string{
		{"From", s.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", fmt.Sprintf("<%s@%s>", hex.EncodeToString(id), domain)},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "8bit"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(line + "\r\n") // net/smtp's DATA writer dot-stuffs
	}
	return []byte(b.String())
}
