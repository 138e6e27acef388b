package testkit

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// StripeMock starts a stripe-mock process (github.com/stripe/stripe-mock,
// pinned v0.203.0: `.ci/run` installs it) on loopback, HTTP and HTTPS both
// bound to 127.0.0.1, and returns its HTTP URL; it is killed at cleanup.
// The binary is $AGENTKEYS_STRIPE_MOCK, else stripe-mock on PATH; without
// one the test skips, or fails under CI=true.
func StripeMock(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("AGENTKEYS_STRIPE_MOCK")
	if bin == "" {
		bin, _ = exec.LookPath("stripe-mock")
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("stripe-mock is missing: .ci/run installs it")
		}
		t.Skip("stripe-mock is not installed (go install github.com/stripe/stripe-mock@v0.203.0 into a directory of yours, then set AGENTKEYS_STRIPE_MOCK)")
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	httpAddr, httpsAddr := free(), free()
	c := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	c.Stdout, c.Stderr = io.Discard, io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	base := "http://" + httpAddr
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+"/v1/customers", nil)
		req.Header.Set("Authorization", "Bearer sk_test_123")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
	}
	t.Fatal("stripe-mock did not come up within 15 s")
	return ""
}
