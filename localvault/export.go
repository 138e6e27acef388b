package localvault

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentkeys/agentkeys"
)

// An export file moves credentials, values included, between vaults. It is
// never plain text: the credentials are sealed with AES-256-GCM under a key
// derived with argon2id from a passphrase of the export's own, unrelated to
// any vault key.

// ExportFormat names export files (their "format" field).
const ExportFormat = "agentkeys-export"

var exportAAD = []byte("agentkeys/export/v1")

// exportFile is the JSON of an export file.
type exportFile struct {
	Format      string    `json:"format"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	Count       int       `json:"count"`
	KDF         string    `json:"kdf"`
	MemoryKiB   uint32    `json:"memoryKiB"`
	Iterations  uint32    `json:"iterations"`
	Parallelism uint8     `json:"parallelism"`
	Salt        []byte    `json:"salt"`
	Sealed      []byte    `json:"sealed"` // nonce||ciphertext||tag of the JSON of []exportedCredential
}

// ExportedCredential is one credential in an export: its metadata and its
// value, as CredentialInput needs them to create it again.
type ExportedCredential struct {
	Name         string
	Type         agentkeys.CredentialType
	AllowedHosts []string
	Secret       agentkeys.Secret
	// CredentialExpiresAt is the credential's expiry (nil: never).
	CredentialExpiresAt *time.Time
}

// exportedCredential is ExportedCredential's sealed JSON (agentkeys.Secret
// refuses to marshal itself).
type exportedCredential struct {
	Name         string                   `json:"name"`
	Type         agentkeys.CredentialType `json:"type"`
	AllowedHosts []string                 `json:"allowedHosts"`
	Value        string                   `json:"value,omitempty"`
	Username     string                   `json:"username,omitempty"`
	Password     string                   `json:"password,omitempty"`
	Headers      []agentkeys.Header       `json:"headers,omitempty"`
	Param        string                   `json:"param,omitempty"`
	RefreshToken string                   `json:"refreshToken,omitempty"`
	ExpiresAt    time.Time                `json:"expiresAt,omitzero"`
	// CredentialExpiresAt is the credential's expiry; ExpiresAt above is
	// an OAuth access token's.
	CredentialExpiresAt *time.Time `json:"credentialExpiresAt,omitempty"`
}

// ExportCredentials opens every credential's value, in memory, for an
// export. The caller seals them at once with SealExport.
func (v *Vault) ExportCredentials(ctx context.Context) ([]ExportedCredential, error) {
	creds, err := v.ListCredentials(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ExportedCredential, 0, len(creds))
	for _, c := range creds {
		s, err := v.OpenSecret(ctx, &agentkeys.Route{WorkspaceID: v.wsID, Credential: c})
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", c.Name, err)
		}
		out = append(out, ExportedCredential{Name: c.Name, Type: c.Type, AllowedHosts: c.AllowedHosts, Secret: *s, CredentialExpiresAt: c.ExpiresAt})
	}
	return out, nil
}

// minExportPassphrase is the shortest passphrase an export accepts.
const minExportPassphrase = 8

// SealExport encrypts creds under passphrase (argon2id, then AES-256-GCM)
// and returns the export file's bytes. Returns EINVALID for a passphrase
// shorter than 8 characters.
func SealExport(creds []ExportedCredential, passphrase string, now time.Time) ([]byte, error) {
	if len([]rune(passphrase)) < minExportPassphrase {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the export passphrase is shorter than %d characters", minExportPassphrase)
	}
	list := make([]exportedCredential, len(creds))
	for i, c := range creds {
		s := c.Secret
		list[i] = exportedCredential{Name: c.Name, Type: c.Type, AllowedHosts: c.AllowedHosts, Value: s.Value, Username: s.Username,
			Password: s.Password, Headers: s.Headers, Param: s.Param, RefreshToken: s.RefreshToken, ExpiresAt: s.ExpiresAt,
			CredentialExpiresAt: c.CredentialExpiresAt}
	}
	plain, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	salt := make([]byte, argonSaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	kek := deriveKEK(passphrase, salt, argonMemoryKiB, argonTime, argonThreads)
	defer clear(kek[:])
	sealed, err := agentkeys.Seal(kek, plain, exportAAD)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(exportFile{
		Format: ExportFormat, Version: 1, CreatedAt: now.UTC().Truncate(time.Second), Count: len(list),
		KDF: "argon2id", MemoryKiB: argonMemoryKiB, Iterations: argonTime, Parallelism: argonThreads,
		Salt: salt, Sealed: sealed,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// OpenExport decrypts an export file. Returns EINVALID when data is not an
// export file and EUNAUTHORIZED when the passphrase does not open it.
func OpenExport(data []byte, passphrase string) ([]ExportedCredential, error) {
	var f exportFile
	if err := json.Unmarshal(data, &f); err != nil || f.Format != ExportFormat {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "not an agentkeys export file (make one with `agentkeys export --encrypted FILE`)")
	}
	if f.Version != 1 || f.KDF != "argon2id" || f.MemoryKiB < 8*1024 || f.MemoryKiB > 4*1024*1024 ||
		f.Iterations < 1 || f.Iterations > 64 || f.Parallelism < 1 || f.Parallelism > 64 || len(f.Salt) < 8 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "export file version %d (kdf %q) is not supported by this agentkeys", f.Version, f.KDF)
	}
	kek := deriveKEK(passphrase, f.Salt, f.MemoryKiB, f.Iterations, f.Parallelism)
	defer clear(kek[:])
	plain, err := agentkeys.Open(kek, f.Sealed, exportAAD)
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "wrong passphrase: it does not open this export file")
	}
	defer clear(plain)
	var list []exportedCredential
	if err := json.Unmarshal(plain, &list); err != nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the export file's contents are damaged")
	}
	out := make([]ExportedCredential, len(list))
	for i, c := range list {
		out[i] = ExportedCredential{Name: c.Name, Type: c.Type, AllowedHosts: c.AllowedHosts, Secret: agentkeys.Secret{
			Value: c.Value, Username: c.Username, Password: c.Password, Headers: c.Headers, Param: c.Param,
			RefreshToken: c.RefreshToken, ExpiresAt: c.ExpiresAt}, CredentialExpiresAt: c.CredentialExpiresAt}
	}
	return out, nil
}
