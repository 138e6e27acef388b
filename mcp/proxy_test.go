package mcp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentkeys/agentkeys"
	akmcp "github.com/agentkeys/agentkeys/mcp"
)

func TestProxyRequest_ByCredentialName(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	up := newUpstream(t, nil)
	e.ok("create_credential", map[string]any{"name": "Local API", "type": "API_KEY", "value": "sk-local-1", "allowedHosts": []string{up.host()}})

	out := e.ok("proxy_request", map[string]any{"credentialName": "local api", "url": up.URL + "/v1/things?x=1"})
	req, _ := up.last(t)
	if got := req.Header.Get("Authorization"); got != "Bearer sk-local-1" {
		t.Errorf("upstream got Authorization %q", got)
	}
	if req.Method != http.MethodGet || req.URL.Path != "/v1/things" || req.URL.RawQuery != "x=1" {
		t.Errorf("upstream got %s %s", req.Method, req.URL)
	}
	if out["status"] != float64(200) || out["body"] != `{"ok":true}` || out["bodyEncoding"] != "text" || out["truncated"] != false || out["bodyBytes"] != float64(11) {
		t.Errorf("result = %v", out)
	}
	if h := out["headers"].(map[string]any); h["Content-Type"] != "application/json" {
		t.Errorf("headers = %v", h)
	}
	if id, _ := out["requestId"].(string); id == "" {
		t.Error("no requestId")
	}
	res := e.call("proxy_request", map[string]any{"credentialName": "Local API", "url": up.URL + "/v1/things"})
	if txt := text(res); !strings.HasPrefix(txt, "HTTP 200 OK\n") || !strings.Contains(txt, "Content-Type: application/json") || !strings.HasSuffix(txt, `{"ok":true}`) {
		t.Errorf("text fallback = %q", txt)
	}

	// Same path as /v1/proxy: the request is in the audit log.
	events, err := e.vault.ListAudit(context.Background(), agentkeys.AuditFilter{})
	if err != nil || len(events) < 2 {
		t.Fatalf("audit events = %d, %v", len(events), err)
	}
	if ev := events[0]; ev.CredentialName != "Local API" || ev.Host != up.host() || ev.Path != "/v1/things" {
		t.Errorf("audit event = %+v", ev)
	}
	e.assertNeverSeen("sk-local-1")
}

func TestProxyRequest_ByToken(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("created"))
	})
	e.ok("create_credential", map[string]any{"name": "Mailer", "value": "re_live_42", "allowedHosts": []string{up.host()}})
	e.ok("create_agent", map[string]any{"name": "bot"})
	grant := e.ok("assign_credential", map[string]any{"agent": "bot", "credential": "Mailer"})
	token := grant["proxyToken"].(string)

	out := e.ok("proxy_request", map[string]any{
		"proxyToken": token,
		"url":        up.URL + "/emails",
		"method":     "post",
		"headers":    map[string]any{"Content-Type": "application/json", "Authorization": "Bearer agent-guess"},
		"body":       `{"to":"a@example.com"}`,
	})
	req, body := up.last(t)
	if req.Method != http.MethodPost || string(body) != `{"to":"a@example.com"}` || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("upstream got %s %q %v", req.Method, body, req.Header)
	}
	if got := req.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer re_live_42" {
		t.Errorf("upstream Authorization = %q, want only the injected one", got)
	}
	if out["status"] != float64(201) || out["body"] != "created" {
		t.Errorf("result = %v", out)
	}
	events, _ := e.vault.ListAudit(context.Background(), agentkeys.AuditFilter{})
	if len(events) == 0 || events[0].AgentName != "bot" {
		t.Errorf("audit does not name the agent: %+v", events)
	}

	// A new assignment revokes the old token; deleting the agent revokes all.
	newer := e.ok("assign_credential", map[string]any{"agent": "bot", "credential": "Mailer"})["proxyToken"].(string)
	n := up.count()
	e.fail("proxy_request", map[string]any{"proxyToken": token, "url": up.URL + "/emails"}, "assign_credential", "code UNAUTHORIZED")
	e.ok("proxy_request", map[string]any{"proxyToken": newer, "url": up.URL + "/emails"})
	e.ok("delete_agent", map[string]any{"agent": "bot"})
	e.fail("proxy_request", map[string]any{"proxyToken": newer, "url": up.URL + "/emails"}, "code UNAUTHORIZED")
	if up.count() != n+1 {
		t.Errorf("upstream got %d requests, want %d (refused requests must not reach it)", up.count(), n+1)
	}
	e.assertNeverSeen("re_live_42")
}

