package store_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestRevocation_UnderLoad: while 32 requests at a time use a cached route
// on one store (replica), another store revokes the grant. No request that
// began after the revocation returned is authorised — the revocation
// settles for longer than the poller's reads are trusted, and a request
// without a recent read waits for one that began after it arrived — and the
// cached route keeps working until then. (It fails with thousands of late
// requests when the revocation does not settle.)
func TestRevocation_UnderLoad(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s1, s2 := mustOpen(t, cfg), mustOpen(t, cfg)
			ws := mustWorkspace(t, s1, "Acme")
			w := s1.Workspace(ws.ID)
			c, err := w.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "c", Type: agentkeys.APIKey,
				Secret: agentkeys.Secret{Value: "v"}, AllowedHosts: []string{"api.example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := w.CreateAgent(t.Context(), "bot")
			g, err := w.AssignCredential(t.Context(), a.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var revoked atomic.Bool
			var before, after, late atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < 32; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						wasRevoked := revoked.Load()
						_, err := s2.Authorize(t.Context(), g.ProxyToken, "")
						switch {
						case err == nil && wasRevoked:
							late.Add(1)
						case err == nil:
							before.Add(1)
						case agentkeys.ErrorCode(err) == agentkeys.EUNAUTHORIZED && wasRevoked:
							after.Add(1)
						case agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED:
							t.Error(err)
							return
						}
					}
				}()
			}
			// Under load first (however slow the machine: a count, not a
			// time), then revoke, then go on until refusals are seen.
			waitFor := func(n *atomic.Int64, want int64) {
				for deadline := time.Now().Add(20 * time.Second); n.Load() < want && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
			}
			waitFor(&before, 32)
			if err := w.RevokeCredential(t.Context(), a.ID, c.ID); err != nil {
				t.Fatal(err)
			}
			revoked.Store(true)
			time.Sleep(50 * time.Millisecond)
			waitFor(&after, 32)
			close(stop)
			wg.Wait()
			if late.Load() != 0 {
				t.Fatalf("%d requests that began after the revocation returned were authorised", late.Load())
			}
			if before.Load() < 32 || after.Load() < 1 {
				t.Fatalf("authorised before: %d, refused after: %d; want both under load", before.Load(), after.Load())
			}
		})
	}
}
