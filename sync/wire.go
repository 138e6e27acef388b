package sync

import "time"

// HeaderDevice carries a device's token on every sync call but
// registration, beside the workspace key in Authorization.
const HeaderDevice = "X-Agentkeys-Device"

// DeviceTokenPrefix starts every device token.
const DeviceTokenPrefix = "akd_"

// RegisterRequest adds a device to a synced vault (creating the vault on
// the server when it is the first). Label is the device's name sealed
// under the vault key.
type RegisterRequest struct {
	Label []byte `json:"label"`
}

// RegisterResponse is a new device: its id and its token, returned once.
type RegisterResponse struct {
	DeviceID    string `json:"deviceId"`
	DeviceToken string `json:"deviceToken"`
}

// Device is one device of a synced vault as the server lists it.
type Device struct {
	ID         string     `json:"id"`
	Label      []byte     `json:"label"` // sealed by the client
	CreatedAt  time.Time  `json:"createdAt"`
	LastSeenAt *time.Time `json:"lastSeenAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

// DevicesResponse lists a vault's devices.
type DevicesResponse struct {
	Devices []Device `json:"devices"`
}

// Record is one record on the server: an opaque id, the version the server
// holds, the sequence number of its last change, the sealed blob and the
// device that pushed it.
type Record struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Seq     int64  `json:"seq"`
	Blob    []byte `json:"blob,omitempty"`
	Device  string `json:"device,omitempty"`
}

// PullResponse is one page of the change feed: the records changed after
// the cursor asked for, in sequence order, and Next, the cursor to ask
// with for the next page. More says another page follows.
type PullResponse struct {
	Records []Record `json:"records"`
	Next    int64    `json:"next"`
	More    bool     `json:"more"`
}

// PushRecord is one record a device writes: the version it expects the
// server to hold (0: a new record) and the blob sealed as version
// Expected+1.
type PushRecord struct {
	ID       string `json:"id"`
	Expected int64  `json:"expected"`
	Blob     []byte `json:"blob"`
}

// PushRequest is a batch written all or nothing.
type PushRequest struct {
	Records []PushRecord `json:"records"`
}

// PushResponse answers a push. When every expected version matched, the
// batch is stored and Accepted lists each record's new version and
// sequence number; Before and Head are the vault's sequence numbers before
// and after (a device whose cursor was Before may move it to Head).
// Otherwise nothing is stored and Stale holds the current record of each
// mismatch, for the device to merge before it pushes again.
type PushResponse struct {
	Accepted []Record `json:"accepted,omitempty"`
	Stale    []Record `json:"stale,omitempty"`
	Before   int64    `json:"before"`
	Head     int64    `json:"head"`
}
