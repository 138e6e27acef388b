package agentkeys

import (
	"net/http"
	"strings"
)

// BearerToken returns the token of a request's one "Authorization: Bearer
// <token>" header: the one parser of that header for the server's API and
// the proxies. ok is false when the request has no Authorization header.
// Returns EUNAUTHORIZED when it has several, or one that is not a bearer
// token; the message never quotes the header.
func BearerToken(h http.Header) (token string, ok bool, err error) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, Errorf(EUNAUTHORIZED, "send exactly one Authorization header")
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", true, Errorf(EUNAUTHORIZED, "the Authorization header must be \"Bearer <token>\": an API key (ak_ws_…) or a proxy token (pxr_…)")
	}
	return tok, true, nil
}
