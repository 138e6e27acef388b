package cmd_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServe_WebhookSurvivesKill9: `serve` is killed with SIGKILL while a
// delivery is in flight (committed, sent, never recorded); after a restart
// the event arrives again, with the same id: at least once, nothing lost.
func TestServe_WebhookSurvivesKill9(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not installed (CI=true)")
		}
		t.Skip("python3 is not installed")
	}
	bin := agentkeysBinary(t)
	e := serveEnv(t)

	// The receiver: a process of its own (server/testdata), verifying both
	// signatures.
	portFile := filepath.Join(t.TempDir(), "port")
	rc := exec.Command("python3", "../server/testdata/webhook_receiver.py", portFile)
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Process.Kill(); rc.Wait() })
	var rcvURL string
	for deadline := time.Now().Add(10 * time.Second); rcvURL == ""; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(portFile); err == nil {
			rcvURL = "http://127.0.0.1:" + strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatal("receiver did not start")
		}
	}
	control := func(v string) {
		resp, err := http.Post(rcvURL+"/_control", "application/json", strings.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	type entry struct {
		Body                           string
		Status                         int
		SeedVerified, StandardVerified bool
	}
	rlog := func() []entry {
		resp, err := http.Get(rcvURL + "/_log")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []entry
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	waitLog := func(n int) []entry {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l := rlog(); len(l) >= n {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("receiver got %d deliveries, want %d", len(rlog()), n)
			}
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *exec.Cmd {
		c := exec.Command(bin, "serve", "--listen", addr, "--allow-loopback-targets", "--webhook-lease", "2s", "--webhook-retry-delays", "200ms,200ms,200ms")
		c.Env = e.environ()
		stdout, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
			t.Fatalf("serve: %q %v", line, err)
		}
		go io.Copy(io.Discard, stdout)
		return c
	}
	base := "http://" + addr
	call := func(method, path, key, body string, want int) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}

	serve := start()
	key := call("POST", "/api/v1/signup", "", `{"email":"a@example.com","password":"long enough pw","workspace":"A"}`, 201)["apiKey"].(string)
	// The server's own address is refused, even with loopback allowed.
	call("POST", "/api/v1/webhooks", key, `{"url":"`+base+`/h","events":["credential.expired"]}`, 400)
	hook := call("POST", "/api/v1/webhooks", key, `{"url":"`+rcvURL+`/h","events":["credential.expired"]}`, 201)["webhook"].(map[string]any)
	control(`{"secret":"` + hook["secret"].(string) + `","mode":"hang"}`)
	evt := call("POST", "/api/v1/webhooks/"+hook["id"].(string)+"/test", key, "", 202)["eventId"].(string)
	waitLog(1) // in flight: the receiver holds it
	if err := serve.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	serve.Wait()
	control(`{"mode":"ok"}`)

	start()
	got := waitLog(2)
	last := got[len(got)-1]
	raw, _ := base64.StdEncoding.DecodeString(last.Body)
	var p struct{ ID string }
	json.Unmarshal(raw, &p)
	if p.ID != evt || last.Status != 200 || !last.SeedVerified || !last.StandardVerified {
		t.Fatalf("after the restart the receiver got %+v (event %s), want %s verified", last, p.ID, evt)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ds := call("GET", "/api/v1/webhooks/"+hook["id"].(string)+"/deliveries", key, "", 200)["deliveries"].([]any)
		if len(ds) == 1 && ds[0].(map[string]any)["status"] == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %v", ds)
		}
	}
}
