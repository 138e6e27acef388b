package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// DefaultWebhookTolerance is how far a Standard Webhooks timestamp may be
// from now: ±5 minutes, as the specification's receivers allow.
const DefaultWebhookTolerance = 5 * time.Minute

// Webhook header names.
const (
	// HeaderWebhookSignature carries the seed's signature (VerifyWebhook).
	HeaderWebhookSignature = "X-AgentKeys-Signature"
	// Standard Webhooks headers (VerifyStandardWebhook).
	HeaderWebhookID                = "Webhook-Id"
	HeaderWebhookTimestamp         = "Webhook-Timestamp"
	HeaderWebhookSignatureStandard = "Webhook-Signature"
)

// VerifyWebhook checks an X-AgentKeys-Signature header: the hex
// HMAC-SHA256 of the raw request body, keyed with the secret string's bytes
// — the seed's snippet. Hex digits may be either case. It reports false for a
// wrong, malformed or empty signature or secret; the comparison takes the
// same time wherever the first difference is. Pass the body exactly as
// received, not re-encoded JSON.
func VerifyWebhook(rawBody []byte, signature, secret string) bool {
	if secret == "" || len(signature) != 2*sha256.Size {
		return false
	}
	given, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(rawBody)
	return hmac.Equal(given, mac.Sum(nil))
}

// VerifyStandardWebhook checks a Standard Webhooks delivery
// (https://www.standardwebhooks.com): the webhook-signature header holds one
// or more space-separated "v1,<base64>" signatures of
// "{webhook-id}.{webhook-timestamp}.{body}", HMAC-SHA256 keyed with the
// base64-decoded part of the "whsec_…" secret. It returns nil when one v1
// signature matches and webhook-timestamp (Unix seconds) is within tolerance
// of now; otherwise an *agentkeys.Error (EUNAUTHORIZED) saying what is wrong,
// or EINVALID for a secret that is not base64. A zero tolerance means
// DefaultWebhookTolerance; a zero now means time.Now().
func VerifyStandardWebhook(rawBody []byte, header http.Header, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if now.IsZero() {
		now = time.Now()
	}
	id, ts, sigs := header.Get(HeaderWebhookID), header.Get(HeaderWebhookTimestamp), header.Get(HeaderWebhookSignatureStandard)
	if id == "" || ts == "" || sigs == "" {
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || len(ts) > 15 {
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "webhook-timestamp is %s away from now, over the %s tolerance (a replay, or a clock off)", d.Round(time.Second).Abs(), tolerance)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return agentkeys.Errorf(agentkeys.EINVALID, "the webhook secret is not whsec_ followed by base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(rawBody)
	want := mac.Sum(nil)
	ok := false
	for _, part := range strings.Split(sigs, " ") {
		version, b64, found := strings.Cut(part, ",")
		if !found || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(given, want) {
			ok = true
		}
	}
	if !ok {
		return agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "no v1 signature in webhook-signature matches the body")
	}
	return nil
}
