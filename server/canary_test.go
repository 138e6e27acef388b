package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestCanary: credential values of every type, sent through the API and
// the hosted proxy (allowed, refused, upstream errors), appear in no API
// response, no log line, no audit row and no byte of the database — the
// SQLite files, or a pg_dump (else every column of every table) on
// PostgreSQL. Only the upstream sees them.
func TestCanary(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			dbURL := db.url(t)
			dir := t.TempDir()
			s := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir, allowLoopback: true})
			up := newUpstream(t)
			_, key := s.signup("Acme")
			canaries := map[string]string{
				"api":      "CANARYapi7f3a",
				"cookie":   "CANARYcookie91c",
				"user":     "CANARYuser22e",
				"password": "CANARYpass0d8",
				"header":   "CANARYheader5b1",
				"query":    "CANARYquery6aa",
				"patched":  "CANARYpatched4f2",
			}
			bodies := []map[string]any{
				{"name": "k-api", "type": "API_KEY", "value": canaries["api"], "allowedHosts": []string{up.host()}},
				{"name": "k-cookie", "type": "COOKIE", "value": "sid=" + canaries["cookie"], "allowedHosts": []string{up.host()}},
				{"name": "k-basic", "type": "BASIC_AUTH", "username": canaries["user"], "password": canaries["password"], "allowedHosts": []string{up.host()}},
				{"name": "k-header", "type": "CUSTOM_HEADER", "headers": []map[string]string{{"name": "X-Api-Key", "value": canaries["header"]}}, "allowedHosts": []string{up.host()}},
				{"name": "k-query", "type": "QUERY_PARAM", "param": "key", "value": canaries["query"], "allowedHosts": []string{up.host()}},
			}
			var responses bytes.Buffer
			record := func(a *answer) { responses.Write(a.body); fmt.Fprintf(&responses, "%v", a.header) }
			ag := s.createAgent(key, "bot")
			var tokens []string
			for _, b := range bodies {
				a := s.do("POST", "/api/v1/credentials", key, b)
				a.want(t, 201, "")
				record(a)
				var c agentkeys.Credential
				a.decode(t, &c)
				g := s.assign(key, ag.ID, c.ID)
				tokens = append(tokens, g.ProxyToken)
				for _, target := range []string{up.URL + "/ok?x=1", "https://evil.example/steal", "http://127.0.0.1:9/closed"} {
					record(proxyGet(t, s.url, g.ProxyToken, "", target))
				}
				record(proxyGet(t, s.url, key, c.Name, up.URL+"/by-name"))
			}
			var list struct{ Credentials []agentkeys.Credential }
			a := s.do("GET", "/api/v1/credentials", key, nil)
			record(a)
			a.decode(t, &list)
			record(s.do("PATCH", "/api/v1/credentials/"+list.Credentials[0].ID, key, map[string]any{"value": canaries["patched"]}))
			for _, path := range []string{"/api/v1/credentials", "/api/v1/agents", "/api/v1/workspace/status", "/api/v1/audit?limit=1000",
				"/api/v1/credentials/" + list.Credentials[0].ID, "/api/v1/agents/" + ag.ID} {
				record(s.do("GET", path, key, nil))
			}
			// One credential's answer opens its value for the names it is
			// sent under: the names are there, the values are not.
			for _, c := range list.Credentials {
				for _, ref := range []string{c.ID, c.Name} {
					a := s.do("GET", "/api/v1/credentials/"+ref, key, nil)
					a.want(t, 200, "")
					record(a)
					var got agentkeys.Credential
					a.decode(t, &got)
					want := map[string]string{"k-header": "X-Api-Key", "k-query": "key"}[c.Name]
					if names := strings.Join(got.HeaderNames, ",") + got.ParamName; names != want {
						t.Errorf("GET %s names %q, want %q", ref, names, want)
					}
				}
			}
			// Refused writes that carry a value.
			record(s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "k-api", "type": "API_KEY", "value": canaries["api"], "allowedHosts": []string{up.host()}}))
			record(s.do("POST", "/api/v1/credentials", key, map[string]any{"name": "bad", "type": "API_KEY", "value": canaries["api"], "allowedHosts": []string{"*"}}))
			record(s.do("PATCH", "/api/v1/credentials/"+list.Credentials[0].ID, key, map[string]any{"value": canaries["api"] + "\n"}))
			waitAudit(t, s, key, len(bodies)*4)
			evs := s.do("GET", "/api/v1/audit?limit=1000", key, nil)
			journals := filesUnder(t, filepath.Join(dir, "audit")) // before Close removes them
			s.store.Close()                                        // flush and release the files

			where := map[string][]byte{
				"API responses":  responses.Bytes(),
				"logs":           []byte(s.logs.String()),
				"audit rows":     evs.body,
				"database":       databaseDump(t, dbURL, dir),
				"data directory": append(filesUnder(t, dir), journals...),
			}
			for what, b := range where {
				for name, v := range canaries {
					if bytes.Contains(b, []byte(v)) {
						t.Errorf("the %s value appears in the %s", name, what)
					}
				}
				for _, tok := range append(tokens, key) {
					if what != "API responses" && bytes.Contains(b, []byte(tok)) {
						t.Errorf("a token appears in the %s", what)
					}
				}
			}
			if len(where["database"]) < 1000 {
				t.Fatalf("database dump is only %d bytes: the sweep looked at nothing", len(where["database"]))
			}
			// The upstream did get the values: the sweep is not vacuous.
			if !strings.Contains(strings.Join(up.received(), " "), canaries["api"]) {
				t.Fatalf("the upstream never received the API key: %q", up.received())
			}
		})
	}
}

