// Package webhook delivers the server's webhook events: it signs each body,
// sends it to the endpoint through the hosted proxy's SSRF-refusing
// transport, and records every attempt in the store's outbox (store/
// webhook.go), retrying with backoff until the endpoint answers 2xx or the
// attempts run out. It also runs the expiry scanner that raises
// credential.expiring_soon and credential.expired.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// The headers every delivery carries.
const (
	HeaderSignature         = "X-AgentKeys-Signature" // hex HMAC-SHA256 of the body, keyed with the secret string as shown
	HeaderStandardID        = "webhook-id"            // the event id: the same on every attempt
	HeaderStandardTimestamp = "webhook-timestamp"     // Unix seconds of this attempt
	HeaderStandardSignature = "webhook-signature"     // v1,<base64 HMAC of "id.timestamp.body">
	HeaderDeliveryAttempt   = "X-AgentKeys-Delivery-Attempt"
	standardSignaturePrefix = "v1,"
	standardSecretPrefix    = "whsec_"
)

// Signature is the X-AgentKeys-Signature of body: the hex HMAC-SHA256 of the
// raw body keyed with the secret string exactly as shown ("whsec_…"), as
// the seed's TypeScript and Python snippets compute it.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// StandardSignature is the Standard Webhooks webhook-signature: "v1," and
// the base64 HMAC-SHA256 of "id.timestamp.body", keyed with the bytes the
// secret's base64 part decodes to.
func StandardSignature(secret, id string, ts time.Time, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, standardSecretPrefix))
	if err != nil {
		key = []byte(secret)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return standardSignaturePrefix + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign sets the signature headers of a delivery of event id with body at ts.
func Sign(h http.Header, secret, id string, ts time.Time, body []byte) {
	h.Set(HeaderSignature, Signature(secret, body))
	h.Set(HeaderStandardID, id)
	h.Set(HeaderStandardTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderStandardSignature, StandardSignature(secret, id, ts, body))
}

// Verify reports whether sig is body's X-AgentKeys-Signature under secret
// (constant time).
func Verify(secret string, body []byte, sig string) bool {
	want, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	got, _ := hex.DecodeString(Signature(secret, body))
	return hmac.Equal(got, want)
}

// CheckURL validates an endpoint URL: absolute https (http only for a
// loopback host when allowLoopback), no user info or fragment, and, when the
// host is an IP address, one the delivery dialer would accept (private,
// link-local, metadata and other special addresses are refused here; names
// are checked again after DNS, at connect time). self, when not nil,
// refuses the server's own address. Returns the URL as stored, or EINVALID.
func CheckURL(raw string, allowLoopback bool, self func(netip.AddrPort) bool) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url must be an absolute https:// URL, such as https://example.com/hooks/agentkeys")
	}
	if u.User != nil || u.Fragment != "" {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url may not carry user info or a #fragment")
	}
	host := u.Hostname()
	loopback := agentkeys.IsLoopbackHost(host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && allowLoopback:
	case u.Scheme == "http" && loopback:
		return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url must be https: plain http reaches only loopback, and only with `serve --allow-loopback-targets`")
	default:
		return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url must be https (got %s://)", u.Scheme)
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if err := proxy.CheckAddr(ip, allowLoopback); err != nil {
			return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url %s is refused: %v", host, err)
		}
		port := u.Port()
		if port == "" {
			port = "443"
			if u.Scheme == "http" {
				port = "80"
			}
		}
		if p, err := strconv.ParseUint(port, 10, 16); err == nil && self != nil && self(netip.AddrPortFrom(ip, uint16(p))) {
			return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url %s is this agentkeys server's own address", net.JoinHostPort(host, port))
		}
	} else if loopback && !allowLoopback {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "webhook url %s is a loopback host: refused unless `serve --allow-loopback-targets`", host)
	}
	return u.String(), nil
}
