package localvault_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

func TestAuthorize_WorkspaceKey(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	res := mustInit(t, cfg)
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.CreateCredential(ctx, apiKeyInput("Resend Production", "re_1"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.Authorize(ctx, res.WorkspaceKey, "resend production")
	if err != nil {
		t.Fatal(err)
	}
	if r.Credential.ID != c.ID || r.AgentID != "" || r.WorkspaceID != res.WorkspaceID {
		t.Fatalf("route = %+v", r)
	}
	s, err := v.OpenSecret(ctx, r)
	if err != nil || s.Value != "re_1" {
		t.Fatalf("OpenSecret: %v", err)
	}
	tests := []struct {
		name, token, cred, code string
	}{
		{"ErrNoName", res.WorkspaceKey, "", agentkeys.EINVALID},
		{"ErrUnknownName", res.WorkspaceKey, "nope", agentkeys.ENOTFOUND},
		{"ErrWrongKey", agentkeys.NewWorkspaceKey(), "Resend Production", agentkeys.EUNAUTHORIZED},
		{"ErrEmptyToken", "", "Resend Production", agentkeys.EUNAUTHORIZED},
		{"ErrGarbage", "ak_ws_", "Resend Production", agentkeys.EUNAUTHORIZED},
		{"ErrUnknownProxyToken", agentkeys.NewProxyToken(), "", agentkeys.EUNAUTHORIZED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Authorize(ctx, tc.token, tc.cred)
			wantCode(t, err, tc.code)
		})
	}
}

func TestAuthorize_RouteIsACopy(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	c, _ := v.CreateCredential(ctx, apiKeyInput("cred", "value"))
	a, _ := v.CreateAgent(ctx, "bot")
	g, _ := v.AssignCredential(ctx, a.ID, c.ID)
	r1, err := v.Authorize(ctx, g.ProxyToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if r1.AgentID != a.ID || r1.AgentName != "bot" || r1.Credential.Name != "cred" {
		t.Fatalf("route = %+v", r1)
	}
	r1.Credential.Name = "changed by caller"
	r1.AgentID = "x"
	r2, _ := v.Authorize(ctx, g.ProxyToken, "")
	if r2.Credential.Name != "cred" || r2.AgentID != a.ID {
		t.Fatal("a caller's change to a route reached the cache")
	}
}

func TestAuthorize_ConcurrentWithWrites(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	c, _ := v.CreateCredential(ctx, apiKeyInput("cred", "value"))
	a, _ := v.CreateAgent(ctx, "bot")
	g, _ := v.AssignCredential(ctx, a.ID, c.ID)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var revoking atomic.Bool // from then on a refusal is expected
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := v.Authorize(ctx, g.ProxyToken, "")
				if err != nil {
					if !revoking.Load() || agentkeys.ErrorCode(err) != agentkeys.EUNAUTHORIZED {
						t.Error(err)
					}
					return
				}
				if s, err := v.OpenSecret(ctx, r); err != nil || s.Value != "value" {
					t.Error("OpenSecret", err)
					return
				}
				e := &agentkeys.AuditEvent{AgentID: a.ID, CredentialID: c.ID, Method: "GET"}
				if err := v.BeginAudit(ctx, e); err != nil {
					t.Error(err)
					return
				}
				e.Decision = agentkeys.DecisionAllowed
				v.EndAudit(ctx, e)
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if _, err := v.CreateAgent(ctx, "other-"+time.Now().Format("150405.000000000")); err != nil {
			t.Fatal(err)
		}
	}
	revoking.Store(true)
	if err := v.RevokeCredential(ctx, a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	// From here on every call must fail.
	_, err := v.Authorize(ctx, g.ProxyToken, "")
	close(stop)
	wg.Wait()
	wantCode(t, err, agentkeys.EUNAUTHORIZED)
}

// TestAudit_Journal: BeginAudit returns once the line is in this process's
// journal; ListAudit imports it; Close imports the outcomes and removes the
// journal.
func TestAudit_Journal(t *testing.T) {
	ctx := context.Background()
	v, cfg := mustOpenVault(t)
	const n = 600
	var wg sync.WaitGroup
	events := make([]*agentkeys.AuditEvent, n)
	for i := range events {
		events[i] = &agentkeys.AuditEvent{Method: "GET", Host: "api.example.com", Path: "/p"}
		wg.Add(1)
		go func(e *agentkeys.AuditEvent) {
			defer wg.Done()
			if err := v.BeginAudit(ctx, e); err != nil {
				t.Error(err)
			}
		}(events[i])
	}
	wg.Wait()
	journals := journalFiles(t, cfg.Home)
	if len(journals) != 1 {
		t.Fatalf("journals = %v, want one", journals)
	}
	ids := map[string]bool{}
	for _, e := range events {
		if e.ID == "" || e.Decision != agentkeys.DecisionPending || e.Time.IsZero() || ids[e.ID] {
			t.Fatalf("event after BeginAudit = %+v", e)
		}
		ids[e.ID] = true
	}
	// Same-process reads see every row at once.
	evs, err := v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int64]bool{}
	for _, e := range evs {
		if !ids[e.ID] || e.Seq <= 0 || seqs[e.Seq] || e.Decision != agentkeys.DecisionPending {
			t.Fatalf("listed event %+v", e)
		}
		seqs[e.Seq] = true
	}
	if len(evs) != n {
		t.Fatalf("listed %d events, want %d", len(evs), n)
	}
	for _, e := range events {
		e.Status, e.Decision, e.BytesOut, e.Duration = 201, agentkeys.DecisionAllowed, 42, 1500*time.Microsecond
		v.EndAudit(ctx, e)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	var done int
	var maxSeq int64
	if err := rawDB(t, cfg.Home).QueryRow("SELECT COUNT(*), MAX(seq) FROM audit_events WHERE decision = 'allowed' AND status = 201 AND bytes_out = 42 AND duration_us = 1500").Scan(&done, &maxSeq); err != nil || done != n {
		t.Fatalf("completed rows after Close = %d (%v), want %d", done, err, n)
	}
	if maxSeq != 2*n {
		t.Fatalf("max seq = %d, want %d (one per insert and one per completion)", maxSeq, 2*n)
	}
	if j := journalFiles(t, cfg.Home); len(j) != 0 {
		t.Fatalf("journals left after Close: %v", j)
	}
}

func TestAudit_EndWithoutBegin(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	v.EndAudit(ctx, &agentkeys.AuditEvent{Method: "POST", Host: "h.example.com", Path: "/x", Status: 403, Decision: agentkeys.DecisionDenied, Code: agentkeys.EDESTINATION})
	// EndAudit only queues; poll until the writer has committed it (not a
	// timing assertion: the deadline is generous).
	var evs []*agentkeys.AuditEvent
	for deadline := time.Now().Add(10 * time.Second); len(evs) == 0 && time.Now().Before(deadline); {
		evs, _ = v.ListAudit(ctx, agentkeys.AuditFilter{})
		time.Sleep(2 * time.Millisecond)
	}
	if len(evs) != 1 || evs[0].Decision != agentkeys.DecisionDenied || evs[0].Code != agentkeys.EDESTINATION || evs[0].Method != "POST" {
		t.Fatalf("events = %+v", evs)
	}
}

func TestAudit_LastUsed(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	c, _ := v.CreateCredential(ctx, apiKeyInput("cred", "value"))
	a, _ := v.CreateAgent(ctx, "bot")
	v.AssignCredential(ctx, a.ID, c.ID)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	denied := &agentkeys.AuditEvent{Time: at.Add(time.Hour), AgentID: a.ID, CredentialID: c.ID, Decision: agentkeys.DecisionDenied, Status: 403}
	v.EndAudit(ctx, denied)
	e := &agentkeys.AuditEvent{Time: at, AgentID: a.ID, CredentialID: c.ID, Method: "GET"}
	if err := v.BeginAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Decision, e.Status, e.Duration = agentkeys.DecisionAllowed, 200, time.Second
	v.EndAudit(ctx, e)
	v.Close()
	v2, err := localvault.Open(ctx, configOf(t, v))
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	got, _ := v2.FindCredential(ctx, c.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at.Add(time.Second)) {
		t.Fatalf("credential lastUsedAt = %v, want %v (the denied request does not count)", got.LastUsedAt, at.Add(time.Second))
	}
	ag, _ := v2.FindAgent(ctx, a.ID)
	if lu := ag.Credentials[0].LastUsedAt; lu == nil || !lu.Equal(at.Add(time.Second)) {
		t.Fatalf("grant lastUsedAt = %v", lu)
	}
}

func TestAudit_RequestsThisMonth(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	cfg := testConfig(t)
	cfg.Now = func() time.Time { return now }
	mustInit(t, cfg)
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, e := range []*agentkeys.AuditEvent{
		{Time: now.Add(-time.Hour), Decision: agentkeys.DecisionAllowed},
		{Time: now.Add(-2 * time.Hour), Decision: agentkeys.DecisionError},
		{Time: now, Decision: agentkeys.DecisionPending},
		{Time: now, Decision: agentkeys.DecisionDenied},                             // not forwarded
		{Time: time.Date(2026, 4, 30, 23, 59, 0, 0, time.UTC), Decision: "allowed"}, // last month
	} {
		if err := v.BeginAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	st, err := v.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Usage.RequestsThisMonth != 3 {
		t.Fatalf("requests this month = %d, want 3", st.Usage.RequestsThisMonth)
	}
}

func TestAudit_ListErrors(t *testing.T) {
	v, _ := mustOpenVault(t)
	for _, f := range []agentkeys.AuditFilter{{Limit: -1}, {BeforeSeq: -1}, {AfterSeq: -5}} {
		_, err := v.ListAudit(context.Background(), f)
		wantCode(t, err, agentkeys.EINVALID)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	v, _ := mustOpenVault(t)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	wantCode(t, v.BeginAudit(ctx, &agentkeys.AuditEvent{}), agentkeys.EUNAVAILABLE)
	v.EndAudit(ctx, &agentkeys.AuditEvent{}) // dropped, no panic
	_, err := v.ListCredentials(ctx)
	wantCode(t, err, agentkeys.EUNAVAILABLE)
	_, err = v.Authorize(ctx, agentkeys.NewProxyToken(), "")
	wantCode(t, err, agentkeys.EUNAVAILABLE)
}

// TestRevokedTokens_Retention: Authorize names the agent and credential of
// a revoked token for RevokedTokenRetention; the next revocation after
// that forgets it (the refusal is then a plain EUNAUTHORIZED), while a
// token revoked since is still named.
func TestRevokedTokens_Retention(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro())
	cfg := testConfig(t)
	cfg.Now = func() time.Time { return time.UnixMicro(now.Load()) }
	mustInit(t, cfg)
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.CreateCredential(ctx, apiKeyInput("Resend Production", "re_1"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.CreateAgent(ctx, "mailer")
	if err != nil {
		t.Fatal(err)
	}
	revoked := func() string {
		t.Helper()
		g, err := v.AssignCredential(ctx, a.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.RevokeCredential(ctx, a.ID, c.ID); err != nil {
			t.Fatal(err)
		}
		return g.ProxyToken
	}
	named := func(token string) bool {
		t.Helper()
		_, err := v.Authorize(ctx, token, "")
		wantCode(t, err, agentkeys.EUNAUTHORIZED)
		var rt *agentkeys.RevokedToken
		if errors.As(err, &rt) {
			if rt.AgentName != "mailer" || rt.CredentialName != "Resend Production" {
				t.Fatalf("revoked token named %+v", rt)
			}
			return true
		}
		return false
	}

	old := revoked()
	if !named(old) {
		t.Fatal("a token revoked just now is not named")
	}
	now.Add((localvault.RevokedTokenRetention - time.Hour).Microseconds())
	recent := revoked()
	if !named(old) || !named(recent) {
		t.Fatal("a token revoked within the retention is not named")
	}
	now.Add((2 * time.Hour).Microseconds())
	latest := revoked() // prunes what is older than the retention
	if named(old) {
		t.Fatal("a token revoked longer ago than the retention is still named")
	}
	if !named(recent) || !named(latest) {
		t.Fatal("pruning forgot a token revoked within the retention")
	}
}
