package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestProxy_FastUpstreamAnswerToBody: an upstream that answers as soon as it
// has read a request body must reach the agent whole. Without full duplex,
// Go's HTTP/1 server closes the agent's request body once the answer's
// header is written; the transport, still confirming the body's end, then
// failed its read, closed the upstream connection and cut the answer after
// its header: 1-3% of requests from Python's http.client through `agentkeys
// up`; here, without the fix, 4-10 of the 300 on every run.
func TestProxy_FastUpstreamAnswerToBody(t *testing.T) {
	answer := strings.Repeat("x", 4000)
	// The header goes out on its own, the body a moment later (as Python's
	// http.server writes them).
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		time.Sleep(time.Millisecond)
		io.WriteString(w, answer)
	})
	b := newMemBackend()
	cred := b.addCredential(t, "echo", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "sk_fast"})
	tok := b.assign(cred, "bot")
	p := newTestProxy(t, b, proxy.Config{})
	addr := strings.TrimPrefix(p.URL, "http://")
	const n = 300
	broken := 0
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"a":1}`
		_, err = io.WriteString(c, "POST /v1/proxy HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer "+tok+
			"\r\nX-Target-Url: "+up.URL+"/echo\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"+body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != answer {
			broken++
		}
	}
	if broken > 0 {
		t.Fatalf("%d of %d answers were cut off", broken, n)
	}
}
