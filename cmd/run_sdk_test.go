package cmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a loopback server standing in for the OpenAI and Anthropic
// APIs. Every API request must carry the real key exactly once, in the
// header that API uses, and no proxy token anywhere; violations are
// collected for the test to report. A streamed answer sends its next event
// only after the client has acknowledged the previous one on /ack, so a
// proxy that buffered the stream would stall it.
type fakeAPI struct {
	*httptest.Server
	openAIKey, anthropicKey string

	mu       sync.Mutex
	problems []string
	calls    int
	acks     chan int
}

func newFakeAPI(t *testing.T, openAIKey, anthropicKey string) *fakeAPI {
	t.Helper()
	a := &fakeAPI{openAIKey: openAIKey, anthropicKey: anthropicKey, acks: make(chan int, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ack", func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		a.acks <- i
	})
	mux.HandleFunc("/v1/chat/completions", a.openAI)
	mux.HandleFunc("/v1/messages", a.anthropic)
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAPI) hostPort() string { return strings.TrimPrefix(a.URL, "http://") }

func (a *fakeAPI) problem(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

// check reads the body and records what is wrong with the request's key.
func (a *fakeAPI) check(r *http.Request, header, want string) map[string]any {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	got := r.Header.Values(header)
	if len(got) != 1 || got[0] != want {
		a.problem("%s %s: %s = %q, want the real key exactly once", r.Method, r.URL.Path, header, got)
	}
	all := r.URL.String() + fmt.Sprint(r.Header) + string(body)
	if strings.Contains(all, "pxr_") {
		a.problem("%s %s: the upstream received a proxy token", r.Method, r.URL.Path)
	}
	if n := strings.Count(all, want); n != 1 {
		a.problem("%s %s: the real key appears %d times", r.Method, r.URL.Path, n)
	}
	var in map[string]any
	json.Unmarshal(body, &in)
	return in
}

// stream writes events, each after the client acknowledged the previous.
func (a *fakeAPI) stream(w http.ResponseWriter, events []string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i, ev := range events {
		io.WriteString(w, ev)
		w.(http.Flusher).Flush()
		if strings.Contains(ev, "one") || strings.Contains(ev, "two") || strings.Contains(ev, "three") {
			select {
			case got := <-a.acks:
				if got != i-a.firstDelta(events) {
					a.problem("ack %d for event %d", got, i)
				}
			case <-time.After(20 * time.Second):
				a.problem("event %d was not acknowledged: it did not reach the client on its own (buffered stream?)", i)
				return
			}
		}
	}
}

func (a *fakeAPI) firstDelta(events []string) int {
	for i, ev := range events {
		if strings.Contains(ev, "one") {
			return i
		}
	}
	return 0
}

func (a *fakeAPI) openAI(w http.ResponseWriter, r *http.Request) {
	in := a.check(r, "Authorization", "Bearer "+a.openAIKey)
	if in["model"] == "bad-model" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"no such model: bad-model","type":"invalid_request_error","param":"model","code":"model_not_found"}}`)
		return
	}
	if in["stream"] == true {
		var evs []string
		for _, word := range []string{"one", " two", " three"} {
			evs = append(evs, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"content":"`+word+`"},"finish_reason":null}]}`+"\n\n")
		}
		evs = append(evs, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
		a.stream(w, evs)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-test","choices":[{"index":0,"message":{"role":"assistant","content":"hello from openai"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}`)
}

func (a *fakeAPI) anthropic(w http.ResponseWriter, r *http.Request) {
	in := a.check(r, "X-Api-Key", a.anthropicKey)
	if v := r.Header.Values("Authorization"); len(v) != 0 {
		a.problem("anthropic: Authorization reached the upstream: %q", v)
	}
	if in["model"] == "bad-model" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"no such model: bad-model"}}`)
		return
	}
	if in["stream"] == true {
		ev := func(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }
		evs := []string{
			ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":0}}}`),
			ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		}
		for _, word := range []string{"one", " two", " three"} {
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+word+`"}}`))
		}
		evs = append(evs,
			ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
			ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}`),
			ev("message_stop", `{"type":"message_stop"}`))
		a.stream(w, evs)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[{"type":"text","text":"hello from anthropic"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":3}}`)
}

// verify fails the test for every problem the upstream saw, and unless it
// answered at least minCalls API requests.
func (a *fakeAPI) verify(t *testing.T, minCalls int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.problems {
		t.Error("upstream: " + p)
	}
	if a.calls < minCalls {
		t.Errorf("upstream answered %d API requests, want at least %d", a.calls, minCalls)
	}
}

