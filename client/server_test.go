package client_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/vaulttest"
)

// liveServer is `agentkeys serve` on a fresh SQLite store behind httptest,
// with loopback targets allowed (the suite's upstreams are on 127.0.0.1),
// and a workspace signed up through the client.
type liveServer struct {
	url string
	key string
}

func newLiveServer(t *testing.T) *liveServer {
	t.Helper()
	k, err := agentkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir(), ServerKey: k})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true})
	if err != nil {
		st.Close()
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	res, err := client.Signup(t.Context(), client.Config{BaseURL: hs.URL},
		client.SignupInput{Email: "owner@example.com", Password: "correct horse battery", Workspace: "Acme"})
	if err != nil {
		t.Fatalf("Signup: %v", err)
	}
	return &liveServer{url: hs.URL, key: res.APIKey}
}

// TestVault_Server runs the conformance suite: client → the real server
// (server.New on SQLite) → its store and hosted proxy.
func TestVault_Server(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) agentkeys.Vault {
		s := newLiveServer(t)
		return mustClient(t, s.url, s.key)
	})
}

// TestServer_StatusAndSignup checks the remote fields of Status and the
// sign-up refusals a real server gives.
func TestServer_StatusAndSignup(t *testing.T) {
	s := newLiveServer(t)
	c := mustClient(t, s.url, s.key)
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != agentkeys.ModeRemote || st.Location != s.url || st.Name != "Acme" || !strings.HasPrefix(st.ID, "ws_") || st.KeySource != "" || st.Plan == "" {
		t.Fatalf("status = %+v", st)
	}
	// Another workspace's key sees nothing of this one.
	other, err := client.Signup(t.Context(), client.Config{BaseURL: s.url}, client.SignupInput{Email: "other@example.com", Password: "correct horse battery", Workspace: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAgent(t.Context(), "bot"); err != nil {
		t.Fatal(err)
	}
	oc := mustClient(t, s.url, other.APIKey)
	if as, err := oc.ListAgents(t.Context()); err != nil || len(as) != 0 {
		t.Fatalf("other workspace lists %v, %v", as, err)
	}
	if _, err := oc.FindAgent(t.Context(), "bot"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		t.Fatalf("other workspace found the agent: %v", err)
	}
	// A wrong key is UNAUTHORIZED, and says nothing of the key.
	bad := agentkeys.NewWorkspaceKey()
	_, err = mustClient(t, s.url, bad).Status(t.Context())
	if agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED || strings.Contains(err.Error(), bad) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   client.SignupInput
		code string
	}{
		{"ErrTakenEmail", client.SignupInput{Email: "other@example.com", Password: "correct horse battery", Workspace: "X"}, agentkeys.ECONFLICT},
		{"ErrShortPassword", client.SignupInput{Email: "new@example.com", Password: "short", Workspace: "X"}, agentkeys.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Signup(t.Context(), client.Config{BaseURL: s.url}, tc.in)
			if agentkeys.ErrorCode(err) != tc.code || strings.Contains(err.Error(), tc.in.Password) {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
		})
	}
}
