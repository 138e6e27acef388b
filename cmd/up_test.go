package cmd_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/cmd"
)

// countingWriter records each Write it gets.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *countingWriter) get() (n int, all string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes), strings.Join(c.writes, "")
}

// TestBatchWriter: lines are held and written together, in order, on
// Flush, when the batch is full, and on Close; after Close, straight through.
func TestBatchWriter(t *testing.T) {
	out := &countingWriter{}
	b := cmd.NewBatchWriter(out, time.Hour)
	var want strings.Builder
	for i := range 5 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := b.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if n, _ := out.get(); n != 0 {
		t.Fatalf("%d writes before the interval or a flush", n)
	}
	b.Flush()
	if n, all := out.get(); n != 1 || all != want.String() {
		t.Fatalf("after Flush: %d writes, %q", n, all)
	}

	// A full batch is written by the Write that filled it.
	big := strings.Repeat("x", 1000) + "\n"
	for range cmd.MaxHeldLog / len(big) {
		b.Write([]byte(big))
		want.WriteString(big)
	}
	if n, _ := out.get(); n != 1 {
		t.Fatalf("%d writes before the batch was full", n)
	}
	b.Write([]byte(big))
	want.WriteString(big)
	if n, all := out.get(); n != 2 || all != want.String() {
		t.Fatalf("full batch: %d writes, %d bytes, want 2 writes, %d bytes", n, len(all), want.Len())
	}

	b.Write([]byte("held\n"))
	want.WriteString("held\n")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("after close\n"))
	want.WriteString("after close\n")
	if n, all := out.get(); n != 4 || all != want.String() {
		t.Fatalf("after Close: %d writes, %q", n, all)
	}
}

// TestBatchWriter_Interval: a held line is written without a Flush.
func TestBatchWriter_Interval(t *testing.T) {
	out := &countingWriter{}
	b := cmd.NewBatchWriter(out, time.Millisecond)
	defer b.Close()
	b.Write([]byte("soon\n"))
	waitFor(t, func() bool { _, all := out.get(); return all == "soon\n" })
}

// TestUp_LogsRequests: `up` logs a line per proxied request; the lines
// reach stderr while it runs (not only at exit), before its own
// "Shutting down", and never with the secret.
func TestUp_LogsRequests(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.must("credentials", "add", "--name", "Local", "--value", "sk-logged", "--allow-host", up.host())
	tok := strings.TrimSpace(e.must("agents", "create", "--name", "bot", "--credential", "Local"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, errOut, done := e.startUp(t, ctx, "--listen", "127.0.0.1:0")
	const n = 3
	for i := range n {
		req, _ := http.NewRequest("GET", base+"/v1/proxy", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(agentkeys.HeaderTargetURL, fmt.Sprintf("%s/r%d", up.URL, i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, func() bool { return strings.Count(errOut.String(), "msg=\"proxy request\"") == n })
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("up exit %d: %s", r.code, errOut.String())
	}
	stderr := errOut.String()
	if stop := strings.Index(stderr, "Shutting down"); stop < strings.LastIndex(stderr, "proxy request") || !strings.HasSuffix(stderr, "Stopped.\n") {
		t.Errorf("stderr out of order:\n%s", stderr)
	}
	if strings.Contains(stderr, "sk-logged") {
		t.Errorf("the secret reached the log:\n%s", stderr)
	}
}