// sdkSetup is a vault with an OpenAI and an Anthropic credential allowed
// to their real hosts and to the fake API, assigned to agent "coder".
func sdkSetup(t *testing.T) (*testEnv, *fakeAPI) {
	t.Helper()
	e := newEnv(t)
	e.init()
	api := newFakeAPI(t, "sk-openai-canary-4c1d", "sk-ant-canary-9e2b")
	e.must("credentials", "add", "--name", "OpenAI", "--value", api.openAIKey, "--allow-host", "api.openai.com", "--allow-host", api.hostPort())
	e.must("credentials", "add", "--name", "Anthropic", "--type", "CUSTOM_HEADER", "--header", "x-api-key: "+api.anthropicKey,
		"--allow-host", "api.anthropic.com", "--allow-host", api.hostPort())
	e.must("agents", "create", "--name", "coder", "--credential", "OpenAI")
	e.must("agents", "assign", "coder", "--credential", "Anthropic")
	return e, api
}

// runBinary runs the built agentkeys with args in dir and returns its
// combined output; it fails the test unless the exit code is 0.
func runBinary(t *testing.T, e *testEnv, dir string, extraEnv []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, agentkeysBinary(t), args...)
	c.Dir = dir
	c.Env = append(e.environ(), extraEnv...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("agentkeys %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRun_SDKs runs the real openai and @anthropic-ai/sdk npm packages
// (cmd/testdata/sdk-e2e, pinned by its package-lock.json) under `agentkeys
// run`. It needs node and `npm ci` there; without them it skips, except
// under CI=true.
func TestRun_SDKs(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if _, err := exec.LookPath("node"); err != nil {
		skip("node is not installed: the SDK end-to-end test needs it")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "sdk-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"openai", "@anthropic-ai/sdk"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			skip("cmd/testdata/sdk-e2e/node_modules is missing: run `npm ci --prefix cmd/testdata/sdk-e2e`")
		}
	}
	e, api := sdkSetup(t)
	for _, sdk := range []struct{ name, cred string }{{"openai", "OpenAI"}, {"anthropic", "Anthropic"}} {
		t.Run(sdk.name, func(t *testing.T) {
			out := runBinary(t, e, dir, []string{"SDK_E2E_UPSTREAM=" + api.hostPort()},
				"run", "--agent", "coder", "--credential", sdk.cred, "--", "node", "sdk.mjs", sdk.name)
			if !strings.Contains(out, "sdk-e2e: PASS "+sdk.name) {
				t.Fatalf("sdk.mjs did not pass:\n%s", out)
			}
		})
	}
	api.verify(t, 6)
	// Every request is in the audit log, under the runs' temporary agents.
	audit := e.must("audit", "--json")
	if n := strings.Count(strings.ReplaceAll(audit, " ", ""), `"decision":"allowed"`); n < 6 {
		t.Errorf("audit log has %d allowed requests, want at least 6:\n%s", n, audit)
	}
}

// TestRun_CurlAndPython: plain HTTP clients given a base URL and the token
// in each key slot: curl with Authorization, x-api-key, api-key,
// x-goog-api-key and ?key=, and Python's urllib.
func TestRun_CurlAndPython(t *testing.T) {
	e, api := sdkSetup(t)
	const script = `set -e
base="$AGENTKEYS_PROXY_URL/to/$UP/v1/chat/completions"
tok="$AGENTKEYS_PROXY_TOKEN_OPENAI"
body='{"model":"gpt-test"}'
for slot in "Authorization: Bearer $tok" "x-api-key: $tok" "api-key: $tok" "x-goog-api-key: $tok"; do
	curl -sS --fail -H "$slot" -H 'Content-Type: application/json' -d "$body" "$base" | grep -q 'hello from openai'
done
curl -sS --fail -H 'Content-Type: application/json' -d "$body" "$base?key=$tok" | grep -q 'hello from openai'
python3 - <<'PY'
import json, os, urllib.request
req = urllib.request.Request(os.environ["AGENTKEYS_PROXY_URL"] + "/to/" + os.environ["UP"] + "/v1/chat/completions",
    data=b'{"model":"gpt-test"}', headers={"Authorization": "Bearer " + os.environ["AGENTKEYS_PROXY_TOKEN_OPENAI"], "Content-Type": "application/json"})
out = json.load(urllib.request.urlopen(req))
assert out["choices"][0]["message"]["content"] == "hello from openai", out
print("python ok")
PY
echo curl-python-ok`
	var need []string
	for _, tool := range []string{"curl", "python3", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			need = append(need, tool)
		}
	}
	if len(need) > 0 {
		skipUnlessCI(t, "needs %v", need)
	}
	out := runBinary(t, e, t.TempDir(), []string{"UP=" + api.hostPort()}, "run", "--credential", "OpenAI", "--", "sh", "-c", script)
	if !strings.Contains(out, "python ok") || !strings.Contains(out, "curl-python-ok") {
		t.Fatalf("output:\n%s", out)
	}
	api.verify(t, 6)
}

// skipUnlessCI skips the test with the message, or fails it under CI=true,
// where every tool the tests use is installed.
func skipUnlessCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
