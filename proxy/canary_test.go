package proxy_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestCanarySweep runs every path — success, denial, upstream refused,
// untrusted TLS, timeout, broken stream, a redirect keeping the query, a Set-Cookie
// repeating the session cookie — with canary credentials of every
// type, over HTTP and through Do, and checks that the canary (raw, base64,
// URL-encoded, and base64 of user:pass) is in no answer to the agent, no
// log line and no audit row. The upstream does receive it (it must).
func TestCanarySweep(t *testing.T) {
	rnd := make([]byte, 8)
	rand.Read(rnd)
	canary := "cnry/" + hex.EncodeToString(rnd) + "+x="
	forms := map[string]string{
		"raw":                canary,
		"base64":             base64.StdEncoding.EncodeToString([]byte(canary)),
		"base64url":          base64.URLEncoding.EncodeToString([]byte(canary)),
		"query-escaped":      url.QueryEscape(canary),
		"path-escaped":       url.PathEscape(canary),
		"base64 user:pass":   base64.StdEncoding.EncodeToString([]byte("user:" + canary)),
		"hex":                hex.EncodeToString([]byte(canary)),
		"json-escaped":       strings.Trim(mustJSON(canary), `"`),
		"random part (bare)": hex.EncodeToString(rnd),
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := l.Addr().String()
	l.Close()
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	var gotCanary int
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		case "/moved":
			// A redirect that keeps the query string, as many servers do
			// (trailing slash, http→https): the Location holds whatever
			// query parameter the proxy injected.
			w.Header().Set("Location", "/new?"+r.URL.RawQuery)
			w.Header().Set("Content-Location", "http://"+r.Host+"/here?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusMovedPermanently)
		case "/session":
			// A session refresh: the upstream sets the cookie it was sent.
			if c, err := r.Cookie("sid"); err == nil {
				http.SetCookie(w, &http.Cookie{Name: "sid", Value: c.Value, Path: "/", MaxAge: 3600})
			}
			io.WriteString(w, `{"ok":true}`)
		case "/broken":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	})
	tlsUp := newTLSUpstream(t, nil)

	b := newMemBackend()
	secrets := map[agentkeys.CredentialType]agentkeys.Secret{
		agentkeys.APIKey:       {Value: canary},
		agentkeys.OAuth:        {Value: canary},
		agentkeys.BasicAuth:    {Username: "user", Password: canary},
		agentkeys.Cookie:       {Value: "sid=" + canary},
		agentkeys.CustomHeader: {Headers: []agentkeys.Header{{Name: "X-Api-Key", Value: canary}}},
		agentkeys.QueryParam:   {Param: "key", Value: canary},
	}
	hosts := []string{up.hostPort(), closedAddr, tlsUp.hostPort()}
	tokens := map[agentkeys.CredentialType]string{}
	for typ, s := range secrets {
		tokens[typ] = b.assign(b.addCredential(t, "canary "+string(typ), typ, hosts, s), "agent-"+string(typ))
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := newTestProxy(t, b, proxy.Config{Logger: logger, ResponseHeaderTimeout: 150 * time.Millisecond})

	paths := []struct {
		name, target string
		status       int
	}{
		{"success", up.URL + "/ok?x=1", 200},
		{"denied", "https://evil.example/steal?x=1", 403},
		{"refused", "http://" + closedAddr + "/x?x=1", 502},
		{"tls", tlsUp.URL + "/x?x=1", 502},
		{"timeout", up.URL + "/slow?x=1", 504},
		{"broken", up.URL + "/broken?x=1", 200},
		{"redirect", up.URL + "/moved?x=1", 301},
		{"set-cookie", up.URL + "/session", 200},
		{"trace", up.URL + "/ok", 400},
	}
	var agentSaw strings.Builder
	for typ, tok := range tokens {
		for _, pth := range paths {
			t.Run(string(typ)+"/"+pth.name, func(t *testing.T) {
				hdr := http.Header{}
				if pth.name == "trace" {
					hdr.Set(agentkeys.HeaderTargetMethod, "TRACE")
				}
				resp := p.do(t, call{Token: tok, Target: pth.target, Header: hdr})
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != pth.status {
					t.Errorf("status = %d, want %d (%s)", resp.StatusCode, pth.status, body)
				}
				fmt.Fprintf(&agentSaw, "%d %v %s\n", resp.StatusCode, resp.Header, body)

				// The same through Do.
				dr, err := p.H.Do(context.Background(), &agentkeys.ProxyRequest{Token: tok, URL: pth.target, Header: hdr})
				if err != nil {
					fmt.Fprintf(&agentSaw, "Do error: %v %#v\n", err, err)
				} else {
					db, _ := io.ReadAll(dr.Body)
					dr.Body.Close()
					fmt.Fprintf(&agentSaw, "Do: %d %v %s\n", dr.StatusCode, dr.Header, db)
				}
			})
		}
	}
	// The upstream really received the canary on the success path.
	for _, r := range up.requests() {
		if strings.Contains(fmt.Sprint(r.Header, r.URL), forms["raw"]) || strings.Contains(fmt.Sprint(r.Header, r.URL), forms["base64 user:pass"]) ||
			strings.Contains(r.URL.RawQuery, forms["query-escaped"]) {
			gotCanary++
		}
	}
	if gotCanary == 0 {
		t.Fatal("the upstream never received the canary: the sweep proves nothing")
	}

	rows, _ := json.Marshal(b.auditRows())
	if len(b.auditRows()) < len(tokens)*len(paths)*2 {
		t.Fatalf("only %d audit rows for %d requests", len(b.auditRows()), len(tokens)*len(paths)*2)
	}
	for where, text := range map[string]string{"answers to the agent": agentSaw.String(), "log lines": logs.String(), "audit rows": string(rows)} {
		for form, v := range forms {
			if strings.Contains(text, v) {
				i := strings.Index(text, v)
				t.Errorf("canary (%s) found in %s: …%s…", form, where, text[max(0, i-200):min(len(text), i+len(v)+50)])
			}
		}
	}
	if !strings.Contains(logs.String(), `"decision":"error"`) || !strings.Contains(logs.String(), `"decision":"denied"`) {
		t.Fatalf("logs do not cover the failure paths:\n%s", logs.String())
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
