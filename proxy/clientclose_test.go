package proxy_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestProxy_AgentStopsReading: an agent that takes part of a long answer and
// hangs up (over HTTP, or a Do caller closing the body, as the MCP server
// does at its size limit) is not an upstream failure: the row says allowed,
// with the upstream's status, no error code, and the bytes the agent took.
func TestProxy_AgentStopsReading(t *testing.T) {
	const size = 64 << 20
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "67108864")
		chunk := []byte(strings.Repeat("x", 32<<10))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "v"}), "a")
	p := newTestProxy(t, b, proxy.Config{})

	check := func(t *testing.T, id string) {
		t.Helper()
		var row agentkeys.AuditEvent
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if row = b.rowByRequestID(t, id); row.Decision != agentkeys.DecisionPending {
				break
			}
		}
		if row.Decision != agentkeys.DecisionAllowed || row.Status != http.StatusOK || row.Code != "" || row.BytesOut <= 0 || row.BytesOut >= size {
			t.Errorf("audit row: decision %s status %d code %q bytesOut %d", row.Decision, row.Status, row.Code, row.BytesOut)
		}
	}
	t.Run("Do", func(t *testing.T) {
		resp, err := p.H.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, URL: "http://" + up.hostPort() + "/big"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		check(t, resp.Header.Get(agentkeys.HeaderRequestID))
	})
	t.Run("HTTP", func(t *testing.T) {
		resp := p.do(t, call{Token: tok, Target: "http://" + up.hostPort() + "/big"})
		if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // undrained: the client closes the connection
		check(t, resp.Header.Get(agentkeys.HeaderRequestID))
	})
}
