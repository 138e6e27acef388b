package agentkeys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"strings"
	"time"
)

// Token prefixes. A proxy token opens one agent × credential grant; a
// workspace key opens every credential of its workspace by name (and, on a
// server, the REST API).
const (
	ProxyTokenPrefix   = "pxr_"
	WorkspaceKeyPrefix = "ak_ws_"
)

// tokenBytes is the entropy of every token: 256 bits.
const tokenBytes = 32

// NewProxyToken returns a fresh pxr_ token with 256 random bits.
func NewProxyToken() string { return ProxyTokenPrefix + randomBase62(tokenBytes) }

// NewWorkspaceKey returns a fresh ak_ws_ key with 256 random bits.
func NewWorkspaceKey() string { return WorkspaceKeyPrefix + randomBase62(tokenBytes) }

// randomBase62 encodes n random bytes in base62, zero-padded to a fixed
// length so every token of a kind has the same length.
func randomBase62(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("agentkeys: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	width := int(float64(n*8)/5.954) + 1   // log2(62) ≈ 5.954
	s := new(big.Int).SetBytes(b).Text(62) // digits, a-z, A-Z
	return strings.Repeat("0", max(0, width-len(s))) + s
}

// IsProxyToken reports whether s has the pxr_ form (it says nothing about
// whether the token is valid).
func IsProxyToken(s string) bool {
	return strings.HasPrefix(s, ProxyTokenPrefix) && len(s) > len(ProxyTokenPrefix)+20
}

// IsWorkspaceKey reports whether s has the ak_ws_ form.
func IsWorkspaceKey(s string) bool {
	return strings.HasPrefix(s, WorkspaceKeyPrefix) && len(s) > len(WorkspaceKeyPrefix)+20
}

// HashToken returns the hex SHA-256 of a token: what the local vault stores
// and looks tokens up by. (Servers use an HMAC with a pepper instead.)
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// EqualHash compares two token hashes in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// NewID returns prefix + "_" + a 26-character, time-ordered, URL-safe id
// (48-bit millisecond time and 80 random bits, Crockford base32, as ULID).
func NewID(prefix string) string { return prefix + "_" + newULID(time.Now()) }

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// newULID encodes 48 bits of milliseconds and 80 random bits as 26
// Crockford base32 characters (5 bits each, the first carrying 3).
func newULID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("agentkeys: crypto/rand failed: " + err.Error())
	}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
