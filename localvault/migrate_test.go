package localvault_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// TestOpen_UpgradesSchema1: a vault of schema 1 with audit rows is
// upgraded by Open (audit_events keyed by seq): every row is kept with its
// id, seq and fields, the filters and Status answer as before, and new rows
// get later seqs.
func TestOpen_UpgradesSchema1(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	if _, err := localvault.InitAtSchema(ctx, cfg, 1); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, cfg.Home)
	var schema int
	if err := db.QueryRow("PRAGMA user_version").Scan(&schema); err != nil || schema != 1 {
		t.Fatalf("InitAtSchema(1): schema %d (%v)", schema, err)
	}
	now := time.Now().UTC()
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC) // Status counts from here
	lastMonth := thisMonth.Add(-time.Hour)
	type row struct {
		id      string
		seq     int64
		at      time.Time
		agent   string
		decided string
		status  int
	}
	old := []row{ // seqs with gaps, as completions leave them
		{"evt_old1", 3, lastMonth, "agent_a", agentkeys.DecisionAllowed, 200},
		{"evt_old2", 7, thisMonth, "agent_b", agentkeys.DecisionDenied, 403},
		{"evt_old3", 8, thisMonth, "agent_a", agentkeys.DecisionAllowed, 201},
		{"evt_old4", 12, thisMonth.Add(time.Microsecond), "agent_a", agentkeys.DecisionPending, 0},
	}
	for _, r := range old {
		if _, err := db.Exec(`INSERT INTO audit_events (id, seq, time, request_id, workspace_id, agent_id, agent_name, credential_id,
			credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out)
			VALUES (?, ?, ?, 'req_x', 'ws_x', ?, 'name', 'cred_x', 'cred', 'GET', 'api.example.com', '/p', ?, ?, '', 1500, 1, 2)`,
			r.id, r.seq, r.at.UnixMicro(), r.agent, r.status, r.decided); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	db = rawDB(t, cfg.Home)
	if err := db.QueryRow("PRAGMA user_version").Scan(&schema); err != nil || schema != localvault.SchemaVersion() || schema < 2 {
		t.Fatalf("after Open: schema %d (%v), want %d", schema, err, localvault.SchemaVersion())
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	var pk int
	if err := db.QueryRow("SELECT pk FROM pragma_table_info('audit_events') WHERE name = 'seq'").Scan(&pk); err != nil || pk != 1 {
		t.Errorf("seq is not the primary key: pk=%d %v", pk, err)
	}

	got, err := v.ListAudit(ctx, agentkeys.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(old) {
		t.Fatalf("%d rows after the upgrade, want %d", len(got), len(old))
	}
	for i, g := range got { // newest first
		w := old[len(old)-1-i]
		if g.ID != w.id || g.Seq != w.seq || !g.Time.Equal(w.at) || g.AgentID != w.agent || g.Decision != w.decided ||
			g.Status != w.status || g.Duration != 1500*time.Microsecond || g.BytesIn != 1 || g.BytesOut != 2 || g.Path != "/p" {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	byAgent, err := v.ListAudit(ctx, agentkeys.AuditFilter{AgentID: "agent_a", AfterSeq: 3})
	if err != nil || len(byAgent) != 2 || byAgent[0].ID != "evt_old3" || byAgent[1].ID != "evt_old4" {
		t.Errorf("agent_a after seq 3: %v %v", byAgent, err)
	}
	st, err := v.Status(ctx)
	if err != nil || st.Usage.RequestsThisMonth != 2 { // evt_old3 and evt_old4: not denied, this month
		t.Errorf("requests this month: %v %v", st, err)
	}

	e := &agentkeys.AuditEvent{Method: "GET", Host: "api.example.com", Path: "/new"}
	if err := v.BeginAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Decision, e.Status = agentkeys.DecisionAllowed, 200
	v.EndAudit(ctx, e)
	got, err = v.ListAudit(ctx, agentkeys.AuditFilter{Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != e.ID || got[0].Seq <= 12 || got[0].Decision != agentkeys.DecisionAllowed {
		t.Errorf("new row after the upgrade: %+v %v", got, err)
	}
}
