package agentkeys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// KeySize is the size of every key agentkeys seals with: AES-256.
const KeySize = 32

// Key is an AES-256 key: a root key (keychain, passphrase file, environment
// or server key) or a workspace data key wrapped by it.
type Key [KeySize]byte

// NewKey returns a fresh random key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// ParseKey decodes a key given as text (AGENTKEYS_MASTER_KEY,
// AGENTKEYS_SERVER_KEY): standard or URL-safe base64, padded or not, of
// exactly 32 bytes, surrounding whitespace ignored. what names the key in the
// EINVALID message, which never quotes the input.
func ParseKey(what, s string) (Key, error) {
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	defer clear(b)
	const how = "it must be the base64 encoding of 32 random bytes (generate one with `openssl rand -base64 32`)"
	if err != nil || s == "" {
		return Key{}, Errorf(EINVALID, "%s is not valid base64: %s", what, how)
	}
	if len(b) != KeySize {
		return Key{}, Errorf(EINVALID, "%s decodes to %d bytes, not 32: %s", what, len(b), how)
	}
	var k Key
	copy(k[:], b)
	return k, nil
}

// String keeps a key out of logs and error messages.
func (Key) String() string { return redacted }

// GoString keeps a key out of %#v.
func (Key) GoString() string { return redacted }

// ErrDecrypt is returned when a ciphertext does not open: wrong key, wrong
// AAD (a row copied elsewhere), or tampering.
var ErrDecrypt = &Error{Code: EINTERNAL, Message: "a sealed value does not decrypt: the vault key is wrong or the data was tampered with"}

