package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestAPI_StrictJSON: a member given twice (anywhere in the body) and a
// field name that only matches when case is ignored are refused with 400
// and a message naming the field; nothing is written.
func TestAPI_StrictJSON(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, key := s.signup("Acme")
	ag := s.createAgent(key, "bot")
	bad := []struct{ path, body, want string }{
		{"/api/v1/credentials", `{"name":"a","name":"b","type":"API_KEY","value":"v","allowedHosts":["api.example.com"]}`, `"name" is given twice`},
		{"/api/v1/credentials", `{"name":"a","type":"API_KEY","value":"v","value":"w","allowedHosts":["api.example.com"]}`, `"value" is given twice`},
		{"/api/v1/credentials", `{"name":"a","type":"CUSTOM_HEADER","headers":[{"name":"x-k","value":"1","value":"2"}],"allowedHosts":["api.example.com"]}`, `"headers[].value" is given twice`},
		{"/api/v1/credentials", `{"Name":"a","type":"API_KEY","value":"v","allowedHosts":["api.example.com"]}`, `did you mean "name"`},
		{"/api/v1/credentials", `{"name":"a","TYPE":"API_KEY","value":"v","allowedHosts":["api.example.com"]}`, `did you mean "type"`},
		{"/api/v1/credentials", `{"name":"a","type":"API_KEY","value":"v","AllowedHosts":["api.example.com"]}`, `did you mean "allowedHosts"`},
		{"/api/v1/credentials", `{"name":"a","type":"CUSTOM_HEADER","headers":[{"Name":"x-k","value":"1"}],"allowedHosts":["api.example.com"]}`, `did you mean "headers[].name"`},
		{"/api/v1/credentials", `{"name":"a","type":"API_KEY","value":"v","allowedHosts":["api.example.com"],"rawresponses":true}`, `did you mean "rawResponses"`},
		{"/api/v1/agents", `{"name":"x","name":"y"}`, `"name" is given twice`},
		{"/api/v1/agents", `{"NAME":"x"}`, `did you mean "name"`},
		{"/api/v1/agents/" + ag.ID + "/credentials", `{"credentialID":"x"}`, `did you mean "credentialId"`},
		{"/api/v1/signup", `{"workspace":"x","workspace":"y","email":"a@example.com"}`, `is given twice`},
	}
	before := s.do("GET", "/api/v1/credentials", key, nil).body
	for _, tt := range bad {
		a := s.do("POST", tt.path, key, tt.body)
		a.want(t, http.StatusBadRequest, agentkeys.EINVALID)
		if !strings.Contains(string(a.body), strings.ReplaceAll(tt.want, `"`, `\"`)) {
			t.Errorf("%s %s: message %s, want it to say %s", tt.path, tt.body, a.body, tt.want)
		}
	}
	if after := s.do("GET", "/api/v1/credentials", key, nil).body; string(after) != string(before) {
		t.Fatalf("refused bodies wrote: %s", after)
	}
	// The exact spelling still works.
	s.do("POST", "/api/v1/agents", key, `{"name":"ok-agent"}`).want(t, http.StatusCreated, "")
}

// TestAPI_AssignByName: POST /agents/{id}/credentials takes the
// credential's id or name, and the agent's id or name, as the CLI does.
func TestAPI_AssignByName(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, key := s.signup("Acme")
	c := s.createCredential(key, "Resend Prod", "re_x", "api.resend.com")
	ag := s.createAgent(key, "mailer")
	for _, tt := range []struct{ agent, cred string }{{ag.ID, "resend prod"}, {"mailer", c.ID}, {"Mailer", "Resend Prod"}} {
		a := s.do("POST", "/api/v1/agents/"+tt.agent+"/credentials", key, map[string]any{"credentialId": tt.cred})
		a.want(t, http.StatusCreated, "")
		var g agentkeys.Grant
		a.decode(t, &g)
		if g.CredentialID != c.ID || g.AgentID != ag.ID || !strings.HasPrefix(g.ProxyToken, "pxr_") {
			t.Fatalf("grant = %+v", g)
		}
	}
	s.do("POST", "/api/v1/agents/"+ag.ID+"/credentials", key, map[string]any{"credentialId": "nope"}).want(t, http.StatusNotFound, agentkeys.ENOTFOUND)
	s.do("POST", "/api/v1/agents/nobody/credentials", key, map[string]any{"credentialId": c.ID}).want(t, http.StatusNotFound, agentkeys.ENOTFOUND)
}

// TestAPI_RefusesTerminalControlsInNames: the REST API refuses names with
// control, bidi or invisible characters, like every other writer.
func TestAPI_RefusesTerminalControlsInNames(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, key := s.signup("Acme")
	for _, name := range []string{"a\u001b]0;x\u0007", "a\u009b2J", "a\u202eb", "a\u2066b", "a\u200bb"} {
		s.do("POST", "/api/v1/credentials", key, map[string]any{"name": name, "type": "API_KEY", "value": "v", "allowedHosts": []string{"api.example.com"}}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
		s.do("POST", "/api/v1/agents", key, map[string]any{"name": name}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
	}
	s.do("POST", "/api/v1/signup", "", map[string]any{"workspace": "Acme\u202e", "email": "b@example.com"}).want(t, http.StatusBadRequest, agentkeys.EINVALID)
}

// TestHostedProxy_EchoRedactionAndRawResponses: the hosted proxy redacts an
// upstream's echo of the injected value; a credential created over REST
// with rawResponses gets it byte for byte.
func TestHostedProxy_EchoRedactionAndRawResponses(t *testing.T) {
	s := newTestServer(t, serverOpts{allowLoopback: true})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		io.WriteString(w, "you sent "+r.Header.Get("Authorization"))
	}))
	defer up.Close()
	_, key := s.signup("Acme")
	host := strings.TrimPrefix(up.URL, "http://")
	ag := s.createAgent(key, "bot")
	for _, raw := range []bool{false, true} {
		a := s.do("POST", "/api/v1/credentials", key, map[string]any{"name": fmt.Sprint("c", raw), "type": "API_KEY", "value": "sk-hosted-CANARY-1", "allowedHosts": []string{host}, "rawResponses": raw})
		a.want(t, http.StatusCreated, "")
		var c agentkeys.Credential
		a.decode(t, &c)
		g := s.assign(key, ag.ID, c.ID)
		pa := proxyGet(t, s.url, g.ProxyToken, "", up.URL+"/")
		pa.want(t, 200, "")
		want := "Bearer " + agentkeys.RedactedEcho
		if raw {
			want = "Bearer sk-hosted-CANARY-1"
		}
		if string(pa.body) != "you sent "+want || pa.header.Get("X-Echo") != want {
			t.Fatalf("rawResponses=%v: body %q, X-Echo %q", raw, pa.body, pa.header.Get("X-Echo"))
		}
	}
}