func TestProxyRequest_UpstreamStatusIsNotAToolError(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such thing", http.StatusNotFound)
	})
	e.ok("create_credential", map[string]any{"name": "API", "value": "v", "allowedHosts": []string{up.host()}})
	out := e.ok("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/missing", "method": "DELETE"})
	if out["status"] != float64(404) || out["body"] != "no such thing\n" {
		t.Errorf("result = %v", out)
	}
}

func TestProxyRequest_Bodies(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff, 0xfe}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // 200 KiB
	utf := strings.Repeat("é", 600)                             // 1200 bytes of 2-byte runes
	e := newEnv(t, akmcp.Options{})
	small := &env{t: t, vault: e.vault, logs: &syncBuffer{}}
	srv, err := akmcp.New(e.vault, akmcp.Options{MaxResponseBytes: 1001})
	if err != nil {
		t.Fatal(err)
	}
	small.server, small.client = srv, startClient(t, srv)

	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(binary)
		case "/big":
			w.Write(big)
		case "/utf":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(utf))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	e.ok("create_credential", map[string]any{"name": "API", "value": "v", "allowedHosts": []string{up.host()}})

	out := e.ok("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/png"})
	got, err := base64.StdEncoding.DecodeString(out["body"].(string))
	if out["bodyEncoding"] != "base64" || err != nil || !bytes.Equal(got, binary) || out["bodyBytes"] != float64(len(binary)) {
		t.Errorf("binary result = %v", out)
	}

	out = e.ok("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/big"})
	if out["truncated"] != true || out["bodyBytes"] != float64(akmcp.DefaultMaxResponseBytes) || out["body"] != string(big[:akmcp.DefaultMaxResponseBytes]) {
		t.Errorf("big result: truncated=%v bodyBytes=%v len=%d", out["truncated"], out["bodyBytes"], len(out["body"].(string)))
	}
	if txt := text(e.call("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/big"})); !strings.HasSuffix(txt, "[body truncated at 102400 bytes]") {
		t.Errorf("text fallback does not say it was truncated: …%s", txt[len(txt)-80:])
	}

	// A cut in the middle of a UTF-8 sequence stays text, minus the broken rune.
	out = small.ok("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/utf"})
	body := out["body"].(string)
	if out["bodyEncoding"] != "text" || out["truncated"] != true || body != strings.Repeat("é", 500) || !utf8.ValidString(body) {
		t.Errorf("utf result: encoding=%v truncated=%v len=%d", out["bodyEncoding"], out["truncated"], len(body))
	}

	out = e.ok("proxy_request", map[string]any{"credentialName": "API", "url": up.URL + "/empty", "method": "HEAD"})
	if out["status"] != float64(204) || out["body"] != "" || out["truncated"] != false {
		t.Errorf("empty result = %v", out)
	}
}

