package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
)

// TestServe_SlowBodiesCutOff: many clients sending a body one byte at a
// time (to an API route and to the hosted proxy, with a valid token) are
// cut off once their time is up, instead of holding their connections; a
// normal request is answered meanwhile, and a steady upload of a larger
// body through the proxy still goes through.
func TestServe_SlowBodiesCutOff(t *testing.T) {
	const grace = time.Second
	s := newTestServer(t, serverOpts{allowLoopback: true, slowBody: grace})
	up := newUpstream(t)
	_, key := s.signup("Acme")
	c := s.createCredential(key, "K", "sk-slow-1", up.host())
	ag := s.createAgent(key, "bot")
	tok := s.assign(key, ag.ID, c.ID).ProxyToken
	addr := strings.TrimPrefix(s.url, "http://")

	heads := []string{
		"POST /api/v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
		"POST /api/v1/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
		"POST /v1/proxy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Target-Url: " + up.URL + "/upload\r\nContent-Length: 100000\r\n\r\n",
	}
	const clients = 30
	start := time.Now()
	var wg sync.WaitGroup
	held := make(chan time.Duration, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			io.WriteString(conn, heads[i%len(heads)])
			closed := make(chan struct{})
			go func() {
				// The server answers (or just closes) once the deadline passes.
				io.Copy(io.Discard, conn)
				close(closed)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			limit := time.After(15 * time.Second)
			for {
				select {
				case <-closed:
					held <- time.Since(start)
					return
				case <-tick.C:
					conn.Write([]byte{'x'}) // a trickle, far below any pace
				case <-limit:
					t.Errorf("client %d still connected after 15s", i)
					return
				}
			}
		}()
	}
	// Meanwhile the server answers others at once.
	time.Sleep(200 * time.Millisecond)
	s.do("GET", "/api/v1/workspace/status", key, nil).want(t, 200, "")
	wg.Wait()
	close(held)
	for d := range held {
		if d > grace+5*time.Second {
			t.Errorf("a slow client held its connection for %s", d)
		}
	}

	// A steady upload (well above the pace) through the proxy is not cut.
	body := strings.Repeat("0123456789abcdef", 64<<10/16)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ { // 8 × 8 KiB over ~1.6 s: longer than the grace
			io.WriteString(pw, body[i*8<<10:(i+1)*8<<10])
			time.Sleep(200 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", s.url+"/v1/proxy", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/upload")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("steady upload: %d %s", resp.StatusCode, b)
	}
}