// databaseDump returns every byte the database holds: the SQLite files in
// dir, or pg_dump of the schema (else every column of every table).
// filesUnder returns the contents of every regular file under dir (the
// audit journals included), concatenated.
func filesUnder(t *testing.T, dir string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		out.Write(b)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out.Bytes()
}

func databaseDump(t *testing.T, dbURL, dir string) []byte {
	t.Helper()
	var out bytes.Buffer
	if dbURL == "" {
		return filesUnder(t, dir)
	}
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		schema := schemaOf(dbURL)
		cmd := exec.Command(pgDump, "--no-owner", "--schema="+schema, strings.Split(dbURL, "?")[0])
		if b, err := cmd.Output(); err == nil && bytes.Contains(b, []byte("audit_events")) {
			return b
		}
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tb := range tables {
		r, err := db.QueryContext(ctx, `SELECT * FROM `+tb)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			r.Scan(ptrs...)
			fmt.Fprintln(&out, vals...)
		}
		r.Close()
	}
	return out.Bytes()
}

func schemaOf(dbURL string) string {
	_, q, _ := strings.Cut(dbURL, "search_path=")
	s, _, _ := strings.Cut(q, "&")
	return s
}

// TestCanary_Team: passwords, invitation tokens and API keys of the team
// routes appear in no log line, no audit row and no byte of the database
// (only in the one answer that shows a key or link).
func TestCanary_Team(t *testing.T) {
	for _, db := range dbKinds() {
		t.Run(db.name, func(t *testing.T) {
			dbURL, dir := db.url(t), t.TempDir()
			s := newTestServer(t, serverOpts{databaseURL: dbURL, dataDir: dir})
			_, owner := s.signup("Acme") // password teamPassword
			secrets := []string{owner, teamPassword, "CANARYinvitee9pw", "CANARYwrong3pw"}
			inv := s.do("POST", "/api/v1/invitations", owner, map[string]any{"email": "new@example.com", "role": "admin"})
			var iv struct{ ID, AcceptURL string }
			inv.decode(t, &iv)
			tok1 := inviteToken(t, iv.AcceptURL)
			res := s.do("POST", "/api/v1/invitations/"+iv.ID+"/resend", owner, nil)
			res.decode(t, &iv)
			tok2 := inviteToken(t, iv.AcceptURL)
			s.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": tok1, "password": "CANARYinvitee9pw"}).want(t, 401, agentkeys.EUNAUTHORIZED)
			acc := s.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": tok2, "password": "CANARYinvitee9pw"})
			var a struct{ APIKey string }
			acc.decode(t, &a)
			s.do("POST", "/api/v1/login", "", map[string]any{"email": "new@example.com", "password": "CANARYwrong3pw"}).want(t, 401, agentkeys.EUNAUTHORIZED)
			var k struct{ ID, Key string }
			s.do("POST", "/api/v1/api-keys", a.APIKey, map[string]any{"name": "ci"}).decode(t, &k)
			var k2 struct{ Key string }
			s.do("POST", "/api/v1/api-keys/"+k.ID+"/rotate", a.APIKey, nil).decode(t, &k2)
			secrets = append(secrets, tok1, tok2, a.APIKey, k.Key, k2.Key)
			audit := s.do("GET", "/api/v1/audit?limit=1000", owner, nil)
			if !strings.Contains(string(audit.body), "api_key.rotated") {
				t.Fatalf("audit = %s", audit.body)
			}
			s.store.Close()
			for what, b := range map[string][]byte{
				"logs":       []byte(s.logs.String()),
				"audit rows": audit.body,
				"database":   databaseDump(t, dbURL, dir),
			} {
				for _, v := range secrets {
					if bytes.Contains(b, []byte(v)) {
						t.Errorf("a password, token or key appears in the %s", what)
					}
				}
			}
		})
	}
}