func TestProxyRequest_Refused(t *testing.T) {
	e := newEnv(t, akmcp.Options{})
	up := newUpstream(t, nil)
	const canary = "CANARY-proxy-refused-7319"
	e.ok("create_credential", map[string]any{"name": "API", "value": canary, "allowedHosts": []string{up.host()}})
	e.ok("create_credential", map[string]any{"name": "Remote", "value": canary + "-2", "allowedHosts": []string{"api.example.com"}})
	url := up.URL + "/x"
	tests := []struct {
		name string
		args map[string]any
		want []string
	}{
		{"not on allowlist", map[string]any{"credentialName": "API", "url": "https://evil.example.net/steal"}, []string{"not on this credential's allowed hosts", "list_credentials", "code DESTINATION_NOT_ALLOWED"}},
		{"plain http to a remote host", map[string]any{"credentialName": "Remote", "url": "http://api.example.com/x"}, []string{"use https", "code DESTINATION_NOT_ALLOWED"}},
		{"unknown credential", map[string]any{"credentialName": "Nope", "url": url}, []string{`no credential named "Nope"`, "list_credentials", "code NOT_FOUND"}},
		{"neither token nor name", map[string]any{"url": url}, []string{"credentialName", "proxyToken", "code BAD_REQUEST"}},
		{"both token and name", map[string]any{"url": url, "credentialName": "API", "proxyToken": "pxr_" + strings.Repeat("a", 43)}, []string{"not both", "code BAD_REQUEST"}},
		{"not a token", map[string]any{"url": url, "proxyToken": canary}, []string{"start with pxr_", "code UNAUTHORIZED"}},
		{"unknown token", map[string]any{"url": url, "proxyToken": "pxr_" + strings.Repeat("a", 43)}, []string{"assign_credential", "code UNAUTHORIZED"}},
		{"workspace key without name", map[string]any{"url": url, "proxyToken": "ak_ws_" + strings.Repeat("b", 43)}, []string{"needs credentialName", "code BAD_REQUEST"}},
		{"missing url", map[string]any{"credentialName": "API"}, []string{"missing url", "code BAD_REQUEST"}},
		{"relative url", map[string]any{"credentialName": "API", "url": "/v1/things"}, []string{"code BAD_REQUEST"}},
		{"ftp url", map[string]any{"credentialName": "API", "url": "ftp://" + up.host() + "/x"}, []string{"https://", "code BAD_REQUEST"}},
		{"bad method", map[string]any{"credentialName": "API", "url": url, "method": "TRACE"}, []string{`method "TRACE" is not supported`, "code BAD_REQUEST"}},
		{"body on GET", map[string]any{"credentialName": "API", "url": url, "body": "x"}, []string{"cannot carry a body", "code BAD_REQUEST"}},
		{"bad header name", map[string]any{"credentialName": "API", "url": url, "headers": map[string]any{"Bad Header": "x"}}, []string{"not a valid HTTP header name", "code BAD_REQUEST"}},
		{"header with newline", map[string]any{"credentialName": "API", "url": url, "headers": map[string]any{"X-A": "a\r\nX-B: b"}}, []string{"line break", "code BAD_REQUEST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fail("proxy_request", tt.args, tt.want...)
		})
	}
	if up.count() != 0 {
		t.Errorf("refused requests reached the upstream %d times", up.count())
	}
	e.assertNeverSeen(canary)
}

func TestProxyRequest_UpstreamFailures(t *testing.T) {
	e := newEnv(t, akmcp.Options{RequestTimeout: 500 * time.Millisecond})
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	const canary = "CANARY-query-param-5521"
	e.ok("create_credential", map[string]any{"name": "Dead", "type": "QUERY_PARAM", "param": "key", "value": canary, "allowedHosts": []string{dead}})
	e.fail("proxy_request", map[string]any{"credentialName": "Dead", "url": "http://" + dead + "/x?y=1"}, "code UPSTREAM_UNREACHABLE")

	// Headers arrive, then the body stalls: what arrived is returned, flagged truncated.
	stall := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	e.ok("create_credential", map[string]any{"name": "Slow", "type": "QUERY_PARAM", "param": "key", "value": canary + "-2", "allowedHosts": []string{stall.host()}})
	out := e.ok("proxy_request", map[string]any{"credentialName": "Slow", "url": stall.URL + "/stream"})
	if out["body"] != "partial" || out["truncated"] != true {
		t.Errorf("stalled result = %v", out)
	}
	if txt := text(e.call("proxy_request", map[string]any{"credentialName": "Slow", "url": stall.URL + "/stream"})); !strings.HasSuffix(txt, "partial\n[body incomplete: the upstream did not finish sending it in time]") {
		t.Errorf("stalled text = %q", txt)
	}
	req, _ := stall.last(t)
	if req.URL.Query().Get("key") != canary+"-2" {
		t.Errorf("upstream did not get the query parameter injected: %q", req.URL.RawQuery)
	}
	e.assertNeverSeen(canary)
}

