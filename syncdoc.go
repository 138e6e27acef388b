package agentkeys

import "time"

// Kinds of objects a synced vault carries between devices.
const (
	SyncKindCredential = "credential"
	SyncKindAgent      = "agent"
	SyncKindGrant      = "grant"
)

// SyncDoc is one object of a local vault as the sync package carries it
// between devices: a credential (with its secret in the clear, as the JSON
// the vault seals), an agent, or a grant (the token's hash only), or the
// tombstone of one (Deleted). A SyncDoc only ever leaves a device inside a
// record sealed under the vault sync key; its String never prints Secret.
type SyncDoc struct {
	Kind         string   `json:"k"`
	ID           string   `json:"id"` // credential or agent id; a grant's is AgentID + "/" + CredentialID
	Deleted      bool     `json:"del,omitempty"`
	Name         string   `json:"n,omitempty"`  // credential, agent
	Type         string   `json:"t,omitempty"`  // credential
	AllowedHosts []string `json:"h,omitempty"`  // credential
	Secret       []byte   `json:"s,omitempty"`  // credential: the secret's JSON, in the clear
	TokenHash    string   `json:"th,omitempty"` // grant: HashToken of its pxr_ token
	CreatedAt    int64    `json:"ca,omitempty"` // Unix microseconds
	UpdatedAt    int64    `json:"ua,omitempty"`
	// ExpiresAt is when a credential, or a grant's token, stops working
	// (Unix microseconds; 0: never). A short-lived token (`agentkeys run`,
	// `agents assign --expires-in`) stays short-lived on every device.
	ExpiresAt int64 `json:"ea,omitempty"`
}

// String names the doc without its secret (also when the doc is printed
// as a field of something else).
func (d SyncDoc) String() string { return d.Kind + " " + d.ID }

// GoString keeps the secret out of %#v.
func (d SyncDoc) GoString() string { return "SyncDoc(" + d.String() + ")" }

// SyncPending is a local change not yet pushed: the object's current state
// (Deleted when it is gone), when it changed (Unix milliseconds) and a
// generation that changes with every further local edit, so a push clears
// only what it sent.
type SyncPending struct {
	Doc     SyncDoc
	Changed int64
	Gen     int64
}

// SyncKnown is what a device knows of one record on the server: the
// version it last pushed or applied and that version's clock stamp.
type SyncKnown struct {
	Kind, ID string
	Version  int64
	Stamp    string
}

// SyncSettings is a device's sync configuration. APIKey, DeviceToken and
// VaultKey are kept sealed under the device's root key.
type SyncSettings struct {
	Server      string
	APIKey      string
	VaultID     string
	DeviceID    string
	DeviceToken string
	VaultKey    Key
	Cursor      int64     // the server sequence number pulled up to
	LastSync    time.Time // zero: never
}

// String keeps the API key, device token and vault key out of logs.
func (s SyncSettings) String() string {
	return "SyncSettings(server " + s.Server + ", vault " + s.VaultID + ", device " + s.DeviceID + ")"
}

// GoString keeps the secrets out of %#v.
func (s SyncSettings) GoString() string { return s.String() }

// SyncConflict is one conflict a sync resolved, as `sync status` reports it.
type SyncConflict struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// SyncBatch is what one sync round writes to the local vault, in one
// transaction: remote docs to apply (not marked as local changes), the new
// bookkeeping, local changes to clear (only when their Gen is unchanged),
// conflict copies to create (marked as local changes), conflicts to record,
// and the new cursor (negative: keep).
type SyncBatch struct {
	Apply     []SyncDoc
	Known     []SyncKnown
	Clean     []SyncPending
	Copies    []SyncDoc
	Conflicts []string
	Cursor    int64
	LastSync  time.Time
}
