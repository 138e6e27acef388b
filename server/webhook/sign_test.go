package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/webhook"
)

// TestStandardSignature_SpecVector: the Standard Webhooks specification's
// own example verifies.
func TestStandardSignature_SpecVector(t *testing.T) {
	got := webhook.StandardSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature = %s", got)
	}
}

// TestSign: X-AgentKeys-Signature is the hex HMAC of the body keyed with
// the whole secret string, and Verify accepts it and nothing else.
func TestSign(t *testing.T) {
	secret, body := "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", []byte(`{"id":"evt_1"}`)
	h := http.Header{}
	webhook.Sign(h, secret, "evt_1", time.Unix(1700000000, 0), body)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if want := hex.EncodeToString(m.Sum(nil)); h.Get(webhook.HeaderSignature) != want {
		t.Fatalf("signature %s, want %s", h.Get(webhook.HeaderSignature), want)
	}
	if h.Get("webhook-id") != "evt_1" || h.Get("webhook-timestamp") != "1700000000" || h.Get("webhook-signature")[:3] != "v1," {
		t.Fatalf("headers = %v", h)
	}
	if !webhook.Verify(secret, body, h.Get(webhook.HeaderSignature)) || webhook.Verify(secret, append(body, ' '), h.Get(webhook.HeaderSignature)) ||
		webhook.Verify("whsec_other", body, h.Get(webhook.HeaderSignature)) || webhook.Verify(secret, body, "zz") {
		t.Fatal("Verify disagrees")
	}
}

// TestCheckURL: https only; private, link-local, metadata and loopback
// addresses refused at creation (loopback allowed only with the flag, and
// then over http too); the server's own address refused.
func TestCheckURL(t *testing.T) {
	self := func(ap netip.AddrPort) bool { return ap == netip.MustParseAddrPort("127.0.0.1:8080") }
	for _, tc := range []struct {
		url           string
		allowLoopback bool
		ok            bool
	}{
		{"https://hooks.example.com/agentkeys", false, true},
		{"https://hooks.example.com:8443/a?b=c", false, true},
		{"http://hooks.example.com/a", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://169.254.169.254/latest/meta-data", true, false},
		{"https://10.0.0.1/h", true, false},
		{"https://192.168.1.1/h", false, false},
		{"https://[::1]/h", false, false},
		{"https://[fe80::1]/h", true, false},
		{"https://127.0.0.1/h", false, false},
		{"https://localhost/h", false, false},
		{"http://127.0.0.1:9000/h", true, true},
		{"http://localhost:9000/h", true, true},
		{"http://127.0.0.1:8080/h", true, false}, // the server itself
		{"https://user:pw@example.com/h", false, false},
		{"https://example.com/h#frag", false, false},
		{"ftp://example.com/h", false, false},
		{"/relative", false, false},
		{"", false, false},
	} {
		_, err := webhook.CheckURL(tc.url, tc.allowLoopback, self)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, loopback %v) = %v, want ok %v", tc.url, tc.allowLoopback, err, tc.ok)
		}
		if err != nil && agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("CheckURL(%q): code %s", tc.url, agentkeys.ErrorCode(err))
		}
	}
}
