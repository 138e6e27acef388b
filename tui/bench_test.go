package tui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
	tea "github.com/charmbracelet/bubbletea"
)

// seedLarge fills v with 1,000 credentials and 100 agents, each agent
// holding 5 of the credentials.
func seedLarge(tb testing.TB, v agentkeys.Vault) {
	tb.Helper()
	services := agentkeys.PresetNames()
	creds := make([]*agentkeys.Credential, 1000)
	for i := range creds {
		creds[i] = mustCreateCredential(tb, v, fmt.Sprintf("%s key %04d", services[i%len(services)], i),
			agentkeys.APIKey, []string{fmt.Sprintf("api%d.example.com", i%7)}, agentkeys.Secret{Value: fmt.Sprintf("value_%d", i)})
	}
	for i := 0; i < 100; i++ {
		a := mustCreateAgent(tb, v, fmt.Sprintf("agent-%03d", i))
		for j := 0; j < 5; j++ {
			if _, err := v.AssignCredential(context.Background(), a.ID, creds[(i*7+j*131)%len(creds)].ID); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// firstView builds the app, runs its first loads and renders the first
// frame: what a user waits for after typing `agentkeys`.
func firstView(tb testing.TB, v agentkeys.Vault, w, h int) (*driver, string) {
	d := start(tb, newApp(v, tui.Options{}), w, h)
	return d, d.view()
}

// BenchmarkFirstView opens the app over a real local vault holding 1,000
// credentials and 100 agents and renders the first screen. The target is
// under 200 ms; the figure is reported as ms/first-view.
func BenchmarkFirstView(b *testing.B) {
	v := mustOpenVault(b)
	seedLarge(b, v)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		_, view := firstView(b, v, 120, 40)
		if !strings.Contains(view, "1000 credentials") {
			b.Fatalf("first view is not the loaded list:\n%s", view)
		}
	}
	ms := float64(time.Since(start).Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "ms/first-view")
	b.Logf("first view with 1,000 credentials and 100 agents: %.1f ms (target < 200 ms)", ms)
}

// TestLargeVault_ScrollWithoutVaultCalls opens the app on 1,000 credentials
// and 100 agents and shows that moving through the lists, filtering and
// switching between the list screens never calls the vault: rows live in
// memory after the first load.
func TestLargeVault_ScrollWithoutVaultCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1,000-credential vault")
	}
	v := mustOpenVault(t)
	seedLarge(t, v)
	cv := &countingVault{Vault: v}
	began := time.Now()
	d, view := firstView(t, cv, 120, 40)
	t.Logf("first view with 1,000 credentials and 100 agents: %s (includes the two list loads)", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(view, "1000 credentials") {
		t.Fatalf("first view:\n%s", view)
	}
	loads := cv.calls.Load()
	if loads != 2 {
		t.Fatalf("first view made %d vault calls, want 2 (credentials, agents)", loads)
	}
	for i := 0; i < 300; i++ {
		d.keys("j")
	}
	d.mustSee("› ")
	for i := 0; i < 20; i++ {
		d.keys("<pgdown>")
	}
	d.keys("G").mustSee("twilio key 0985")
	d.keys("g<pgdown><pgup>/stripe key 09<enter>").mustSee("of 1000 credentials")
	d.keys("<esc>2")
	for i := 0; i < 150; i++ {
		d.keys("<down>")
	}
	d.keys("G").mustSee("agent-099")
	d.keys("1<end><home>")
	if n := cv.calls.Load() - loads; n != 0 {
		t.Fatalf("scrolling and filtering made %d vault calls, want 0", n)
	}
	// The explicit reload key does call it (once per list).
	d.keys("<ctrl+r>")
	if n := cv.calls.Load() - loads; n != 2 {
		t.Fatalf("ctrl+r made %d vault calls, want 2", n)
	}
	_ = tea.KeyMsg{}
}