// Sealer seals and opens under one key. It sets the cipher up once (the
// AES key schedule and the GCM tables), where Seal and Open do it on every
// call: hold one per key for values opened often, such as a credential per
// proxied request. Safe for concurrent use; its String never prints the key.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key.
func NewSealer(key Key) (*Sealer, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// String keeps the key schedule out of logs and error messages.
func (*Sealer) String() string { return redacted }

// GoString keeps the key schedule out of %#v.
func (*Sealer) GoString() string { return redacted }

// Seal is the package's Seal under the Sealer's key.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	nonce := make([]byte, n, n+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open is the package's Open under the Sealer's key: ErrDecrypt when the
// key or aad is wrong or a byte was changed.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrDecrypt
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// Seal encrypts plaintext with AES-256-GCM under key, binding it to aad.
// The result is nonce || ciphertext || tag.
func Seal(key Key, plaintext, aad []byte) ([]byte, error) {
	s, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	return s.Seal(plaintext, aad)
}

// Open decrypts what Seal produced. Returns ErrDecrypt when the key or aad
// is wrong or a byte was changed; it never returns unauthenticated data.
func Open(key Key, sealed, aad []byte) ([]byte, error) {
	s, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	return s.Open(sealed, aad)
}

// CredentialAAD binds a credential's ciphertext to its workspace, its id
// and the version of the data key that sealed it.
func CredentialAAD(workspaceID, credentialID string, keyVersion int) []byte {
	return []byte("agentkeys/credential/v1\x00" + workspaceID + "\x00" + credentialID + "\x00" + strconv.Itoa(keyVersion))
}

// DataKeyAAD binds a wrapped data key to its workspace and version.
func DataKeyAAD(workspaceID string, keyVersion int) []byte {
	return []byte("agentkeys/data-key/v1\x00" + workspaceID + "\x00" + strconv.Itoa(keyVersion))
}

// WrapKey seals a data key under a root key.
func WrapKey(root, data Key, aad []byte) ([]byte, error) { return Seal(root, data[:], aad) }

// UnwrapKey opens a data key wrapped by WrapKey. Returns ErrDecrypt for a
// wrong root key.
func UnwrapKey(root Key, wrapped, aad []byte) (Key, error) {
	b, err := Open(root, wrapped, aad)
	if err != nil {
		return Key{}, err
	}
	defer clear(b)
	var k Key
	if len(b) != KeySize {
		return Key{}, ErrDecrypt
	}
	copy(k[:], b)
	return k, nil
}

// secretWire is the sealed encoding of a Secret; Secret itself refuses to
// marshal so it can never reach JSON by accident.
type secretWire struct {
	Value        string     `json:"v,omitempty"`
	Username     string     `json:"u,omitempty"`
	Password     string     `json:"p,omitempty"`
	Headers      []Header   `json:"h,omitempty"`
	Param        string     `json:"q,omitempty"`
	RefreshToken string     `json:"r,omitempty"`
	ExpiresAt    *time.Time `json:"e,omitempty"`
	RawResponses bool       `json:"raw,omitempty"`
	OAuthApp     string     `json:"a,omitempty"`
	Scopes       []string   `json:"s,omitempty"`
	TokenType    string     `json:"t,omitempty"`
}

// decodeSimple decodes the common encoding without encoding/json, which cost
// more than the decryption: an object of members "v", "u", "p", "q" or "r"
// whose values are strings without escapes, as json.Marshal writes them. It
// reports false for anything else (other members, escapes, whitespace,
// invalid UTF-8, a member twice), which the caller then decodes with
// encoding/json; what it accepts, encoding/json decodes the same way.
func (w *secretWire) decodeSimple(b []byte) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	b = b[1 : len(b)-1]
	var seen [256]bool
	for len(b) > 0 {
		if len(b) < 5 || b[0] != '"' || b[2] != '"' || b[3] != ':' || b[4] != '"' || seen[b[1]] {
			return false
		}
		var dst *string
		switch b[1] {
		case 'v':
			dst = &w.Value
		case 'u':
			dst = &w.Username
		case 'p':
			dst = &w.Password
		case 'q':
			dst = &w.Param
		case 'r':
			dst = &w.RefreshToken
		default:
			return false
		}
		seen[b[1]] = true
		b = b[5:]
		end := bytes.IndexByte(b, '"')
		if end < 0 {
			return false
		}
		v := b[:end]
		for _, c := range v {
			if c < 0x20 || c == '\\' {
				return false
			}
		}
		if !utf8.Valid(v) {
			return false
		}
		*dst = string(v)
		b = b[end+1:]
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	return true
}

// SealSecret encodes and seals a credential's secret under a data key, bound
// to its workspace, credential and key version.
func SealSecret(data Key, s *Secret, workspaceID, credentialID string, keyVersion int) ([]byte, error) {
	sl, err := NewSealer(data)
	if err != nil {
		return nil, err
	}
	return sl.SealSecret(s, workspaceID, credentialID, keyVersion)
}

// OpenSecret opens what SealSecret produced. Returns ErrDecrypt when the
// ciphertext was changed or belongs to another credential or workspace.
func OpenSecret(data Key, sealed []byte, workspaceID, credentialID string, keyVersion int) (*Secret, error) {
	sl, err := NewSealer(data)
	if err != nil {
		return nil, err
	}
	return sl.OpenSecret(sealed, workspaceID, credentialID, keyVersion)
}

// SealSecret is the package's SealSecret with the Sealer's key as the data key.
func (sl *Sealer) SealSecret(s *Secret, workspaceID, credentialID string, keyVersion int) ([]byte, error) {
	w := secretWire{Value: s.Value, Username: s.Username, Password: s.Password, Headers: s.Headers, Param: s.Param, RefreshToken: s.RefreshToken, RawResponses: s.RawResponses,
		OAuthApp: s.OAuthApp, Scopes: s.Scopes, TokenType: s.TokenType}
	if !s.ExpiresAt.IsZero() {
		w.ExpiresAt = &s.ExpiresAt
	}
	plain, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode secret: %w", err)
	}
	defer clear(plain)
	return sl.Seal(plain, CredentialAAD(workspaceID, credentialID, keyVersion))
}

// OpenSecret is the package's OpenSecret with the Sealer's key as the data key.
func (sl *Sealer) OpenSecret(sealed []byte, workspaceID, credentialID string, keyVersion int) (*Secret, error) {
	plain, err := sl.Open(sealed, CredentialAAD(workspaceID, credentialID, keyVersion))
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var w secretWire
	if !w.decodeSimple(plain) {
		w = secretWire{}
		if err := json.Unmarshal(plain, &w); err != nil {
			return nil, ErrDecrypt
		}
	}
	s := &Secret{Value: w.Value, Username: w.Username, Password: w.Password, Headers: w.Headers, Param: w.Param, RefreshToken: w.RefreshToken, RawResponses: w.RawResponses,
		OAuthApp: w.OAuthApp, Scopes: w.Scopes, TokenType: w.TokenType}
	if w.ExpiresAt != nil {
		s.ExpiresAt = *w.ExpiresAt
	}
	return s, nil
}
