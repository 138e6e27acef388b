package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/server/store"
)

// Two replicas (two stores on one database) refreshing one expired OAuth
// credential at once, 16 callers each without any in-process single
// flight: the row lease lets exactly one reach the token endpoint, and
// every caller gets the same new pair.
func TestOAuth_TwoReplicasOneRefresh(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			o := testkit.NewOAuthServer(t, time.Hour)
			cfg := b.config(t)
			s1 := mustOpen(t, cfg)
			cfg2 := cfg
			if cfg.DatabaseURL != "" {
				cfg2.DataDir = t.TempDir() // SQLite replicas share the file in DataDir
			}
			s2 := mustOpen(t, cfg2)
			ws := mustWorkspace(t, s1, "Acme")
			w := s1.Workspace(ws.ID)
			if err := w.SaveOAuthApp(ctx, o.App()); err != nil {
				t.Fatal(err)
			}
			app, err := w.OAuthApp(ctx, "custom")
			if err != nil {
				t.Fatal(err)
			}
			if app.ClientSecret.Value != o.ClientSecret {
				t.Fatal("the client secret did not round-trip")
			}
			tok, err := oauthflow.Loopback(ctx, app, oauthflow.LoopbackOptions{Open: o.Approve, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			sec := oauthflow.Secret(tok, "custom", nil, "")
			sec.ExpiresAt = time.Now().Add(-time.Minute)
			_, err = w.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Tracker", Type: agentkeys.OAuth, AllowedHosts: app.AllowedHosts, Secret: *sec})
			if err != nil {
				t.Fatal(err)
			}
			o.RefreshDelay.Store(int64(300 * time.Millisecond))
			var wg sync.WaitGroup
			got := make(chan string, 32)
			// Every caller reads the stale token before any refreshes: a
			// caller that read the fresh one would rightly refresh again
			// (its "stale" token is what the upstream refused). Under load
			// reads can outlast the provider's 300 ms, hence the barrier.
			var read sync.WaitGroup
			read.Add(32)
			for i := range 32 {
				s := s1
				if i%2 == 1 {
					s = s2
				}
				wg.Go(func() {
					r, err := s.Workspace(ws.ID).RouteByName(ctx, "Tracker")
					var stale *agentkeys.Secret
					if err == nil {
						stale, err = s.OpenSecret(ctx, r)
					}
					read.Done()
					if err != nil {
						got <- "error: " + err.Error()
						return
					}
					read.Wait()
					fresh, err := s.RefreshSecret(ctx, r, stale)
					if err != nil {
						got <- "error: " + err.Error()
						return
					}
					got <- fresh.Value
				})
			}
			wg.Wait()
			close(got)
			var first string
			for v := range got {
				if strings.HasPrefix(v, "error: ") || v == sec.Value {
					t.Fatalf("a caller got %q", v)
				}
				if first == "" {
					first = v
				} else if v != first {
					t.Fatal("callers got different access tokens")
				}
			}
			if n := o.RefreshCalls.Load(); n != 1 {
				t.Fatalf("token endpoint refresh calls = %d, want exactly 1", n)
			}
			// invalid_grant marks the credential; every replica then answers
			// ECREDENTIAL without calling the provider again, and the
			// workspace's webhooks get one credential.error saying why.
			h, err := w.CreateWebhook(ctx, store.WebhookInput{URL: "https://hooks.example.com/agentkeys", Events: []string{store.EventCredentialError}})
			if err != nil {
				t.Fatal(err)
			}
			o.Revoked.Store(true)
			r, _ := s2.Workspace(ws.ID).RouteByName(ctx, "Tracker")
			cur, err := s2.OpenSecret(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s2.RefreshSecret(ctx, r, cur)
			wantCode(t, err, agentkeys.ECREDENTIAL)
			_, err = s1.RefreshSecret(ctx, r, cur)
			wantCode(t, err, agentkeys.ECREDENTIAL)
			if n := o.RefreshCalls.Load(); n != 2 {
				t.Fatalf("refresh calls = %d after the revocation, want 2", n)
			}
			claims, err := s1.ClaimDeliveries(ctx, 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(claims) != 1 || claims[0].WebhookID != h.ID {
				t.Fatalf("deliveries after the refused refresh: %+v", claims)
			}
			body := string(claims[0].Body)
			for _, want := range []string{`"event":"credential.error"`, `"reason":"` + store.ReasonOAuthRefreshRefused + `"`, `"credentialId":"` + r.Credential.ID + `"`, `"credentialName":"Tracker"`} {
				if !strings.Contains(body, want) {
					t.Errorf("credential.error lacks %s: %s", want, body)
				}
			}
			for _, leak := range []string{cur.Value, cur.RefreshToken, o.ClientSecret} {
				if leak != "" && strings.Contains(body, leak) {
					t.Error("the credential.error payload carries a token or the client secret")
				}
			}
		})
	}
}
