package server_test

import (
	"testing"

	"github.com/agentkeys/agentkeys/internal/version"
)

// TestHealthz_Version: /healthz answers with the server's version.
func TestHealthz_Version(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	a := s.do("GET", "/healthz", "", nil)
	a.want(t, 200, "")
	var body struct{ Status, Version string }
	a.decode(t, &body)
	if body.Status != "ok" || body.Version == "" || body.Version != version.Version() {
		t.Fatalf("/healthz = %s, want status ok and version %q", a.body, version.Version())
	}
}
