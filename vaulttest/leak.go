package vaulttest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// testNoValuesLeak stores a unique canary in a credential of every type and
// checks that no listing, lookup, status, audit row or error message ever
// carries it (raw, or as the upstream would see it encoded).
func (s *suite) testNoValuesLeak(t *testing.T) {
	b := make([]byte, 12)
	rand.Read(b)
	canary := "canary" + hex.EncodeToString(b)
	leaks := []string{canary, url.QueryEscape(canary), hex.EncodeToString([]byte(canary))}

	v := s.vault(t)
	up := newUpstream(t)
	h := []string{up.host}
	inputs := []*agentkeys.CredentialInput{
		{Name: "c-api", Type: agentkeys.APIKey, AllowedHosts: h, Secret: agentkeys.Secret{Value: canary}},
		{Name: "c-oauth", Type: agentkeys.OAuth, AllowedHosts: h, Secret: agentkeys.Secret{Value: canary, RefreshToken: canary + "r"}},
		{Name: "c-basic", Type: agentkeys.BasicAuth, AllowedHosts: h, Secret: agentkeys.Secret{Username: "u" + canary, Password: canary}},
		{Name: "c-cookie", Type: agentkeys.Cookie, AllowedHosts: h, Secret: agentkeys.Secret{Value: "s=" + canary}},
		{Name: "c-header", Type: agentkeys.CustomHeader, AllowedHosts: h, Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-key", Value: canary}}}},
		{Name: "c-query", Type: agentkeys.QueryParam, AllowedHosts: h, Secret: agentkeys.Secret{Param: "key", Value: canary}},
	}
	a := mustCreateAgent(t, v, "bot")
	var results []any
	for _, in := range inputs {
		c := mustCreateCredential(t, v, in)
		results = append(results, c)
		g := mustAssign(t, v, a.ID, c.ID)
		mustSend(t, v, &agentkeys.ProxyRequest{Token: g.ProxyToken, URL: up.url("/x?a=b")})
		// Denied, too.
		_, _, err := send(t, v, &agentkeys.ProxyRequest{Token: g.ProxyToken, URL: "https://evil.example/"})
		checkErrNoLeak(t, err, leaks)
	}
	// Refusals that had the canary in their input.
	for _, in := range []*agentkeys.CredentialInput{
		{Name: "c-api", Type: agentkeys.APIKey, AllowedHosts: h, Secret: agentkeys.Secret{Value: canary}},                 // duplicate
		{Name: "bad", Type: agentkeys.APIKey, AllowedHosts: h, Secret: agentkeys.Secret{Value: canary + "\n"}},            // newline
		{Name: "bad", Type: "NOPE", AllowedHosts: h, Secret: agentkeys.Secret{Value: canary}},                             // type
		{Name: "bad", Type: agentkeys.APIKey, AllowedHosts: []string{"*"}, Secret: agentkeys.Secret{Value: canary}},       // host
		{Name: "bad", Type: agentkeys.QueryParam, AllowedHosts: h, Secret: agentkeys.Secret{Param: "a&b", Value: canary}}, // param
	} {
		_, err := v.CreateCredential(t.Context(), in)
		if err == nil {
			t.Fatalf("CreateCredential %q accepted bad input", in.Name)
		}
		checkErrNoLeak(t, err, leaks)
	}
	cs, err := v.ListCredentials(t.Context())
	mustNoErr(t, err, "ListCredentials")
	results = append(results, cs)
	for _, in := range inputs {
		c, err := v.FindCredential(t.Context(), in.Name)
		mustNoErr(t, err, "FindCredential")
		results = append(results, c)
		// The lookup opened the value for its names: they are there, the
		// value is not (checked below).
		want := map[string]string{"c-header": "x-key", "c-query": "key"}[in.Name]
		if got := strings.Join(c.HeaderNames, ",") + c.ParamName; got != want {
			t.Errorf("FindCredential %s names %q, want %q", in.Name, got, want)
		}
	}
	as, err := v.ListAgents(t.Context())
	mustNoErr(t, err, "ListAgents")
	st, err := v.Status(t.Context())
	mustNoErr(t, err, "Status")
	results = append(results, as, st)
	waitFor(t, "audit events to complete", func() bool {
		evs := listAudit(t, v, agentkeys.AuditFilter{Decision: agentkeys.DecisionPending})
		return len(evs) == 0
	})
	results = append(results, listAudit(t, v, agentkeys.AuditFilter{Limit: 1000}))
	for _, r := range results {
		wantNoSecret(t, "result", r, leaks...)
	}
	// The upstream did get it: the canary is real.
	found := false
	for _, r := range up.requests() {
		if strings.Contains(r.Header.Get("Authorization")+r.Header.Get("X-Key")+r.Query.Get("key")+r.Header.Get("Cookie"), canary) {
			found = true
		}
	}
	if !found {
		t.Fatal("the upstream never received the canary: the test is not testing anything")
	}
}

func checkErrNoLeak(t *testing.T, err error, leaks []string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, l := range leaks {
		if strings.Contains(err.Error(), l) || strings.Contains(agentkeys.ErrorMessage(err), l) {
			t.Fatalf("error message carries a credential value: %v", err)
		}
	}
}
