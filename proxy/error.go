package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"github.com/agentkeys/agentkeys"
)

// writeError sends a proxy-made error: JSON {"error","code","status"} and
// the X-Agentkeys-Error header, so clients can tell it from an upstream
// answer with the same status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(agentkeys.ErrorBody{Error: msg, Code: code, Status: status})
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set(agentkeys.HeaderError, code)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// isTimeout reports whether a transport error is a timeout (dial, TLS
// handshake or response header).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describe classifies a transport error in words that hold no URL: the
// error's own text is never used (a *url.Error prints the whole outbound URL).
func describe(err error) string {
	var (
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		recHdr   tls.RecordHeaderError
		netOpErr *net.OpError
	)
	switch {
	case errors.As(err, &dnsErr):
		return "host name not found"
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid):
		return "TLS certificate not trusted"
	case errors.As(err, &alert), errors.As(err, &recHdr):
		return "TLS handshake failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case isTimeout(err):
		return "timed out"
	case errors.As(err, &netOpErr) && netOpErr.Op == "dial":
		return "connection failed"
	}
	return "request failed"
}
