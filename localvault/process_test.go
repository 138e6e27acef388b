package localvault_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// Helper processes: the test binary re-executes itself with
// AGENTKEYS_TEST_HELPER naming what to do, on the vault in
// AGENTKEYS_TEST_HOME with the key in AGENTKEYS_TEST_MASTER_KEY.
const helperEnv = "AGENTKEYS_TEST_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for other tests")
	}
	ctx := context.Background()
	if mode == "journal-and-wait" {
		localvault.SetImportIntervals(time.Hour, time.Hour) // the journal alone must carry the lines
	}
	cfg := localvault.Config{Home: os.Getenv("AGENTKEYS_TEST_HOME"), MasterKey: os.Getenv("AGENTKEYS_TEST_MASTER_KEY"), Keychain: &memKeyStore{Fail: errTouched}}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	defer v.Close()
	arg := os.Getenv("AGENTKEYS_TEST_ARG")
	switch mode {
	case "add-credentials": // arg: "prefix:count"
		prefix, n, _ := strings.Cut(arg, ":")
		count, _ := strconv.Atoi(n)
		var wg sync.WaitGroup
		errs := make(chan error, count)
		for i := 0; i < count; i++ {
			wg.Add(1)
			go func(i int) { // several goroutines per process, too
				defer wg.Done()
				if _, err := v.CreateCredential(ctx, apiKeyInput(fmt.Sprintf("%s-%03d", prefix, i), "value")); err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fmt.Fprintln(os.Stderr, "create:", err)
			os.Exit(1)
		}
	case "revoke": // arg: "agentID:credentialID"
		a, c, _ := strings.Cut(arg, ":")
		if err := v.RevokeCredential(ctx, a, c); err != nil {
			fmt.Fprintln(os.Stderr, "revoke:", err)
			os.Exit(1)
		}
	case "delete-credential":
		if err := v.DeleteCredential(ctx, arg); err != nil {
			fmt.Fprintln(os.Stderr, "delete:", err)
			os.Exit(1)
		}
	case "audit": // arg: count of begun+ended events
		n, _ := strconv.Atoi(arg)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := &agentkeys.AuditEvent{Method: "GET", Host: "api.example.com", Path: "/p"}
				if err := v.BeginAudit(ctx, e); err != nil {
					fmt.Fprintln(os.Stderr, "audit:", err)
					os.Exit(1)
				}
				e.Decision, e.Status = agentkeys.DecisionAllowed, 200
				v.EndAudit(ctx, e)
			}()
		}
		wg.Wait()
	case "journal-and-wait": // arg: count; never returns
		n, _ := strconv.Atoi(arg)
		if err := journalAndWait(ctx, v, n); err != nil {
			fmt.Fprintln(os.Stderr, "journal:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
	if err := v.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helper starts a helper process.
func helper(t *testing.T, cfg localvault.Config, mode, arg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "AGENTKEYS_TEST_HOME="+cfg.Home,
		"AGENTKEYS_TEST_MASTER_KEY="+cfg.MasterKey, "AGENTKEYS_TEST_ARG="+arg)
	return cmd
}

func runHelper(t *testing.T, cfg localvault.Config, mode, arg string) {
	t.Helper()
	out, err := helper(t, cfg, mode, arg).CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s %s: %v\n%s", mode, arg, err, out)
	}
}

func TestConcurrency_TwoProcessesAddCredentials(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	const perProcess = 40
	cmds := []*exec.Cmd{helper(t, cfg, "add-credentials", "one:40"), helper(t, cfg, "add-credentials", "two:40")}
	outs := make([]strings.Builder, len(cmds))
	for i, c := range cmds {
		c.Stdout, c.Stderr = &outs[i], &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	cs, err := v.ListCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2*perProcess {
		t.Fatalf("%d credentials stored, want %d", len(cs), 2*perProcess)
	}
	for i, c := range cs {
		want := fmt.Sprintf("one-%03d", i)
		if i >= perProcess {
			want = fmt.Sprintf("two-%03d", i-perProcess)
		}
		if c.Name != want {
			t.Fatalf("credential %d is %s, want %s", i, c.Name, want)
		}
	}
}

// TestRevocation_FromAnotherProcess: a proxy-side vault with warm caches
// refuses a token on the very next call after another process revoked it.
func TestRevocation_FromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	v, cfg := mustOpenVault(t)
	c, _ := v.CreateCredential(ctx, apiKeyInput("cred", "value"))
	other, _ := v.CreateCredential(ctx, apiKeyInput("other", "value"))
	a, _ := v.CreateAgent(ctx, "bot")
	g, _ := v.AssignCredential(ctx, a.ID, c.ID)
	g2, _ := v.AssignCredential(ctx, a.ID, other.ID)
	for i := 0; i < 3; i++ { // warm
		r, err := v.Authorize(ctx, g.ProxyToken, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.OpenSecret(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Audit writes by this process must not be mistaken for revocations, nor hide them.
	if err := v.BeginAudit(ctx, &agentkeys.AuditEvent{Method: "GET"}); err != nil {
		t.Fatal(err)
	}
	runHelper(t, cfg, "revoke", a.ID+":"+c.ID)
	_, err := v.Authorize(ctx, g.ProxyToken, "")
	wantCode(t, err, agentkeys.EUNAUTHORIZED)
	if _, err := v.Authorize(ctx, g2.ProxyToken, ""); err != nil {
		t.Fatalf("the other grant stopped working: %v", err)
	}
	runHelper(t, cfg, "delete-credential", other.ID)
	_, err = v.Authorize(ctx, g2.ProxyToken, "")
	wantCode(t, err, agentkeys.EUNAUTHORIZED)
	_, err = v.RouteByName(ctx, "other")
	wantCode(t, err, agentkeys.ENOTFOUND)
}

func TestConcurrency_AuditFromTwoProcesses(t *testing.T) {
	cfg := testConfig(t)
	mustInit(t, cfg)
	cmds := []*exec.Cmd{helper(t, cfg, "audit", "150"), helper(t, cfg, "audit", "150")}
	outs := make([]strings.Builder, len(cmds))
	for i, c := range cmds {
		c.Stdout, c.Stderr = &outs[i], &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	v, err := localvault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	evs, err := v.ListAudit(context.Background(), agentkeys.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 300 {
		t.Fatalf("%d audit events, want 300", len(evs))
	}
	seen := map[int64]bool{}
	for _, e := range evs {
		if e.Decision != agentkeys.DecisionAllowed || seen[e.Seq] {
			t.Fatalf("event %+v: pending after Close, or duplicate seq", e)
		}
		seen[e.Seq] = true
	}
}