// TestCanary_NeverInAnyResult walks every tool with one credential whose
// value is a canary, and checks no result or log line ever shows it.
func TestCanary_NeverInAnyResult(t *testing.T) {
	const canary = "sk-CANARY-8f3a91c2d7e4"
	e := newEnv(t, akmcp.Options{})
	up := newUpstream(t, nil)
	e.ok("create_credential", map[string]any{"name": "Canary", "value": canary, "allowedHosts": []string{up.host()}})
	e.ok("create_credential", map[string]any{"name": "Canary Headers", "headers": map[string]any{"X-Api-Key": canary}, "allowedHosts": []string{up.host()}})
	e.ok("create_credential", map[string]any{"name": "Canary Basic", "username": "user", "password": canary, "allowedHosts": []string{up.host()}})
	e.fail("create_credential", map[string]any{"name": "canary", "value": canary, "allowedHosts": []string{up.host()}}, "already exists")
	e.ok("list_credentials", nil)
	e.ok("create_agent", map[string]any{"name": "a1", "credentials": []string{"Canary", "Canary Headers", "Canary Basic"}})
	e.ok("list_agents", nil)
	tok := e.ok("assign_credential", map[string]any{"agent": "a1", "credential": "Canary"})["proxyToken"].(string)
	for _, name := range []string{"Canary", "Canary Headers", "Canary Basic"} {
		e.ok("proxy_request", map[string]any{"credentialName": name, "url": up.URL + "/ok"})
		e.fail("proxy_request", map[string]any{"credentialName": name, "url": "https://elsewhere.example.com/"}, "code DESTINATION_NOT_ALLOWED")
	}
	e.ok("proxy_request", map[string]any{"proxyToken": tok, "url": up.URL + "/ok"})
	e.fail("proxy_request", map[string]any{"proxyToken": tok, "url": "https://elsewhere.example.com/"}, "code DESTINATION_NOT_ALLOWED")
	if req, _ := up.last(t); req.Header.Get("Authorization") != "Bearer "+canary {
		t.Fatalf("the upstream did not get the canary injected")
	}
	e.ok("delete_agent", map[string]any{"agent": "a1"})
	e.fail("proxy_request", map[string]any{"proxyToken": tok, "url": up.URL + "/ok"}, "code UNAUTHORIZED")
	e.ok("delete_credential", map[string]any{"credential": "Canary"})
	e.fail("proxy_request", map[string]any{"credentialName": "Canary", "url": up.URL + "/ok"}, "code NOT_FOUND")
	e.assertNeverSeen(canary)
}

// echoUpstream answers with every request header and the query, in the
// body and in response headers: the worst case of an API that repeats what
// it was sent.
func echoUpstream(t *testing.T) *upstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for k, vs := range r.Header {
			for _, v := range vs {
				b.WriteString(k + ": " + v + "\n")
				w.Header().Add("X-Echo-"+k, v)
			}
		}
		b.WriteString("query: " + r.URL.RawQuery + "\n")
		switch r.URL.Path {
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(append([]byte{0xff, 0, 0xfe}, b.String()...))
		case "/cut":
			// The value straddles the response limit of the small server.
			w.Write([]byte(strings.Repeat(".", 990) + r.Header.Get("Authorization")))
		default:
			w.Write([]byte(b.String()))
		}
	})
}

