package store_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
	"github.com/agentkeys/agentkeys/server/store"
)

// TestMigrate_NarrowAuditIndexes: a database at schema 1 (audit indexes led
// by workspace_id) gets migration 2 at the next Open: the rows stay, the
// indexes are (agent_id, seq) and (credential_id, seq), and filtered lists
// still see only their workspace's rows.
func TestMigrate_NarrowAuditIndexes(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s := mustOpen(t, cfg)
			a, other := mustWorkspace(t, s, "Acme"), mustWorkspace(t, s, "Other")
			for _, ws := range []string{a.ID, other.ID} {
				for i := 0; i < 3; i++ {
					e := &agentkeys.AuditEvent{WorkspaceID: ws, AgentID: "agt_shared", CredentialID: "cred_shared", Method: "GET", Host: "h", Path: "/"}
					if err := s.BeginAudit(t.Context(), e); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.Close()

			db := rawDB(t, cfg.DatabaseURL, cfg.DataDir)
			undo := []string{
				`DROP INDEX audit_agent`, `DROP INDEX audit_credential`,
				`CREATE INDEX audit_agent ON audit_events (workspace_id, agent_id, seq)`,
				`CREATE INDEX audit_credential ON audit_events (workspace_id, credential_id, seq)`,
				`ALTER TABLE grants DROP COLUMN expires_at`,                                                 // schema 3
				`DROP TABLE webhook_raised`, `DROP TABLE webhook_attempts`, `DROP TABLE webhook_deliveries`, // schema 6
				`DROP TABLE webhook_events`, `DROP TABLE webhooks`, `ALTER TABLE credentials DROP COLUMN expires_at`,
				// schema 7 (plans and billing)
				`ALTER TABLE workspaces DROP COLUMN limit_credentials`, `ALTER TABLE workspaces DROP COLUMN limit_agents`,
				`ALTER TABLE workspaces DROP COLUMN limit_requests`, `ALTER TABLE workspaces DROP COLUMN period_start`,
				`ALTER TABLE workspaces DROP COLUMN period_end`, `ALTER TABLE workspaces DROP COLUMN limit_notified`,
				`ALTER TABLE workspaces DROP COLUMN billing_status`, `ALTER TABLE workspaces DROP COLUMN stripe_customer`,
				`ALTER TABLE workspaces DROP COLUMN stripe_subscription`, `ALTER TABLE usage DROP COLUMN admitted`,
				`DROP TABLE billing_events`,
				`ALTER TABLE credentials DROP COLUMN version`, // schema 8
				`ALTER TABLE credentials DROP COLUMN refresh_lease`,
				`ALTER TABLE credentials DROP COLUMN oauth_status`,
				`ALTER TABLE credentials DROP COLUMN oauth_expires_at`,
				`DROP TABLE oauth_apps`,
				`DROP TABLE oauth_states`,
				`DELETE FROM schema_migrations WHERE version >= 2`,
			}
			undo9 := []string{`DROP TABLE sessions`} // schema 9, first: it references users and workspaces
			for _, q := range append(append(undo9, undoTeams...), undo...) {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("back to schema 1: %s: %v", q, err)
				}
			}

			s2 := mustOpen(t, cfg)
			// Keys made before schema 4 belong to their workspace's owner.
			if act, err := s2.ActorForKey(t.Context(), a.APIKey); err != nil || act.WorkspaceID != a.ID || act.Role != agentkeys.RoleOwner || act.KeyID == "" {
				t.Fatalf("a key from before the teams migration: %+v, %v", act, err)
			}
			for _, name := range []string{"audit_agent", "audit_credential"} {
				def := indexDef(t, db, cfg.DatabaseURL, name)
				if strings.Contains(def, "workspace_id") || !strings.Contains(def, "seq") {
					t.Fatalf("index %s after the migration: %s", name, def)
				}
			}
			for _, f := range []agentkeys.AuditFilter{{AgentID: "agt_shared"}, {CredentialID: "cred_shared"}} {
				evs, err := s2.Workspace(a.ID).ListAudit(t.Context(), f)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 3 {
					t.Fatalf("filter %+v: %d events, want Acme's 3", f, len(evs))
				}
				for _, e := range evs {
					if e.WorkspaceID != a.ID {
						t.Fatalf("filter %+v returned another workspace's event", f)
					}
				}
			}
		})
	}
}

func rawDB(t *testing.T, dbURL, dataDir string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", dbURL
	if dbURL == "" {
		driver, dsn = "sqlite", storesql.DSN(filepath.Join(dataDir, store.DBFileName))
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func indexDef(t *testing.T, db *sql.DB, dbURL, name string) string {
	t.Helper()
	q := `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = $1`
	if dbURL != "" {
		q = `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`
	}
	var def string
	if err := db.QueryRow(q, name).Scan(&def); err != nil {
		t.Fatalf("index %s: %v", name, err)
	}
	return def
}

// undoTeams takes a database back from schema 4 (teams) to schema 3.
var undoTeams = []string{
	`DROP INDEX workspace_keys_id`, `DROP INDEX workspace_keys_member`, `DROP INDEX members_user`,
	`ALTER TABLE workspace_keys DROP COLUMN id`, `ALTER TABLE workspace_keys DROP COLUMN user_id`,
	`ALTER TABLE workspace_keys DROP COLUMN name`,
	`DROP TABLE invitations`, `DROP TABLE admin_events`, `DROP TABLE rate_limits`, `DROP TABLE pending_signups`,
}
