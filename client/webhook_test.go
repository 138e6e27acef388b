package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
)

// TestVerifyWebhook runs the seed-signature vectors of sdk/cases.json
// (computed with openssl), shared with the TypeScript and Python SDKs.
func TestVerifyWebhook(t *testing.T) {
	for _, v := range loadContract(t).Webhooks.Seed {
		t.Run(v.Name, func(t *testing.T) {
			if got := client.VerifyWebhook([]byte(v.Body), v.Signature, v.Secret); got != v.Valid {
				t.Fatalf("VerifyWebhook = %v, want %v", got, v.Valid)
			}
		})
	}
	if client.VerifyWebhook([]byte("{}"), hex.EncodeToString(make([]byte, 32)), "") {
		t.Fatal("an empty secret verified")
	}
}

// TestVerifyStandardWebhook runs the Standard Webhooks vectors of
// sdk/cases.json, then checks the default clock and tolerance.
func TestVerifyStandardWebhook(t *testing.T) {
	for _, v := range loadContract(t).Webhooks.Standard {
		t.Run(v.Name, func(t *testing.T) {
			h := http.Header{}
			for k, x := range map[string]string{"webhook-id": v.ID, "webhook-timestamp": v.Timestamp, "webhook-signature": v.Signature} {
				if x != "" {
					h.Set(k, x)
				}
			}
			err := client.VerifyStandardWebhook([]byte(v.Body), h, v.Secret, time.Duration(v.ToleranceSeconds)*time.Second, time.Unix(v.Now, 0))
			if (err == nil) != v.Valid {
				t.Fatalf("err = %v, want valid %v", err, v.Valid)
			}
			if err != nil && agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
				t.Fatalf("code %s", agentkeys.ErrorCode(err))
			}
		})
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := []byte(`{"event":"credential.expiring"}`)
	for _, tc := range []struct {
		age time.Duration
		ok  bool
	}{{0, true}, {4 * time.Minute, true}, {6 * time.Minute, false}, {-6 * time.Minute, false}} {
		ts := strconv.FormatInt(time.Now().Add(-tc.age).Unix(), 10)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("msg_1." + ts + "." + string(body)))
		h := http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
		if err := client.VerifyStandardWebhook(body, h, secret, 0, time.Time{}); (err == nil) != tc.ok {
			t.Errorf("age %s: %v", tc.age, err)
		}
		if tc.ok {
			if err := client.VerifyStandardWebhook(body, h, "whsec_not base64!", 0, time.Time{}); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
				t.Errorf("bad secret: %v", err)
			}
		}
	}
}