func TestProxyRequest_RedactsEchoedCredential(t *testing.T) {
	const secret = "sk-echo-CANARY-99127"
	e := newEnv(t, akmcp.Options{})
	up := echoUpstream(t)
	hosts := []string{up.host()}
	e.ok("create_credential", map[string]any{"name": "Key", "value": secret, "allowedHosts": hosts})
	e.ok("create_credential", map[string]any{"name": "Basic", "username": "user", "password": secret, "allowedHosts": hosts})
	e.ok("create_credential", map[string]any{"name": "Headers", "headers": map[string]any{"X-Api-Key": secret, "X-Other": "x" + secret + "y"}, "allowedHosts": hosts})
	e.ok("create_credential", map[string]any{"name": "Query", "param": "key", "value": secret + " &=/", "allowedHosts": hosts})
	e.ok("create_credential", map[string]any{"name": "Cookie", "type": "COOKIE", "value": "sid=" + secret + "; theme=dark", "allowedHosts": hosts})
	e.ok("create_agent", map[string]any{"name": "bot", "credentials": []string{"Key"}})
	tok := e.ok("assign_credential", map[string]any{"agent": "bot", "credential": "Key"})["proxyToken"].(string)

	for _, tt := range []struct {
		name string
		args map[string]any
	}{
		{"api key", map[string]any{"credentialName": "Key", "url": up.URL + "/"}},
		{"api key by token", map[string]any{"proxyToken": tok, "url": up.URL + "/"}},
		{"basic auth", map[string]any{"credentialName": "Basic", "url": up.URL + "/"}},
		{"custom headers", map[string]any{"credentialName": "Headers", "url": up.URL + "/"}},
		{"query param", map[string]any{"credentialName": "Query", "url": up.URL + "/?a=1"}},
		{"cookie", map[string]any{"credentialName": "Cookie", "url": up.URL + "/"}},
		{"binary body", map[string]any{"credentialName": "Key", "url": up.URL + "/binary"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.call("proxy_request", tt.args)
			out, _ := res.StructuredContent.(map[string]any)
			if res.IsError || out == nil {
				t.Fatalf("proxy_request failed: %s", text(res))
			}
			if n, _ := out["redacted"].(float64); n < 1 {
				t.Errorf("redacted = %v, want at least 1", out["redacted"])
			}
			body := out["body"].(string)
			if out["bodyEncoding"] == "base64" {
				raw, _ := base64.StdEncoding.DecodeString(body)
				body = string(raw)
			}
			if !strings.Contains(body, akmcp.Redacted) || !strings.Contains(text(res), "echoed the credential value back") {
				t.Errorf("body %q / text do not show the redaction", body)
			}
		})
	}
	// The upstream really got the values; the model never saw them.
	if req, _ := up.last(t); req.Header.Get("Authorization") != "Bearer "+secret {
		t.Fatalf("upstream Authorization = %q", req.Header.Get("Authorization"))
	}
	e.assertNeverSeen(secret)
	e.assertNeverSeen(base64.StdEncoding.EncodeToString([]byte("user:" + secret)))
	e.assertNeverSeen("sk-echo-CANARY-99127+%26%3D%2F")

	// A value cut by the response limit does not leak its first part.
	small := &env{t: t, vault: e.vault, logs: &syncBuffer{}}
	srv, err := akmcp.New(e.vault, akmcp.Options{MaxResponseBytes: 1001})
	if err != nil {
		t.Fatal(err)
	}
	small.server, small.client = srv, startClient(t, srv)
	out := small.ok("proxy_request", map[string]any{"credentialName": "Key", "url": up.URL + "/cut"})
	if body := out["body"].(string); out["truncated"] != true || !strings.HasSuffix(body, "Bearer "+akmcp.Redacted) {
		t.Errorf("cut body ends %q", body[len(body)-40:])
	}
	small.assertNeverSeen(secret[:8])
}

// remoteVault hides the local vault's ProxyBackend, as a remote workspace
// client does: MCP cannot read the secret, yet echoes are still redacted,
// because the redaction is the proxy's, whichever backend runs it.
type remoteVault struct{ agentkeys.Vault }

func TestProxyRequest_RedactsWithoutBackend(t *testing.T) {
	v := mustOpenVault(t)
	srv, err := akmcp.New(remoteVault{v}, akmcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, vault: v, server: srv, client: startClient(t, srv), logs: &syncBuffer{}}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write([]byte("you sent " + r.Header.Get("Authorization")))
		zw.Close()
	})
	e.ok("create_credential", map[string]any{"name": "Key", "value": "sk-remote-CANARY-123", "allowedHosts": []string{up.host()}})
	out := e.ok("proxy_request", map[string]any{"credentialName": "Key", "url": up.URL + "/", "headers": map[string]any{"Accept-Encoding": "br, gzip"}})
	if out["status"] != float64(200) || out["redacted"] != float64(2) || out["body"] != "you sent Bearer "+akmcp.Redacted {
		t.Errorf("result = %v", out)
	}
	e.assertNeverSeen("sk-remote-CANARY-123")
}
