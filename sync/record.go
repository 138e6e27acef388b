package sync

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// KeyVersion is the version of the vault key that seals records. A new key
// (rotate-key) makes a new vault id, so it is 1 for every vault today; it
// is bound into every record's AAD so a later scheme can move on.
const KeyVersion = 1

// MaxBlobBytes is the largest sealed record the server stores.
const MaxBlobBytes = 64 << 10

// Keys are what a vault key derives (HKDF-SHA256): the vault id the server
// files the records under, the key that sealed records and device labels
// use, and the key that turns object ids into opaque record ids.
type Keys struct {
	VaultID string
	seal    *agentkeys.Sealer
	ids     []byte
}

// String keeps the keys out of logs.
func (*Keys) String() string { return "REDACTED" }

// DeriveKeys derives a vault's Keys from its 256-bit vault key.
func DeriveKeys(vaultKey agentkeys.Key) (*Keys, error) {
	sealKey, err := hkdf.Key(sha256.New, vaultKey[:], nil, "agentkeys/sync/records/v1", agentkeys.KeySize)
	if err != nil {
		return nil, err
	}
	ids, err := hkdf.Key(sha256.New, vaultKey[:], nil, "agentkeys/sync/ids/v1", 32)
	if err != nil {
		return nil, err
	}
	var sk agentkeys.Key
	copy(sk[:], sealKey)
	clear(sealKey)
	sl, err := agentkeys.NewSealer(sk)
	if err != nil {
		return nil, err
	}
	k := &Keys{seal: sl, ids: ids}
	k.VaultID = "sv_" + k.mac("vault")[:32]
	return k, nil
}

func (k *Keys) mac(s string) string {
	m := hmac.New(sha256.New, k.ids)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// RecordID is the opaque id the server knows an object by: a keyed hash
// of its kind and id, so the server cannot tell a credential from a grant
// or link a record to anything but its own history.
func (k *Keys) RecordID(kind, id string) string {
	return k.mac("record\x00" + kind + "\x00" + id)[:32]
}

// recordAAD binds a sealed record to its vault, record id, key version and
// record version: a blob moved to another record or vault, or replayed
// under another version, does not open.
func recordAAD(vaultID, recordID string, version int64) []byte {
	return []byte("agentkeys/sync/record/v1\x00" + vaultID + "\x00" + recordID + "\x00" +
		strconv.Itoa(KeyVersion) + "\x00" + strconv.FormatInt(version, 10))
}

// envelope is a record's plaintext: the object, the clock stamp of the
// change and the device that made it.
type envelope struct {
	Stamp  string            `json:"hlc"`
	Device string            `json:"dev"`
	Doc    agentkeys.SyncDoc `json:"doc"`
}

// Seal seals one object as the given version of its record.
func (k *Keys) Seal(doc *agentkeys.SyncDoc, stamp Stamp, version int64) (recordID string, blob []byte, err error) {
	recordID = k.RecordID(doc.Kind, doc.ID)
	plain, err := json.Marshal(envelope{Stamp: stamp.String(), Device: stamp.Device, Doc: *doc})
	if err != nil {
		return "", nil, err
	}
	defer clear(plain)
	blob, err = k.seal.Seal(plain, recordAAD(k.VaultID, recordID, version))
	if err != nil {
		return "", nil, err
	}
	if len(blob) > MaxBlobBytes {
		what := doc.String()
		if doc.Name != "" {
			what = fmt.Sprintf("%s %q", doc.Kind, doc.Name)
		}
		return "", nil, agentkeys.Errorf(agentkeys.ETOOLARGE, "%s is %d bytes sealed, over the sync limit of %d per record: shorten its value", what, len(blob), MaxBlobBytes)
	}
	return recordID, blob, nil
}

// TamperError is a record the server sent that does not open under the
// vault key as the record and version the server says it is: moved from
// another record or vault, replayed from another version, truncated or
// changed. It is never applied.
type TamperError struct {
	RecordID string
	Version  int64
	What     string // the local object, when this device knows it ("credential cred_…")
	Reason   string
}

func (e *TamperError) Error() string {
	name := "record " + e.RecordID
	if e.What != "" {
		name += " (" + e.What + ")"
	}
	return fmt.Sprintf("refused %s version %d from the server: %s", name, e.Version, e.Reason)
}

// Open opens a record the server sent as recordID at version. Returns a
// *TamperError when it does not open or is not what it claims to be.
func (k *Keys) Open(recordID string, version int64, blob []byte) (*agentkeys.SyncDoc, Stamp, error) {
	bad := func(reason string) (*agentkeys.SyncDoc, Stamp, error) {
		return nil, Stamp{}, &TamperError{RecordID: recordID, Version: version, Reason: reason}
	}
	plain, err := k.seal.Open(blob, recordAAD(k.VaultID, recordID, version))
	if err != nil {
		return bad("it does not decrypt as this record and version (moved, replayed, truncated or changed on the server)")
	}
	defer clear(plain)
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return bad("its content is not a sync record")
	}
	st, err := ParseStamp(env.Stamp)
	if err != nil || st.Device != env.Device {
		return bad("its clock stamp is malformed")
	}
	if k.RecordID(env.Doc.Kind, env.Doc.ID) != recordID {
		return bad("its content belongs to another record")
	}
	return &env.Doc, st, nil
}

// sealLabel and openLabel keep a device's label (its host name) from the
// server.
func (k *Keys) sealLabel(label string) ([]byte, error) {
	return k.seal.Seal([]byte(label), []byte("agentkeys/sync/device/v1\x00"+k.VaultID))
}

func (k *Keys) openLabel(b []byte) string {
	p, err := k.seal.Open(b, []byte("agentkeys/sync/device/v1\x00"+k.VaultID))
	if err != nil {
		return "(unreadable)"
	}
	return strings.ToValidUTF8(string(p), "?")
}

// malformed says what is wrong with a doc that opened (so came from a
// device holding the vault key) but cannot be applied, or "".
func malformed(d *agentkeys.SyncDoc) string {
	okName := func(s string) bool {
		if s == "" || len(s) > 1024 {
			return false
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return false
			}
		}
		return true
	}
	switch d.Kind {
	case agentkeys.SyncKindCredential:
		if !strings.HasPrefix(d.ID, "cred_") {
			return "a credential id must start with cred_"
		}
		if !d.Deleted && (!okName(d.Name) || d.Type == "" || len(d.Secret) == 0) {
			return "a credential needs a name, a type and a secret"
		}
	case agentkeys.SyncKindAgent:
		if !strings.HasPrefix(d.ID, "agent_") {
			return "an agent id must start with agent_"
		}
		if !d.Deleted && !okName(d.Name) {
			return "an agent needs a name"
		}
	case agentkeys.SyncKindGrant:
		a, c, ok := strings.Cut(d.ID, "/")
		if !ok || !strings.HasPrefix(a, "agent_") || !strings.HasPrefix(c, "cred_") {
			return "a grant id must be agent_…/cred_…"
		}
		if !d.Deleted {
			if b, err := hex.DecodeString(d.TokenHash); err != nil || len(b) != sha256.Size {
				return "a grant needs a SHA-256 token hash"
			}
		}
	default:
		return "unknown kind " + strconv.Quote(d.Kind)
	}
	return ""
}
