package cmd_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
	"github.com/agentkeys/agentkeys/internal/testkit"
	"github.com/agentkeys/agentkeys/localvault"
	"github.com/agentkeys/agentkeys/sync"
)

// serveProc is an `agentkeys serve` process that can be killed and
// started again on the same address and data directory.
type serveProc struct {
	t       *testing.T
	bin     string
	e       *testEnv
	addr    string
	dataDir string
	c       *exec.Cmd
}

func newServeProc(t *testing.T, bin string) *serveProc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &serveProc{t: t, bin: bin, e: serveEnv(t), addr: addr, dataDir: t.TempDir()}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *serveProc) url() string { return "http://" + p.addr }

func (p *serveProc) start() {
	p.t.Helper()
	c := exec.Command(p.bin, "serve", "--listen", p.addr, "--data-dir", p.dataDir)
	c.Env = p.e.environ()
	stdout, _ := c.StdoutPipe()
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		p.t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		c.Process.Kill()
		p.t.Fatalf("serve: %q %v %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	p.c = c
}

func (p *serveProc) kill() {
	if p.c != nil {
		p.c.Process.Kill() // SIGKILL
		p.c.Wait()
		p.c = nil
	}
}

// openLocal opens e's vault in this process.
func openLocal(t *testing.T, e *testEnv) *localvault.Vault {
	t.Helper()
	v, err := localvault.Open(t.Context(), localvault.Config{Home: e.home, MasterKey: e.vars["AGENTKEYS_MASTER_KEY"], Keychain: testkit.NoKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// vaultState is the content of e's vault (testkit.VaultState).
func vaultState(t *testing.T, e *testEnv) string {
	t.Helper()
	v := openLocal(t, e)
	defer v.Close()
	return testkit.VaultState(t, v)
}

// syncProcKilled starts `agentkeys sync` for e and SIGKILLs it after d.
// It reports whether the process finished before the kill.
func syncProcKilled(t *testing.T, bin string, e *testEnv, d time.Duration) bool {
	t.Helper()
	c := exec.Command(bin, "sync")
	c.Env = e.environ()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		c.Process.Kill()
		<-done
		return false
	}
}

// TestSync_Kill9: `agentkeys sync` killed with SIGKILL in the middle of
// pushes and pulls, and the server killed in the middle of a sync: no
// record is lost or duplicated, and the next sync completes.
func TestSync_Kill9(t *testing.T) {
	bin := agentkeysBinary(t)
	srv := newServeProc(t, bin)
	hr, err := http.Post(srv.url()+"/api/v1/signup", "application/json",
		strings.NewReader(`{"email":"k@example.com","password":"correct horse battery","workspace":"K"}`))
	if err != nil {
		t.Fatal(err)
	}
	var su struct {
		APIKey string `json:"apiKey"`
	}
	json.NewDecoder(hr.Body).Decode(&su)
	hr.Body.Close()
	apiKey := su.APIKey
	ctx := t.Context()

	a := newEnv(t)
	a.init()
	r := a.runWith(func(_ *cmd.IOStreams, in *bytes.Buffer) { in.WriteString(apiKey) }, "sync", "enable", "--server", srv.url(), "--api-key", "-")
	if r.code != 0 {
		t.Fatalf("enable: %s", r.stderr)
	}
	phrase := strings.TrimSpace(r.stdout)
	const n = 600
	edit := func(round int) {
		v := openLocal(t, a)
		defer v.Close()
		cs, _ := v.ListCredentials(ctx)
		if len(cs) == 0 {
			for i := 0; i < n; i++ {
				if _, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{Name: fmt.Sprintf("c%03d", i), Type: agentkeys.APIKey,
					AllowedHosts: []string{"api.example.com"}, Secret: agentkeys.Secret{Value: fmt.Sprintf("v0-%d", i)}}); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		for i, c := range cs {
			if i%3 == round%3 {
				if _, err := v.UpdateCredential(ctx, c.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: fmt.Sprintf("v%d-%d", round, i)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Kill mid-push, several times, with new changes between.
	killed := 0
	for round, d := range []time.Duration{60 * time.Millisecond, 120 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		edit(round)
		if !syncProcKilled(t, bin, a, d) {
			killed++
		}
	}
	if killed == 0 {
		t.Log("warning: every sync finished before its kill; the machine is fast")
	}
	a.must("sync")
	a.must("sync")

	// Kill the server while a sync is in flight, start it again.
	v := openLocal(t, a)
	for round, d := range []time.Duration{60 * time.Millisecond, 100 * time.Millisecond, 160 * time.Millisecond} {
		v.Close()
		edit(10 + round)
		v = openLocal(t, a)
		errc := make(chan error, 1)
		go func() {
			_, err := sync.Run(ctx, v, sync.Options{})
			errc <- err
		}()
		time.Sleep(d)
		srv.kill()
		runErr := <-errc
		srv.start()
		t.Logf("sync with the server killed after %v: %v", d, runErr)
	}
	v.Close()
	a.must("sync")
	if st := a.must("sync", "status"); !strings.Contains(st, "pending:      0") {
		t.Fatalf("pending changes after the last sync:\n%s", st)
	}

	// A new device: its pull killed several times, then completed.
	b := newEnv(t)
	b.init()
	b.mustStdin(phrase, "sync", "join", "--server", srv.url(), "--api-key", apiKey)
	edit(8)
	a.must("sync")
	for _, d := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond} {
		syncProcKilled(t, bin, b, d)
	}
	b.must("sync")
	want := vaultState(t, a)
	if got := vaultState(t, b); got != want {
		t.Fatalf("B differs from A after kills:\nA: %d lines\nB: %d lines", strings.Count(want, "\n")+1, strings.Count(got, "\n")+1)
	}
	if strings.Count(want, "\n")+1 != n {
		t.Fatalf("A has %d objects, want %d", strings.Count(want, "\n")+1, n)
	}
}

// pgSchemaURL is a fresh PostgreSQL schema for one test, or a skip.
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("AGENTKEYS_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AGENTKEYS_TEST_DATABASE_URL is not set (CI=true)")
		}
		t.Skip("AGENTKEYS_TEST_DATABASE_URL is not set: PostgreSQL skipped")
	}
	schema := "t_cmdsync_" + strings.ToLower(agentkeys.NewID("s")[2:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); admin.Close() })
	u, _ := neturl.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestSync_BinaryConverge: two homes and one real `agentkeys serve`
// (SQLite, then PostgreSQL), every sync a separate `agentkeys sync`
// process: creates, edits, deletes and revocations on both sides while
// apart, then syncs; both converge with the conflicts reported, and a third
// device joined from the phrase (a `sync join` process, phrase on stdin)
// matches.
func TestSync_BinaryConverge(t *testing.T) {
	bin := agentkeysBinary(t)
	for _, db := range []struct {
		name string
		url  func(*testing.T) string
	}{{"SQLite", func(*testing.T) string { return "" }}, {"PostgreSQL", pgSchemaURL}} {
		t.Run(db.name, func(t *testing.T) {
			srvURL, apiKey, _ := startServe(t, bin, db.url(t))
			ctx := t.Context()
			proc := func(e *testEnv, stdin string, args ...string) string {
				t.Helper()
				c := exec.Command(bin, args...)
				c.Env = e.environ()
				c.Stdin = strings.NewReader(stdin)
				var out, errb strings.Builder
				c.Stdout, c.Stderr = &out, &errb
				if err := c.Run(); err != nil {
					t.Fatalf("agentkeys %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
				}
				return out.String()
			}
			a, b := newEnv(t), newEnv(t)
			a.init()
			b.init()
			a.must("credentials", "add", "--name", "github", "--value", "gh-0", "--allow-host", "api.github.com")
			a.must("credentials", "add", "--name", "stripe", "--value", "st-0", "--allow-host", "api.stripe.com")
			a.must("credentials", "add", "--name", "openai", "--value", "oa-0", "--allow-host", "api.openai.com")
			a.must("agents", "create", "--name", "bot", "--credential", "github")
			a.must("agents", "assign", "bot", "--credential", "stripe")
			phrase := strings.TrimSpace(proc(a, apiKey, "sync", "enable", "--server", srvURL, "--api-key", "-"))
			proc(b, phrase, "sync", "join", "--server", srvURL, "--api-key", apiKey)

			// Apart: edits on both sides (B's later), a delete racing an
			// edit, a revocation, a name created on both, an agent each.
			update := func(e *testEnv, name, value string) {
				v := openLocal(t, e)
				defer v.Close()
				c, err := v.FindCredential(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.UpdateCredential(ctx, c.ID, &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Value: value}}); err != nil {
					t.Fatal(err)
				}
			}
			update(a, "github", "gh-A")
			time.Sleep(5 * time.Millisecond)
			update(b, "github", "gh-B")
			a.must("credentials", "remove", "openai", "--yes")
			update(b, "openai", "oa-B")
			a.must("agents", "revoke", "bot", "--credential", "stripe")
			a.must("credentials", "add", "--name", "dup", "--value", "dup-A", "--allow-host", "a.example.com")
			b.must("credentials", "add", "--name", "dup", "--value", "dup-B", "--allow-host", "b.example.com")
			b.must("agents", "create", "--name", "b-agent")
			a.must("agents", "create", "--name", "a-agent")

			proc(a, "", "sync")
			proc(b, "", "sync")
			proc(a, "", "sync")
			sa, sb := vaultState(t, a), vaultState(t, b)
			if sa != sb {
				t.Fatalf("not converged:\nA:\n%s\nB:\n%s", sa, sb)
			}
			// testkit.VaultState's lines: "cred <id> <name> <type> [hosts] = <value>",
			// "agent <id> <name> [credential names]".
			lines := strings.Split(sa, "\n")
			has := func(prefix, name, end string) bool {
				for _, l := range lines {
					if strings.HasPrefix(l, prefix) && strings.Contains(l, " "+name+" ") && strings.HasSuffix(l, end) {
						return true
					}
				}
				return false
			}
			for _, c := range [][2]string{{"github", "gh-B"}, {"github (conflict)", "gh-A"}, {"openai", "oa-B"}, {"dup", "dup-A"}, {"dup (conflict)", "dup-B"}} {
				if !has("cred ", c[0], " = "+c[1]) {
					t.Errorf("converged state lacks credential %q with its value from the right device", c[0])
				}
			}
			for _, a := range [][2]string{{"bot", "[github]"}, {"b-agent", "[]"}, {"a-agent", "[]"}} {
				if !has("agent ", a[0], " "+a[1]) {
					t.Errorf("converged state lacks agent %q holding %s", a[0], a[1])
				}
			}
			var st cmd.SyncStatus
			json.Unmarshal([]byte(b.must("sync", "status", "--json")), &st)
			var msgs []string
			for _, c := range st.Conflicts {
				msgs = append(msgs, c.Message)
			}
			all := strings.Join(msgs, "\n")
			for _, want := range []string{`credential "github" was changed here and on another device`, `kept as "github (conflict)"`,
				`credential "openai"`, "deleted on another device and changed here: kept the change", `"dup" was created on two devices`} {
				if !strings.Contains(all, want) || st.Pending != 0 {
					t.Errorf("B's status lacks %q (pending %d):\n%s", want, st.Pending, all)
				}
			}
			c := newEnv(t)
			c.init()
			proc(c, phrase+"\n", "sync", "join", "--server", srvURL, "--api-key", apiKey)
			if sc := vaultState(t, c); sc != sa {
				t.Fatalf("third device:\n%s\nwant:\n%s", sc, sa)
			}
		})
	}
}
