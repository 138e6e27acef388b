package agentkeys

import (
	"context"
	"log/slog"
	"net/textproto"
	"strings"
	"time"
)

// CredentialType says how a credential is injected into a proxied request.
type CredentialType string

// The credential types of the seed's "Credential Types" section.
const (
	APIKey       CredentialType = "API_KEY"       // Authorization: Bearer <value>
	Cookie       CredentialType = "COOKIE"        // Cookie: a=b; c=d
	BasicAuth    CredentialType = "BASIC_AUTH"    // Authorization: Basic base64(user:pass)
	CustomHeader CredentialType = "CUSTOM_HEADER" // one or more headers as given
	QueryParam   CredentialType = "QUERY_PARAM"   // ?param=value on the target URL
	OAuth        CredentialType = "OAUTH"         // Authorization: Bearer <access token>
)

// CredentialTypes lists every type, in the order help texts show them.
var CredentialTypes = []CredentialType{APIKey, Cookie, BasicAuth, CustomHeader, QueryParam, OAuth}

// ParseCredentialType accepts a type name in any case, with '-' for '_'.
// Returns EINVALID naming the valid types otherwise.
func ParseCredentialType(s string) (CredentialType, error) {
	t := CredentialType(strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_")))
	for _, known := range CredentialTypes {
		if t == known {
			return t, nil
		}
	}
	return "", Errorf(EINVALID, "unknown credential type %q: use one of %s", s, CredentialTypeList(", "))
}

// CredentialTypeNames returns the names of CredentialTypes, in order: the
// one list every help text, schema and message is made from.
func CredentialTypeNames() []string {
	names := make([]string, len(CredentialTypes))
	for i, t := range CredentialTypes {
		names[i] = string(t)
	}
	return names
}

// CredentialTypeList is the names for people: joined by ", ", the last one
// by last (", " or " or ").
func CredentialTypeList(last string) string {
	names := CredentialTypeNames()
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// InferCredentialType is the type the given secret fields imply when no
// type is named: CUSTOM_HEADER when headers are given, BASIC_AUTH with a
// username or password, QUERY_PARAM with a parameter name, else API_KEY.
// The CLI and the MCP server both infer with it.
func InferCredentialType(headers, usernameOrPassword, param bool) CredentialType {
	switch {
	case headers:
		return CustomHeader
	case usernameOrPassword:
		return BasicAuth
	case param:
		return QueryParam
	}
	return APIKey
}

// Credential is a credential's metadata. It never carries the value: the
// value lives sealed in the store and is opened only by the proxy.
type Credential struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Type         CredentialType `json:"type"`
	AllowedHosts []string       `json:"allowedHosts"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	LastUsedAt   *time.Time     `json:"lastUsedAt,omitempty"`
	// ExpiresAt, when set, is when the credential stops working: from then
	// on the proxy refuses it (401 CREDENTIAL_EXPIRED) and injects nothing.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// OAuth is the state of an OAUTH credential's connection; nil for other
	// types.
	OAuth *OAuthState `json:"oauth,omitempty"`
	// HeaderNames are the names of the headers a CUSTOM_HEADER credential
	// sends, as given and in order; ParamName is the query parameter a
	// QUERY_PARAM credential sets. They are names only, never a value, and
	// empty for every other type. They live sealed with the value, so only
	// CredentialService.FindCredential (GET /api/v1/credentials/{id}) fills
	// them, opening the value in the store; ListCredentials and what
	// CreateCredential and UpdateCredential return leave them empty, as does
	// a value that no longer decrypts.
	HeaderNames []string `json:"headerNames,omitempty"`
	ParamName   string   `json:"paramName,omitempty"`
}

// HasInjectedNames reports whether credentials of type t send their value
// under names that Credential.HeaderNames or ParamName show: CUSTOM_HEADER
// and QUERY_PARAM.
func (t CredentialType) HasInjectedNames() bool {
	return t == CustomHeader || t == QueryParam
}

// SetInjectedNames sets c.HeaderNames or c.ParamName, as c's type has them,
// from s, the credential's opened value. Only names are copied, never a
// value; other types are left without.
func (c *Credential) SetInjectedNames(s *Secret) {
	c.HeaderNames, c.ParamName = nil, ""
	switch c.Type {
	case CustomHeader:
		c.HeaderNames = make([]string, len(s.Headers))
		for i, h := range s.Headers {
			c.HeaderNames[i] = h.Name
		}
	case QueryParam:
		c.ParamName = s.Param
	}
}

// Expired reports whether the credential has expired at now.
func (c *Credential) Expired(now time.Time) bool {
	return c.ExpiresAt != nil && !now.Before(*c.ExpiresAt)
}

// OAuthState is what a listing shows of an OAuth connection (never a
// token).
type OAuthState struct {
	// Status is OAuthConnected, or OAuthError once the provider refused the
	// refresh token (reconnect with `agentkeys credentials connect`).
	Status string `json:"status"`
	// AccessTokenExpiresAt is when the current access token expires (the
	// proxy refreshes it before then); nil when the provider gave none.
	AccessTokenExpiresAt *time.Time `json:"accessTokenExpiresAt,omitempty"`
}

// OAuth connection statuses.
const (
	OAuthConnected = "connected"
	OAuthError     = "error"
)

// CredentialInput is what creating a credential takes.
type CredentialInput struct {
	Name string
	Type CredentialType
	// AllowedHosts are host patterns (see ParseHostPattern). When empty, the
	// preset named by Service, or else the one recognised from Name, is used.
	AllowedHosts []string
	Service      string
	Secret       Secret
	// ExpiresAt, when set, is when the credential stops working.
	ExpiresAt *time.Time
}

// Normalize validates the input, resolves its allowlist (explicit hosts,
// else a preset) and returns the cleaned name and host patterns. It is what
// every Vault implementation calls before writing, so every front-end gets the
// same answers. Returns EINVALID with a message saying what to fix.
func (in *CredentialInput) Normalize() error {
	name, err := ValidateName("credential", in.Name)
	if err != nil {
		return err
	}
	in.Name = name
	if _, err := ParseCredentialType(string(in.Type)); err != nil {
		return err
	}
	in.Type, _ = ParseCredentialType(string(in.Type))
	hosts, err := ResolveAllowedHosts(in.AllowedHosts, in.Service, in.Name)
	if err != nil {
		return err
	}
	in.AllowedHosts = hosts
	if in.ExpiresAt != nil {
		if err := CheckExpiry(*in.ExpiresAt); err != nil {
			return err
		}
		t := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		in.ExpiresAt = &t
	}
	return in.Secret.Validate(in.Type)
}

// CredentialUpdate changes some of a credential; nil fields stay as they are.
type CredentialUpdate struct {
	Name         *string
	AllowedHosts []string // nil: unchanged; empty non-nil: refused
	Secret       *Secret  // re-sealed under the current key
	// ExpiresAt: nil leaves the expiry as it is; a zero time clears it (the
	// credential never expires); any other time sets it.
	ExpiresAt *time.Time
}

// Normalize validates the name and allowed hosts an update gives and
// normalises them in place (a trimmed name; parsed, deduplicated host
// patterns). The secret, if any, is checked by Validate against the
// credential's type, which only the store knows. Returns EINVALID saying
// what to fix; an empty non-nil AllowedHosts is refused.
func (upd *CredentialUpdate) Normalize() error {
	if upd.Name != nil {
		name, err := ValidateName("credential", *upd.Name)
		if err != nil {
			return err
		}
		upd.Name = &name
	}
	if upd.AllowedHosts != nil {
		if len(upd.AllowedHosts) == 0 {
			return Errorf(EINVALID, "a credential needs at least one allowed host, such as api.example.com or *.example.com")
		}
		hosts, err := ParseAllowedHosts(upd.AllowedHosts)
		if err != nil {
			return err
		}
		upd.AllowedHosts = hosts
	}
	if upd.ExpiresAt != nil && !upd.ExpiresAt.IsZero() {
		if err := CheckExpiry(*upd.ExpiresAt); err != nil {
			return err
		}
		t := upd.ExpiresAt.UTC().Truncate(time.Microsecond)
		upd.ExpiresAt = &t
	}
	return nil
}

// CheckExpiry refuses an expiry a store cannot keep: the zero time (on
// create) and years outside 1970–9999.
func CheckExpiry(t time.Time) error {
	if t.IsZero() || t.Year() < 1970 || t.Year() > 9999 {
		return Errorf(EINVALID, "expiry %s is out of range: give an RFC 3339 time such as 2026-06-01T00:00:00Z", t.Format(time.RFC3339))
	}
	return nil
}

// ErrCredentialExpired is the proxy's refusal of a credential that expired
// at t: 401 CREDENTIAL_EXPIRED, before anything is decrypted or injected.
func ErrCredentialExpired(name string, t time.Time) error {
	return Errorf(ECREDEXPIRED, "credential %q expired at %s: give it a new value and expiry (agentkeys credentials update %s --value … --expires-in 90d)",
		name, t.UTC().Format(time.RFC3339), name)
}

// Header is one header name and value of a CUSTOM_HEADER credential.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Secret is the value of a credential. Which fields are used depends on the
// type: Value for API_KEY, COOKIE, QUERY_PARAM and OAUTH (the access token);
// Username and Password for BASIC_AUTH; Headers for CUSTOM_HEADER; Param (the
// query parameter's name) for QUERY_PARAM.
//
// Secret never prints itself: String, GoString, LogValue and MarshalJSON all
// give "REDACTED". Use EncodeSecret / DecodeSecret to seal it.
type Secret struct {
	Value    string
	Username string
	Password string
	Headers  []Header
	Param    string
	// RefreshToken and ExpiresAt belong to OAUTH credentials.
	RefreshToken string
	ExpiresAt    time.Time
	// RawResponses turns off the proxy's echo redaction for this credential:
	// responses reach the agent byte for byte as the upstream sent them,
	// even when they repeat the value (see RedactedEcho). It is sealed with
	// the value, so it travels with it; giving a new value resets it unless
	// it is set again.
	RawResponses bool
	// OAuthApp names the provider whose app refreshes an OAUTH credential;
	// Scopes and TokenType are what the provider granted.
	OAuthApp  string
	Scopes    []string
	TokenType string
}

// RedactedEcho replaces, in a proxied response, any form of the injected
// credential that the upstream sent back (headers, trailers and body),
// unless the credential has Secret.RawResponses.
const RedactedEcho = "[REDACTED by agentkeys]"

const redacted = "REDACTED"

// String implements fmt.Stringer without revealing the value.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing the value.
func (Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer without revealing the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps a Secret out of any JSON document by accident.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// forbiddenHeaders may not be set by a CUSTOM_HEADER credential: the
// transport owns them, or they are hop-by-hop and would be dropped.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Upgrade": true,
}

// Validate checks that the fields the type needs are present and hold no CR,
// LF or NUL. Returns EINVALID naming the field (never its value).
func (s *Secret) Validate(t CredentialType) error {
	switch t {
	case APIKey, OAuth:
		if err := checkHeaderField("value", s.Value); err != nil {
			return err
		}
	case Cookie:
		if err := checkHeaderField("value", s.Value); err != nil {
			return err
		}
		if !validCookieValue(s.Value) {
			return Errorf(EINVALID, "cookie value must look like \"name=value; name2=value2\" (paste the Cookie header from DevTools)")
		}
	case QueryParam:
		if err := checkField("value", s.Value, true); err != nil {
			return err
		}
		if err := checkField("query parameter name", s.Param, true); err != nil {
			return err
		}
		if err := CheckText("query parameter name", s.Param); err != nil {
			return err
		}
		if strings.ContainsAny(s.Param, "&=#?+% ") {
			return Errorf(EINVALID, "query parameter name %q may not contain & = # ? + %% or spaces", s.Param)
		}
	case BasicAuth:
		if err := checkField("username", s.Username, true); err != nil {
			return err
		}
		if strings.Contains(s.Username, ":") {
			return Errorf(EINVALID, "username may not contain ':' (Basic auth joins user and password with it)")
		}
		if err := checkField("password", s.Password, true); err != nil {
			return err
		}
	case CustomHeader:
		if len(s.Headers) == 0 {
			return Errorf(EINVALID, "a CUSTOM_HEADER credential needs at least one header: give it as \"Name: value\"")
		}
		seen := map[string]bool{}
		for _, h := range s.Headers {
			if !validHeaderName(h.Name) {
				return Errorf(EINVALID, "header name %q is not a valid HTTP header name", h.Name)
			}
			canon := textproto.CanonicalMIMEHeaderKey(h.Name)
			if forbiddenHeaders[canon] || strings.HasPrefix(canon, "Proxy-") {
				return Errorf(EINVALID, "header %s cannot be injected: it belongs to the connection, not the request", canon)
			}
			if seen[canon] {
				return Errorf(EINVALID, "header %s is given twice", canon)
			}
			seen[canon] = true
			if err := checkHeaderField("value of header "+canon, h.Value); err != nil {
				return err
			}
		}
	default:
		_, err := ParseCredentialType(string(t))
		return err
	}
	return nil
}

// validCookieValue reports whether v is one or more "name=value" pairs
// separated by ';' (empty parts, as after a trailing ';', are ignored).
func validCookieValue(v string) bool {
	pairs := 0
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, _, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(name) == "" || !validHeaderName(strings.TrimSpace(name)) {
			return false
		}
		pairs++
	}
	return pairs > 0
}

// checkHeaderField is checkField for a value sent as a header as it is: no
// control character but tab may appear (HTTP would refuse the request).
func checkHeaderField(what, v string) error {
	if err := checkField(what, v, true); err != nil {
		return err
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return Errorf(EINVALID, "%s contains a control character, which an HTTP header cannot carry", what)
		}
	}
	return nil
}

func checkField(what, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return Errorf(EINVALID, "missing %s", what)
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return Errorf(EINVALID, "%s contains a line break or NUL byte, which HTTP headers cannot carry", what)
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// looksLikeID reports whether s has the shape NewID gives: a known prefix,
// '_' and 26 lowercase Crockford base32 characters.
func looksLikeID(s string) bool {
	prefix, rest, ok := strings.Cut(strings.ToLower(s), "_")
	if !ok || len(rest) != 26 || strings.Trim(rest, crockford) != "" {
		return false
	}
	switch prefix {
	case "cred", "agent", "ws", "evt", "req", "user":
		return true
	}
	return false
}

// ParseHeader parses "Name: value" as given on a command line.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return Header{}, Errorf(EINVALID, "header must look like \"Name: value\"")
	}
	return Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)}, nil
}

// ValidateName trims a credential, agent or workspace name and checks it
// is 1–100 characters of visible text (CheckText: no control, bidi or other
// invisible format character, valid UTF-8). what is "credential", "agent"
// or "workspace", for the message.
func ValidateName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Errorf(EINVALID, "missing %s name: give one with --name", what)
	}
	if len([]rune(name)) > 100 {
		return "", Errorf(EINVALID, "%s name is longer than 100 characters", what)
	}
	if err := CheckText(what+" name", name); err != nil {
		return "", err
	}
	// Commands take an id or a name; a name shaped like an id would make
	// that ambiguous.
	if looksLikeID(name) {
		return "", Errorf(EINVALID, "%s name %q looks like an id: choose another name", what, name)
	}
	return name, nil
}

// CredentialService is the part of the Vault that manages credentials.
type CredentialService interface {
	// ListCredentials returns every credential's metadata, ordered by name.
	// It opens no value, so HeaderNames and ParamName are empty (see
	// FindCredential).
	ListCredentials(ctx context.Context) ([]*Credential, error)
	// FindCredential returns the credential whose id is ref, or else whose
	// name equals ref case-insensitively, with the names its value is sent
	// under (Credential.HeaderNames, ParamName), which no other call
	// fills: for a CUSTOM_HEADER or QUERY_PARAM credential the store opens
	// the value in memory to read them, and lets only the names out.
	// Returns ENOTFOUND otherwise.
	FindCredential(ctx context.Context, ref string) (*Credential, error)
	// CreateCredential normalises and validates in (see Normalize), seals the
	// value and stores it. Returns EINVALID for bad input and ECONFLICT when
	// the name is taken (case-insensitively); nothing is written then.
	CreateCredential(ctx context.Context, in *CredentialInput) (*Credential, error)
	// UpdateCredential changes name, allowed hosts or value. Returns
	// ENOTFOUND, EINVALID or ECONFLICT and writes nothing on error.
	UpdateCredential(ctx context.Context, id string, upd *CredentialUpdate) (*Credential, error)
	// DeleteCredential deletes the credential and every grant on it: their
	// proxy tokens stop working on the next request. Returns ENOTFOUND.
	DeleteCredential(ctx context.Context, id string) error
}
