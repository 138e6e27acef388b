package agentkeys_test

import (
	"net/http"
	"testing"

	"github.com/agentkeys/agentkeys"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		token   string
		ok      bool
		code    string
	}{
		{"None", nil, "", false, ""},
		{"Bearer", []string{"Bearer ak_ws_abc"}, "ak_ws_abc", true, ""},
		{"CaseAndSpace", []string{"  bearer   pxr_abc  "}, "pxr_abc", true, ""},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, "", true, agentkeys.EUNAUTHORIZED},
		{"NoToken", []string{"Bearer "}, "", true, agentkeys.EUNAUTHORIZED},
		{"Two", []string{"Bearer a", "Bearer b"}, "", true, agentkeys.EUNAUTHORIZED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add("Authorization", v)
			}
			tok, ok, err := agentkeys.BearerToken(h)
			if tok != tc.token || ok != tc.ok || agentkeys.ErrorCode(err) != tc.code {
				t.Fatalf("BearerToken = %q, %v, %v", tok, ok, err)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	if r, err := agentkeys.ParseRole(" Admin "); err != nil || r != agentkeys.RoleAdmin {
		t.Fatalf("ParseRole(Admin) = %q, %v", r, err)
	}
	if _, err := agentkeys.ParseRole("root"); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Fatalf("ParseRole(root) = %v", err)
	}
}
