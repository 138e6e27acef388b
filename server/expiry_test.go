package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestCredentialExpiry_REST: expiresAt is set on POST, changed and cleared
// on PATCH (null), refused when malformed; the hosted proxy answers an
// expired credential 401 CREDENTIAL_EXPIRED without reaching the target.
func TestCredentialExpiry_REST(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			s := newTestServer(t, serverOpts{databaseURL: db.url(t), allowLoopback: true})
			up := newUpstream(t)
			_, key := s.signup("Expiry")
			past := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
			a := s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "old", "type": "API_KEY", "value": "old-canary",
				"allowedHosts": []string{up.host()}, "expiresAt": past})
			a.want(t, http.StatusCreated, "")
			var c agentkeys.Credential
			a.decode(t, &c)
			if c.ExpiresAt == nil || !c.ExpiresAt.Equal(past) {
				t.Fatalf("created %s", a.body)
			}
			proxyGet(t, s.url, key, "old", up.URL+"/x").want(t, http.StatusUnauthorized, agentkeys.ECREDEXPIRED)
			ag := s.createAgent(key, "bot")
			g := s.assign(key, ag.ID, c.ID)
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/y").want(t, http.StatusUnauthorized, agentkeys.ECREDEXPIRED)
			if n := len(up.received()); n != 0 {
				t.Fatalf("the target got %d requests", n)
			}

			s.do("PATCH", "/api/v1/credentials/"+c.ID, key, map[string]any{"expiresAt": "soon"}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
			s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "bad", "type": "API_KEY", "value": "v",
				"allowedHosts": []string{up.host()}, "expiresAt": "June"}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
			a = s.do("PATCH", "/api/v1/credentials/"+c.ID, key, map[string]any{"expiresAt": nil})
			a.want(t, http.StatusOK, "")
			if strings.Contains(string(a.body), "expiresAt") {
				t.Fatalf("cleared expiry still shown: %s", a.body)
			}
			proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/z").want(t, http.StatusOK, "")
			var list struct{ Credentials []agentkeys.Credential }
			s.do("GET", "/api/v1/credentials", key, nil).decode(t, &list)
			if len(list.Credentials) != 1 || list.Credentials[0].ExpiresAt != nil {
				t.Fatalf("list = %+v", list)
			}
		})
	}
}
