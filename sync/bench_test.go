package sync_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/sync"
)

// BenchmarkSync_1000Credentials: `agentkeys sync` of a vault of 1,000
// credentials to an empty server (SQLite), and into a new device. Run with
// -benchtime=1x; it prints both durations and the requests each took.
//
//	go test ./sync/ -run '^$' -bench Sync_1000 -benchtime=1x
func BenchmarkSync_1000Credentials(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := newServerTB(b)
		a := newVaultTB(b)
		for j := 0; j < 1000; j++ {
			if _, err := a.CreateCredential(b.Context(), &agentkeys.CredentialInput{Name: fmt.Sprintf("cred-%04d", j), Type: agentkeys.APIKey,
				AllowedHosts: []string{fmt.Sprintf("api%d.example.com", j)}, Secret: agentkeys.Secret{Value: fmt.Sprintf("sk-%064d", j)}}); err != nil {
				b.Fatal(err)
			}
		}
		phrase, err := sync.Enable(b.Context(), a, srv.opts("a"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := sync.Run(b.Context(), a, sync.Options{})
		if err != nil || res.Pushed != 1000 {
			b.Fatalf("push: %v %+v", err, res)
		}
		push, pushReq := time.Since(start), res.Requests

		c := newVaultTB(b)
		if err := sync.Join(b.Context(), c, srv.opts("c"), phrase); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		res, err = sync.Run(b.Context(), c, sync.Options{})
		if err != nil || res.Applied != 1000 {
			b.Fatalf("pull: %v %+v", err, res)
		}
		pull, pullReq := time.Since(start), res.Requests
		b.StopTimer()
		start = time.Now()
		res, err = sync.Run(b.Context(), c, sync.Options{})
		if err != nil {
			b.Fatal(err)
		}
		idle := time.Since(start)
		b.ReportMetric(push.Seconds(), "push-s")
		b.ReportMetric(pull.Seconds(), "pull-s")
		b.Logf("1,000 credentials: push to an empty server %v (%d requests), into a new device %v (%d requests), no-change sync %v (%d request)",
			push.Round(time.Millisecond), pushReq, pull.Round(time.Millisecond), pullReq, idle.Round(time.Millisecond), res.Requests)
		b.StartTimer()
	}
}
