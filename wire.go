package agentkeys

import (
	"encoding/json"
	"time"
)

// Wire types shared by the server and its clients: one definition each, so
// the two sides cannot drift apart.

// ErrorBody is the JSON of every error answer (the seed's format), from the
// REST API and from the proxy: {"error","code","status"}.
type ErrorBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Status int    `json:"status"`
}

// CredentialRequest is the body of POST /api/v1/credentials: the seed's
// {"name","type","value"} plus the allowlist, the preset and the
// type-specific secret fields.
type CredentialRequest struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Value        string   `json:"value,omitempty"`
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	Service      string   `json:"service,omitempty"`
	Username     string   `json:"username,omitempty"`
	Password     string   `json:"password,omitempty"`
	Headers      []Header `json:"headers,omitempty"`
	Param        string   `json:"param,omitempty"`
	// RawResponses turns off echo redaction for this credential.
	RawResponses bool `json:"rawResponses,omitempty"`
	// ExpiresAt (RFC 3339), when given, is when the credential stops working.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// CredentialPatch is the body of PATCH /api/v1/credentials/{id}: absent
// fields stay; any of the value fields replaces the whole value.
type CredentialPatch struct {
	// Fields in the order encoding/json writes a map's keys (sorted), so a
	// patch reads the same whichever way it was built.
	AllowedHosts *[]string    `json:"allowedHosts,omitempty"` // absent or null: unchanged; []: refused (an allowlist is required)
	ExpiresAt    OptionalTime `json:"expiresAt,omitzero"`     // absent: unchanged; null: cleared; RFC 3339: set
	Headers      *[]Header    `json:"headers,omitempty"`
	Name         *string      `json:"name,omitempty"`
	Param        *string      `json:"param,omitempty"`
	Password     *string      `json:"password,omitempty"`
	Username     *string      `json:"username,omitempty"`
	Value        *string      `json:"value,omitempty"`
}

// OptionalTime is a JSON time that tells an absent member (Set false: the
// zero value, left out by omitzero) from null (Set, Time nil).
type OptionalTime struct {
	Set  bool
	Time *time.Time
}

// IsZero reports whether the member is absent (for omitzero).
func (o OptionalTime) IsZero() bool { return !o.Set }

// MarshalJSON implements json.Marshaler: null or an RFC 3339 time.
func (o OptionalTime) MarshalJSON() ([]byte, error) {
	if o.Time == nil {
		return []byte("null"), nil
	}
	return json.Marshal(o.Time.UTC())
}

// UnmarshalJSON implements json.Unmarshaler. Returns EINVALID for anything
// but null or an RFC 3339 time.
func (o *OptionalTime) UnmarshalJSON(b []byte) error {
	o.Set, o.Time = true, nil
	if string(b) == "null" {
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return Errorf(EINVALID, "expiresAt must be an RFC 3339 time such as 2026-06-01T00:00:00Z, or null to clear it")
	}
	o.Time = &t
	return nil
}
