package agentkeys

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each maps to one HTTP status in codeStatus; the same codes are
// used by the CLI (exit codes), the proxy and the REST API ("code" field).
const (
	EINVALID      = "BAD_REQUEST"             // bad input: 400
	EUNAUTHORIZED = "UNAUTHORIZED"            // missing, bad or revoked token: 401
	ECREDEXPIRED  = "CREDENTIAL_EXPIRED"      // the credential's expiresAt has passed: 401
	EFORBIDDEN    = "FORBIDDEN"               // caller may not do this: 403
	EDESTINATION  = "DESTINATION_NOT_ALLOWED" // target host not on the credential's allowlist: 403
	ENOTFOUND     = "NOT_FOUND"               // resource does not exist: 404
	ECONFLICT     = "CONFLICT"                // duplicate name and the like: 409
	ETOOLARGE     = "PAYLOAD_TOO_LARGE"       // request body over the limit: 413
	ERATELIMIT    = "RATE_LIMITED"            // 429
	EPLANLIMIT    = "PLAN_LIMIT_REACHED"      // the plan allows no more credentials or agents: 403
	EUSAGELIMIT   = "USAGE_LIMIT_REACHED"     // the period's requests are used up: 429
	EINTERNAL     = "INTERNAL"                // 500
	EUPSTREAM     = "UPSTREAM_UNREACHABLE"    // upstream refused, reset or failed TLS: 502
	ETIMEOUT      = "UPSTREAM_TIMEOUT"        // upstream did not connect or answer in time: 504
	EUNAVAILABLE  = "UNAVAILABLE"             // vault locked, key missing, service not ready: 503
	ECREDENTIAL   = "CREDENTIAL_ERROR"        // the credential no longer works (OAuth revoked): 401
)

var codeStatus = map[string]int{
	EINVALID:      http.StatusBadRequest,
	EUNAUTHORIZED: http.StatusUnauthorized,
	ECREDEXPIRED:  http.StatusUnauthorized,
	EFORBIDDEN:    http.StatusForbidden,
	EDESTINATION:  http.StatusForbidden,
	ENOTFOUND:     http.StatusNotFound,
	ECONFLICT:     http.StatusConflict,
	ETOOLARGE:     http.StatusRequestEntityTooLarge,
	ERATELIMIT:    http.StatusTooManyRequests,
	EPLANLIMIT:    http.StatusForbidden,
	EUSAGELIMIT:   http.StatusTooManyRequests,
	EINTERNAL:     http.StatusInternalServerError,
	EUPSTREAM:     http.StatusBadGateway,
	ETIMEOUT:      http.StatusGatewayTimeout,
	EUNAVAILABLE:  http.StatusServiceUnavailable,
	ECREDENTIAL:   http.StatusUnauthorized,
}

// Error is an error a person or program can act on: a code from the list
// above and a message that says what happened and what to do next. Messages
// never contain a credential value.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors (their text may carry internals).
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}

// StatusForCode returns the HTTP status for an error code (500 if unknown).
func StatusForCode(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the error code for an HTTP status, the reverse of
// StatusForCode (403 maps to EFORBIDDEN). Used by HTTP clients.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusForbidden:
		return EFORBIDDEN
	case http.StatusUnauthorized:
		return EUNAUTHORIZED // ECREDENTIAL shares 401; its body carries the code
	case http.StatusUnprocessableEntity:
		return EINVALID
	}
	for code, s := range codeStatus {
		if s == status && code != EDESTINATION && code != ECREDEXPIRED && code != EPLANLIMIT && code != EUSAGELIMIT {
			return code
		}
	}
	return EINTERNAL
}
