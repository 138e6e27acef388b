package cmd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestBinary_ConcurrentAdds: two agentkeys processes adding credentials at
// the same time both succeed and nothing is lost.
func TestBinary_ConcurrentAdds(t *testing.T) {
	bin := agentkeysBinary(t)
	e := newEnv(t)
	e.init()
	const perProcess = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*perProcess)
	start := make(chan struct{})
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < perProcess; i++ {
				c := exec.Command(bin, "credentials", "add", "--name", fmt.Sprintf("p%d-cred-%d", p, i), "--value", "-", "--allow-host", "api.example.com")
				c.Env = e.environ()
				c.Stdin = strings.NewReader(fmt.Sprintf("secret-%d-%d", p, i))
				if out, err := c.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("process %d add %d: %v\n%s", p, i, err, out)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var list struct {
		Credentials []*agentkeys.Credential `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(e.must("credentials", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Credentials) != 2*perProcess {
		t.Errorf("%d credentials after %d concurrent adds", len(list.Credentials), 2*perProcess)
	}
}

// TestBinary_Up runs `agentkeys up`, proxies a request with a pxr_ token,
// sends SIGTERM while a slow response is in flight, and checks that the
// response completes, the process exits 0, and `audit --json` has the row.
func TestBinary_Up(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	bin := agentkeysBinary(t)

	gotRequest := make(chan http.Header, 1)
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "quick")
			return
		}
		gotRequest <- r.Header.Clone()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "first half, ")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second half")
	}))
	defer upstream.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	host := strings.TrimPrefix(upstream.URL, "http://")

	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Slow API", "--value", "sk-up-injected", "--allow-host", host)
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Slow API"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	up := exec.CommandContext(ctx, bin, "up", "--listen", "127.0.0.1:0")
	up.Env = e.environ()
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	var proxyURL string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export AGENTKEYS_PROXY_URL="); ok {
			proxyURL = v
			break
		}
	}
	if proxyURL == "" {
		up.Process.Kill()
		up.Wait()
		t.Fatalf("up printed no AGENTKEYS_PROXY_URL; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	if !strings.HasPrefix(proxyURL, "http://127.0.0.1:") {
		t.Errorf("proxy URL %q is not loopback", proxyURL)
	}

	// A request with a foreign Host is refused (DNS rebinding guard).
	req, _ := http.NewRequest("GET", proxyURL+"/v1/proxy", nil)
	req.Host = "evil.example.com"
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("foreign Host: %d", resp.StatusCode)
		}
	}

	// Revocation by another process (this test's in-process CLI) takes
	// effect on the running proxy's very next request.
	e.must("credentials", "add", "--name", "Other", "--value", "sk-other", "--allow-host", host)
	tok2 := strings.TrimSpace(e.must("agents", "create", "--name", "bot2", "--credential", "Other"))
	get := func(token string) int {
		req, _ := http.NewRequest("GET", proxyURL+"/v1/proxy", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/quick")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(tok2); got != http.StatusOK {
		t.Fatalf("before revoke: %d", got)
	}
	e.must("agents", "revoke", "bot2", "--credential", "Other")
	if got := get(tok2); got != http.StatusUnauthorized {
		t.Errorf("after revoke from another process: %d, want 401", got)
	}

	// The slow request, as curl would send it.
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", proxyURL+"/v1/proxy", strings.NewReader(`{"hello":"world"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(agentkeys.HeaderTargetURL, upstream.URL+"/slow?x=1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answers <- answer{resp.StatusCode, string(b), err}
	}()
	var h http.Header
	select {
	case h = <-gotRequest:
	case <-ctx.Done():
		t.Fatal("the upstream never got the request")
	}
	if a := h.Values("Authorization"); len(a) != 1 || a[0] != "Bearer sk-up-injected" {
		t.Errorf("upstream Authorization %q", a)
	}

	// SIGTERM while the response is in flight; the process must wait for it.
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("up exited (%v) before the in-flight response finished; stderr: %s", err, stderr.String())
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	a := <-answers
	if a.err != nil || a.status != 200 || a.body != "first half, second half" {
		t.Errorf("in-flight response: %+v", a)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("up exit: %v; stderr: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("up did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "Shutting down") {
		t.Errorf("stderr: %s", stderr.String())
	}

	// The audit row is durable and complete.
	var audit struct {
		Events []*agentkeys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(e.must("audit", "--json")), &audit); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ev := range audit.Events {
		if ev.Path == "/slow" {
			found = true
			if ev.Status != 200 || ev.Decision != agentkeys.DecisionAllowed || ev.AgentName != "bot" || ev.Method != "POST" || ev.BytesOut != int64(len("first half, second half")) {
				t.Errorf("audit row: %+v", ev)
			}
		}
	}
	if !found {
		t.Errorf("no audit row for /slow: %+v", audit.Events)
	}
}
