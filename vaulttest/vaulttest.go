// Package vaulttest is the conformance suite every agentkeys.Vault
// implementation runs: the local vault, the server on SQLite and on
// PostgreSQL, and the REST client talking to a server. It uses only the
// agentkeys.Vault interface, so every implementation gives the same answers
// to the same calls.
//
// Use it from a test of the implementation:
//
//	func TestVault(t *testing.T) {
//		vaulttest.Run(t, func(t *testing.T) agentkeys.Vault { return openFreshVault(t) })
//	}
//
// open must return a new, empty vault for each call (each subtest gets its
// own) and arrange for it to be closed with t.Cleanup. The Proxy tests start
// upstream servers on 127.0.0.1 and allow them as "127.0.0.1:PORT" over
// plain http. A store is tested joined to its proxy (agentkeys.WithProxy),
// as the app wires it.
package vaulttest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"testing"

	"github.com/agentkeys/agentkeys"
)

// Run runs the whole suite. Subtests are named after the Vault method they
// exercise, then the case: TestVault/CreateCredential/ErrDuplicateName.
func Run(t *testing.T, open func(t *testing.T) agentkeys.Vault) {
	s := &suite{open: open}
	t.Run("CreateCredential", s.testCreateCredential)
	t.Run("ListCredentials", s.testListCredentials)
	t.Run("FindCredential", s.testFindCredential)
	t.Run("UpdateCredential", s.testUpdateCredential)
	t.Run("DeleteCredential", s.testDeleteCredential)
	t.Run("CredentialExpiry", s.testCredentialExpiry)
	t.Run("CreateAgent", s.testCreateAgent)
	t.Run("ListAgents", s.testListAgents)
	t.Run("FindAgent", s.testFindAgent)
	t.Run("DeleteAgent", s.testDeleteAgent)
	t.Run("AssignCredential", s.testAssignCredential)
	t.Run("RevokeCredential", s.testRevokeCredential)
	t.Run("Status", s.testStatus)
	t.Run("Proxy", s.testProxy)
	t.Run("ListAudit", s.testListAudit)
	t.Run("NoValuesLeak", s.testNoValuesLeak)
	t.Run("SameRefusals", s.testSameRefusals)
}

type suite struct {
	open func(t *testing.T) agentkeys.Vault
}

func (s *suite) vault(t *testing.T) agentkeys.Vault {
	t.Helper()
	v := s.open(t)
	if v == nil {
		t.Fatal("open returned a nil Vault")
	}
	return v
}

// wantCode fails unless err carries the agentkeys error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := agentkeys.ErrorCode(err); got != code {
		t.Fatalf("error code = %s (%v), want %s", got, err, code)
	}
	var e *agentkeys.Error
	if !errors.As(err, &e) || strings.TrimSpace(e.Message) == "" {
		t.Fatalf("error %v is not an *agentkeys.Error with a message", err)
	}
}

func mustNoErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// apiKey is a valid API_KEY input allowed to hosts.
func apiKey(name, value string, hosts ...string) *agentkeys.CredentialInput {
	if len(hosts) == 0 {
		hosts = []string{"api.example.com"}
	}
	return &agentkeys.CredentialInput{Name: name, Type: agentkeys.APIKey, AllowedHosts: hosts, Secret: agentkeys.Secret{Value: value}}
}

func mustCreateCredential(t *testing.T, v agentkeys.Vault, in *agentkeys.CredentialInput) *agentkeys.Credential {
	t.Helper()
	c, err := v.CreateCredential(t.Context(), in)
	mustNoErr(t, err, "CreateCredential "+in.Name)
	return c
}

func mustCreateAgent(t *testing.T, v agentkeys.Vault, name string) *agentkeys.Agent {
	t.Helper()
	a, err := v.CreateAgent(t.Context(), name)
	mustNoErr(t, err, "CreateAgent "+name)
	return a
}

func mustAssign(t *testing.T, v agentkeys.Vault, agentID, credID string) *agentkeys.Grant {
	t.Helper()
	g, err := v.AssignCredential(t.Context(), agentID, credID)
	mustNoErr(t, err, "AssignCredential")
	return g
}

func credentialNames(t *testing.T, v agentkeys.Vault) []string {
	t.Helper()
	cs, err := v.ListCredentials(t.Context())
	mustNoErr(t, err, "ListCredentials")
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

func agentNames(t *testing.T, v agentkeys.Vault) []string {
	t.Helper()
	as, err := v.ListAgents(t.Context())
	mustNoErr(t, err, "ListAgents")
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return names
}

// wantUnchanged fails unless the vault still lists exactly the given
// credential and agent names: the refused call wrote nothing.
func wantUnchanged(t *testing.T, v agentkeys.Vault, creds, agents []string) {
	t.Helper()
	if got := credentialNames(t, v); strings.Join(got, "\x00") != strings.Join(creds, "\x00") {
		t.Fatalf("credentials after refused call = %q, want %q", got, creds)
	}
	if got := agentNames(t, v); strings.Join(got, "\x00") != strings.Join(agents, "\x00") {
		t.Fatalf("agents after refused call = %q, want %q", got, agents)
	}
}

// wantNoSecret fails if any of the values appears in x marshalled as JSON
// or formatted with %v/%+v.
func wantNoSecret(t *testing.T, what string, x any, values ...string) {
	t.Helper()
	b, err := json.Marshal(x)
	mustNoErr(t, err, "marshal "+what)
	for _, s := range values {
		if s != "" && strings.Contains(string(b), s) {
			t.Fatalf("%s contains a credential value in its JSON: %s", what, b)
		}
	}
}

var bg = context.Background()
