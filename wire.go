package agentkeys

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
}

// CredentialPatch is the body of PATCH /api/v1/credentials/{id}: absent
// fields stay; any of the value fields replaces the whole value.
type CredentialPatch struct {
	// Fields in the order encoding/json writes a map's keys (sorted), so a
	// patch reads the same whichever way it was built.
	AllowedHosts *[]string `json:"allowedHosts,omitempty"` // absent or null: unchanged; []: refused (an allowlist is required)
	Headers      *[]Header `json:"headers,omitempty"`
	Name         *string   `json:"name,omitempty"`
	Param        *string   `json:"param,omitempty"`
	Password     *string   `json:"password,omitempty"`
	Username     *string   `json:"username,omitempty"`
	Value        *string   `json:"value,omitempty"`
}
