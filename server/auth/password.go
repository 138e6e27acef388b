package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/agentkeys/agentkeys"
)

// Password length bounds (in characters; the upper bound also caps the
// bytes hashed).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// Password hashing: argon2id with the OWASP parameters (19 MiB, t=2, p=1),
// stored as a PHC string so parameters can be raised later.
const (
	pwMemoryKiB = 19 * 1024
	pwTime      = 2
	pwThreads   = 1
	pwKeyLen    = 32
)

// CheckPasswordPolicy returns EINVALID unless pw has MinPasswordLen to
// MaxPasswordLen characters. The message never quotes the password.
func CheckPasswordPolicy(pw string) error {
	if n := len([]rune(pw)); n < MinPasswordLen || len(pw) > MaxPasswordLen {
		return agentkeys.Errorf(agentkeys.EINVALID, "password must be %d to %d characters long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// HashPassword returns the argon2id PHC string of pw with a fresh salt.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, pwTime, pwMemoryKiB, pwThreads, pwKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, pwMemoryKiB, pwTime, pwThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// VerifyPassword reports whether pw matches the PHC string hash. An empty
// hash (an unknown email, or a user without a password) is checked against
// a dummy hash, so the time taken does not tell whether an account exists;
// it never matches. A password over MaxPasswordLen never matches either
// (and is not hashed).
func VerifyPassword(hash, pw string) bool {
	if hash == "" {
		dummyOnce.Do(func() { dummyHash, _ = HashPassword("agentkeys dummy password") })
		verify(dummyHash, pw)
		return false
	}
	if len(pw) > MaxPasswordLen {
		return false
	}
	return verify(hash, pw)
}

func verify(hash, pw string) bool {
	// $argon2id$v=19$m=19456,t=2,p=1$salt$sum
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<21 || t == 0 || t > 20 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	sum, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(sum) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(sum)))
	return subtle.ConstantTimeCompare(got, sum) == 1
}
