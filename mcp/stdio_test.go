package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	akmcp "github.com/agentkeys/agentkeys/mcp"
)

// TestServeStdio_AnswersEverythingBeforeEOF pipes a whole session into the
// server and closes stdin at once: every request is answered, stdout holds
// only JSON-RPC messages, and the log goes elsewhere.
func TestServeStdio_AnswersEverythingBeforeEOF(t *testing.T) {
	v := mustOpenVault(t)
	logs := &syncBuffer{}
	srv, err := akmcp.New(v, akmcp.Options{Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, nil)
	const canary = "sk-stdio-canary-2231"
	// Tool calls run concurrently (a worker pool), so the credential the
	// proxy_request uses exists before the session starts.
	if _, err := v.CreateCredential(context.Background(), &agentkeys.CredentialInput{
		Name: "S", Type: agentkeys.APIKey, AllowedHosts: []string{up.host()}, Secret: agentkeys.Secret{Value: canary},
	}); err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_credential","arguments":{"name":"T","value":"` + canary + `-2","allowedHosts":["` + up.host() + `"]}}}`,
		`{"jsonrpc":"2.0","id":"four","method":"tools/call","params":{"name":"proxy_request","arguments":{"credentialName":"S","url":"` + up.URL + `/x"}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`,
		`this is not json`,
	}
	in := strings.NewReader(strings.Join(lines, "\n") + "\n")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.ServeStdio(ctx, in, &out); err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
	got := map[string]map[string]any{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var msg map[string]any
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg["jsonrpc"] != "2.0" {
			t.Fatalf("stdout line is not JSON-RPC: %q", sc.Text())
		}
		if id, ok := msg["id"]; ok && id != nil {
			b, _ := json.Marshal(id)
			got[string(b)] = msg
		}
	}
	for _, id := range []string{"1", "2", "3", `"four"`, "5"} {
		if got[id] == nil {
			t.Errorf("no answer to request %s (answers: %v)", id, len(got))
		}
	}
	if r, _ := got["3"]["result"].(map[string]any); r == nil || r["isError"] == true {
		t.Errorf("create_credential = %v", got["3"])
	}
	if r, _ := got[`"four"`]["result"].(map[string]any); r == nil || r["structuredContent"].(map[string]any)["status"] != float64(200) {
		t.Errorf("proxy_request = %v", got[`"four"`])
	}
	if req, _ := up.last(t); req.Header.Get("Authorization") != "Bearer "+canary {
		t.Errorf("upstream Authorization = %q", req.Header.Get("Authorization"))
	}
	if e, _ := got["5"]["error"].(map[string]any); e == nil || e["code"] != float64(-32602) {
		t.Errorf("unknown tool = %v, want a -32602 protocol error", got["5"])
	}
	if n := strings.Count(out.String(), canary); n != 0 {
		t.Errorf("stdout holds the credential value %d times", n)
	}
	if strings.Contains(logs.String(), canary) {
		t.Error("the log holds the credential value")
	}
}

func TestServeStdio_StopsWhenContextEnds(t *testing.T) {
	srv, err := akmcp.New(mustOpenVault(t), akmcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe() // a stdin that stays open
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeStdio(ctx, r, &bytes.Buffer{}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeStdio after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after its context was cancelled")
	}
}
