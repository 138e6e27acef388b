package localvault

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentkeys/agentkeys"
	"golang.org/x/crypto/argon2"
)

// Key sources, as KeySource and Status report them.
const (
	SourceEnvironment = "environment" // Config.MasterKey (AGENTKEYS_MASTER_KEY)
	SourcePassphrase  = "passphrase"  // Home/vault.key, unlocked with Config.Passphrase
	SourceKeychain    = "keychain"    // the OS keychain (KeyStore)
)

// KeyFileName is the passphrase-wrapped root key file in Home.
const KeyFileName = "vault.key"

// Argon2id parameters for new key files: the OWASP recommendation (19 MiB,
// two passes, one lane), about 20 ms on a laptop core. They are stored in the
// file, so they can be raised later without breaking old files.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltBytes = 16
)

// keyFile is the JSON in Home/vault.key: the root key sealed (AES-256-GCM)
// under a key derived from the passphrase with argon2id.
type keyFile struct {
	Version     int    `json:"version"`
	KDF         string `json:"kdf"`
	MemoryKiB   uint32 `json:"memoryKiB"`
	Iterations  uint32 `json:"iterations"`
	Parallelism uint8  `json:"parallelism"`
	Salt        []byte `json:"salt"`       // base64
	WrappedKey  []byte `json:"wrappedKey"` // base64 of nonce||ciphertext||tag
}

var keyFileAAD = []byte("agentkeys/key-file/v1")

// noKeyHelp names every way to give the vault a root key.
const noKeyHelp = "set AGENTKEYS_MASTER_KEY (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`), " +
	"or use a passphrase (`agentkeys init --passphrase`, then AGENTKEYS_PASSPHRASE to unlock), " +
	"or run where an OS keychain is available (macOS Keychain, Windows Credential Manager, or a Secret Service such as gnome-keyring on a D-Bus session)"

// parseMasterKey decodes AGENTKEYS_MASTER_KEY (see agentkeys.ParseKey).
func parseMasterKey(s string) (agentkeys.Key, error) {
	return agentkeys.ParseKey("AGENTKEYS_MASTER_KEY", s)
}

// encodeKey is how a root key is stored in the OS keychain.
func encodeKey(k agentkeys.Key) string { return base64.StdEncoding.EncodeToString(k[:]) }

func deriveKEK(passphrase string, salt []byte, mem, iters uint32, par uint8) agentkeys.Key {
	var kek agentkeys.Key
	b := argon2.IDKey([]byte(passphrase), salt, iters, mem, par, agentkeys.KeySize)
	copy(kek[:], b)
	clear(b)
	return kek
}

// writeKeyFile wraps root under passphrase and writes the key file, 0600,
// failing if it exists.
func writeKeyFile(name, passphrase string, root agentkeys.Key) error {
	salt := make([]byte, argonSaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("generate salt: %w", err)
	}
	kek := deriveKEK(passphrase, salt, argonMemoryKiB, argonTime, argonThreads)
	wrapped, err := agentkeys.Seal(kek, root[:], keyFileAAD)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(keyFile{
		Version: 1, KDF: "argon2id", MemoryKiB: argonMemoryKiB, Iterations: argonTime, Parallelism: argonThreads,
		Salt: salt, WrappedKey: wrapped,
	}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("write key file: %w", err)
	}
	return f.Close()
}

// readKeyFile unlocks the root key in a key file with passphrase.
func readKeyFile(name, passphrase string) (agentkeys.Key, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return agentkeys.Key{}, fmt.Errorf("read key file: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "key file %s is damaged (not JSON): restore it from a backup", name)
	}
	// Bounds keep a damaged or hostile file from asking for absurd work.
	if kf.Version != 1 || kf.KDF != "argon2id" || kf.MemoryKiB < 8*1024 || kf.MemoryKiB > 4*1024*1024 ||
		kf.Iterations < 1 || kf.Iterations > 64 || kf.Parallelism < 1 || kf.Parallelism > 64 || len(kf.Salt) < 8 {
		return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"key file %s has unsupported parameters (version %d, kdf %q): it was written by another agentkeys or is damaged", name, kf.Version, kf.KDF)
	}
	kek := deriveKEK(passphrase, kf.Salt, kf.MemoryKiB, kf.Iterations, kf.Parallelism)
	plain, err := agentkeys.Open(kek, kf.WrappedKey, keyFileAAD)
	if err != nil || len(plain) != agentkeys.KeySize {
		return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"wrong passphrase: AGENTKEYS_PASSPHRASE does not unlock %s", name)
	}
	var k agentkeys.Key
	copy(k[:], plain)
	clear(plain)
	return k, nil
}

func fileExists(name string) (bool, error) {
	_, err := os.Stat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// keychainUser is the account the root key is stored under in the OS
// keychain: the vault's workspace id, which stays the same when the vault
// directory is moved.
func keychainUser(workspaceID string) string { return workspaceID }

// openRootKey finds the root key of an existing vault, in the documented
// order: Config.MasterKey, the key file, the OS keychain. initSource is
// what the vault was created with (meta.key_source), used for messages only.
func openRootKey(cfg Config, ks KeyStore, home, workspaceID, initSource string) (agentkeys.Key, string, error) {
	if cfg.MasterKey != "" {
		k, err := parseMasterKey(cfg.MasterKey)
		return k, SourceEnvironment, err
	}
	kf := filepath.Join(home, KeyFileName)
	ok, err := fileExists(kf)
	if err != nil {
		return agentkeys.Key{}, "", fmt.Errorf("key file: %w", err)
	}
	if ok {
		if cfg.Passphrase == "" {
			return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE,
				"the vault is locked with a passphrase (%s): set AGENTKEYS_PASSPHRASE to unlock it", kf)
		}
		k, err := readKeyFile(kf, cfg.Passphrase)
		return k, SourcePassphrase, err
	}
	if initSource == SourceEnvironment {
		return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"this vault's key was given in AGENTKEYS_MASTER_KEY when it was created: set AGENTKEYS_MASTER_KEY to the same value")
	}
	if initSource == SourcePassphrase {
		return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"this vault was created with a passphrase but its key file %s is missing: restore it from a backup, or set AGENTKEYS_MASTER_KEY", kf)
	}
	s, err := ks.Get(KeychainService, keychainUser(workspaceID))
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"no vault key: the OS keychain has no entry %q/%q for this vault; %s", KeychainService, keychainUser(workspaceID), noKeyHelp)
	case err != nil:
		return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE, "no vault key (%v): %s", err, noKeyHelp)
	}
	k, err := parseMasterKey(s)
	if err != nil {
		return agentkeys.Key{}, "", agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"the vault key in the OS keychain (%s/%s) is damaged: restore it, or set AGENTKEYS_MASTER_KEY", KeychainService, keychainUser(workspaceID))
	}
	return k, SourceKeychain, nil
}

// wrongKeyError is the message for a root key that does not unwrap the data key.
func wrongKeyError(source, home string) error {
	switch source {
	case SourceEnvironment:
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"wrong vault key: AGENTKEYS_MASTER_KEY does not open the vault in %s (is it the key this vault was created with?)", home)
	case SourcePassphrase:
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"wrong vault key: the key in %s does not open this vault (was the key file replaced?)", filepath.Join(home, KeyFileName))
	default:
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"wrong vault key: the key in the OS keychain does not open the vault in %s: set AGENTKEYS_MASTER_KEY if the vault was created with it", home)
	}
}
