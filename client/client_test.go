package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/vaulttest"
)

// testKey is a well-formed workspace key for servers that do not check it.
var testKey = agentkeys.NewWorkspaceKey()

func mustClient(t *testing.T, base, key string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: base, APIKey: key})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestVault_FakeServer runs the conformance suite: client → REST API → a
// real local vault and the real proxy handler.
func TestVault_FakeServer(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) agentkeys.Vault {
		f := newFakeServer(t)
		return mustClient(t, f.srv.URL, f.key)
	})
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, base, key string
		insecure        bool
		wantBase        string
		wantErr         string // substring of the message; "" means no error
	}{
		{"Https", "https://agentkeys.example.com", testKey, false, "https://agentkeys.example.com", ""},
		{"TrailingSlash", "https://agentkeys.example.com/", testKey, false, "https://agentkeys.example.com", ""},
		{"APIPrefixDropped", "https://agentkeys.example.com/api/v1/", testKey, false, "https://agentkeys.example.com", ""},
		{"PathPrefixKept", "https://example.com/agentkeys", testKey, false, "https://example.com/agentkeys", ""},
		{"LoopbackHTTP", "http://127.0.0.1:8080", testKey, false, "http://127.0.0.1:8080", ""},
		{"LocalhostHTTP", "http://localhost:8080", testKey, false, "http://localhost:8080", ""},
		{"IPv6LoopbackHTTP", "http://[::1]:8080", testKey, false, "http://[::1]:8080", ""},
		{"RemoteHTTPAllowed", "http://10.0.0.5:8080", testKey, true, "http://10.0.0.5:8080", ""},
		{"ErrRemoteHTTP", "http://10.0.0.5:8080", testKey, false, "", "unencrypted"},
		{"ErrNoURL", "", testKey, false, "", "missing server URL"},
		{"ErrNoScheme", "agentkeys.example.com", testKey, false, "", "not a full URL"},
		{"ErrFTP", "ftp://agentkeys.example.com", testKey, false, "", "https://"},
		{"ErrUserInfo", "https://me:pw@agentkeys.example.com", testKey, false, "", "user info"},
		{"ErrQuery", "https://agentkeys.example.com/?x=1", testKey, false, "", "query"},
		{"ErrNoKey", "https://agentkeys.example.com", "", false, "", "missing API key"},
		{"ErrProxyToken", "https://agentkeys.example.com", agentkeys.NewProxyToken(), false, "", "ak_ws_"},
		{"ErrShortKey", "https://agentkeys.example.com", "ak_ws_short", false, "", "ak_ws_"},
		{"ErrKeyWithNewline", "https://agentkeys.example.com", testKey + "\nX-Evil: 1", false, "", "ak_ws_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(client.Config{BaseURL: tc.base, APIKey: tc.key, AllowInsecureHTTP: tc.insecure})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.BaseURL() != tc.wantBase {
					t.Fatalf("BaseURL = %q, want %q", c.BaseURL(), tc.wantBase)
				}
				if strings.Contains(c.String(), tc.key) || strings.Contains(fmt.Sprintf("%+v", c), tc.key) {
					t.Fatal("the client's string form contains the key")
				}
				return
			}
			if agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want EINVALID containing %q", err, tc.wantErr)
			}
			if tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error carries the key: %v", err)
			}
		})
	}
}

// TestErrorMapping checks how answers become *agentkeys.Error: the body's
// code first, then the X-Agentkeys-Error header, then the code for the
// status; the body's message, or one naming the status.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		header   string // X-Agentkeys-Error
		body     string
		wantCode string
		wantMsg  string // substring
	}{
		{"BodyCode", 404, "", `{"error":"Credential not found","code":"NOT_FOUND","status":404}`, agentkeys.ENOTFOUND, "Credential not found"},
		{"BodyCodeWinsOverStatus", 403, "", `{"error":"host not allowed","code":"DESTINATION_NOT_ALLOWED","status":403}`, agentkeys.EDESTINATION, "host not allowed"},
		{"BodyCodeWinsOverHeader", 409, "INTERNAL", `{"error":"taken","code":"CONFLICT","status":409}`, agentkeys.ECONFLICT, "taken"},
		{"HeaderCode", 403, "DESTINATION_NOT_ALLOWED", `{"error":"nope"}`, agentkeys.EDESTINATION, "nope"},
		{"Status400", 400, "", `{"error":"bad"}`, agentkeys.EINVALID, "bad"},
		{"Status401", 401, "", `{"error":"Unauthorized — missing or invalid API key"}`, agentkeys.EUNAUTHORIZED, "invalid API key"},
		{"Status403", 403, "", `{"error":"members may not"}`, agentkeys.EFORBIDDEN, "members may not"},
		{"Status404", 404, "", ``, agentkeys.ENOTFOUND, "404 Not Found"},
		{"Status409", 409, "", ``, agentkeys.ECONFLICT, "409"},
		{"Status413", 413, "", ``, agentkeys.ETOOLARGE, "413"},
		{"Status422", 422, "", ``, agentkeys.EINVALID, "422"},
		{"Status429", 429, "", `{"error":"slow down"}`, agentkeys.ERATELIMIT, "slow down"},
		{"Status500", 500, "", `oops`, agentkeys.EINTERNAL, "500 Internal Server Error"},
		{"Status502HTML", 502, "", `<html>bad gateway</html>`, agentkeys.EUPSTREAM, "502"},
		{"Status503", 503, "", `{"error":"server key not loaded"}`, agentkeys.EUNAVAILABLE, "server key not loaded"},
		{"Status504", 504, "", ``, agentkeys.ETIMEOUT, "504"},
		{"Redirect", 302, "", ``, agentkeys.EINTERNAL, "check the server URL"},
		{"BadCodeIgnored", 404, "", `{"error":"gone","code":"not a code; rm -rf"}`, agentkeys.ENOTFOUND, "gone"},
		{"UnknownStatus", 418, "", ``, agentkeys.EINTERNAL, "418"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set(agentkeys.HeaderError, tc.header)
				}
				if tc.status == 302 {
					w.Header().Set("Location", "https://elsewhere.example/")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := mustClient(t, srv.URL, testKey)
			_, err := c.ListCredentials(context.Background())
			var e *agentkeys.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %T %v, want *agentkeys.Error", err, err)
			}
			if e.Code != tc.wantCode || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, tc.wantCode, tc.wantMsg)
			}
		})
	}
	t.Run("RetryAfter", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":"rate limit exceeded","code":"RATE_LIMITED","status":429}`)
		}))
		defer srv.Close()
		_, err := mustClient(t, srv.URL, testKey).Status(context.Background())
		if agentkeys.ErrorCode(err) != agentkeys.ERATELIMIT || !strings.Contains(err.Error(), "retry after 7s") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NotJSON", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>a web page</html>")
		}))
		defer srv.Close()
		_, err := mustClient(t, srv.URL, testKey).ListAgents(context.Background())
		if agentkeys.ErrorCode(err) != agentkeys.EINTERNAL || !strings.Contains(err.Error(), "is it an agentkeys server") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = mustClient(t, "http://"+addr, testKey).Status(context.Background())
		if agentkeys.ErrorCode(err) != agentkeys.EUNAVAILABLE || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer srv.Close()
		defer close(block)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := mustClient(t, srv.URL, testKey).Status(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's error", err)
		}
	})
}

// TestRequests checks what goes on the wire: method, path, key, headers and
// body of each call.
func TestRequests(t *testing.T) {
	type seen struct {
		method, path, query, auth, ua, ctype, body string
	}
	var last atomic.Pointer[seen]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last.Store(&seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("User-Agent"), r.Header.Get("Content-Type"), string(b)})
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(204)
		case strings.HasSuffix(r.URL.Path, "/credentials") && r.Method == "GET":
			io.WriteString(w, `{"credentials":[]}`)
		case r.URL.Path == "/api/v1/audit":
			io.WriteString(w, `{"events":[],"nextBefore":0}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL + "/api/v1", APIKey: testKey, UserAgent: "test-agent/1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		call func() error
		want seen
	}{
		{"ListCredentials", func() error { _, err := c.ListCredentials(ctx); return err },
			seen{method: "GET", path: "/api/v1/credentials"}},
		{"CreateCredential", func() error {
			_, err := c.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Jira", Type: agentkeys.BasicAuth, AllowedHosts: []string{"acme.atlassian.net"},
				Secret: agentkeys.Secret{Username: "u", Password: "p"}})
			return err
		}, seen{method: "POST", path: "/api/v1/credentials", ctype: "application/json",
			body: `{"name":"Jira","type":"BASIC_AUTH","allowedHosts":["acme.atlassian.net"],"username":"u","password":"p"}`}},
		{"CreateCredentialHeaders", func() error {
			_, err := c.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Anthropic", Type: agentkeys.CustomHeader, Service: "anthropic",
				Secret: agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: "k"}}}})
			return err
		}, seen{method: "POST", path: "/api/v1/credentials", ctype: "application/json",
			body: `{"name":"Anthropic","type":"CUSTOM_HEADER","service":"anthropic","headers":[{"name":"x-api-key","value":"k"}]}`}},
		{"UpdateName", func() error {
			_, err := c.UpdateCredential(ctx, "cred_1", &agentkeys.CredentialUpdate{Name: str("new")})
			return err
		}, seen{method: "PATCH", path: "/api/v1/credentials/cred_1", ctype: "application/json", body: `{"name":"new"}`}},
		{"UpdateEmptyHosts", func() error {
			_, err := c.UpdateCredential(ctx, "cred_1", &agentkeys.CredentialUpdate{AllowedHosts: []string{}})
			return err
		}, seen{method: "PATCH", path: "/api/v1/credentials/cred_1", ctype: "application/json", body: `{"allowedHosts":[]}`}},
		{"UpdateSecret", func() error {
			_, err := c.UpdateCredential(ctx, "cred_1", &agentkeys.CredentialUpdate{Secret: &agentkeys.Secret{Username: "u", Password: "p"}})
			return err
		}, seen{method: "PATCH", path: "/api/v1/credentials/cred_1", ctype: "application/json", body: `{"password":"p","username":"u","value":""}`}},
		{"UpdateNothing", func() error {
			_, err := c.UpdateCredential(ctx, "cred_1", &agentkeys.CredentialUpdate{})
			return err
		}, seen{method: "PATCH", path: "/api/v1/credentials/cred_1", ctype: "application/json", body: `{}`}},
		{"DeleteCredential", func() error { return c.DeleteCredential(ctx, "cred_1") },
			seen{method: "DELETE", path: "/api/v1/credentials/cred_1"}},
		{"CreateAgent", func() error { _, err := c.CreateAgent(ctx, "bot"); return err },
			seen{method: "POST", path: "/api/v1/agents", ctype: "application/json", body: `{"name":"bot"}`}},
		{"DeleteAgent", func() error { return c.DeleteAgent(ctx, "agent_1") },
			seen{method: "DELETE", path: "/api/v1/agents/agent_1"}},
		{"Assign", func() error { _, err := c.AssignCredential(ctx, "agent_1", "cred_1"); return err },
			seen{method: "POST", path: "/api/v1/agents/agent_1/credentials", ctype: "application/json", body: `{"credentialId":"cred_1"}`}},
		{"Revoke", func() error { return c.RevokeCredential(ctx, "agent_1", "cred_1") },
			seen{method: "DELETE", path: "/api/v1/agents/agent_1/credentials/cred_1"}},
		{"AuditAll", func() error { _, err := c.ListAudit(ctx, agentkeys.AuditFilter{}); return err },
			seen{method: "GET", path: "/api/v1/audit"}},
		{"AuditFilter", func() error {
			_, err := c.ListAudit(ctx, agentkeys.AuditFilter{AgentID: "agent_1", CredentialID: "cred_1", Status: 404, Decision: "denied", Limit: 5, BeforeSeq: 9, AfterSeq: 3})
			return err
		}, seen{method: "GET", path: "/api/v1/audit", query: "after=3&agentId=agent_1&before=9&credentialId=cred_1&decision=denied&limit=5&status=404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last.Store(nil)
			if err := tc.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := last.Load()
			if got == nil {
				t.Fatal("no request reached the server")
			}
			tc.want.auth, tc.want.ua = "Bearer "+testKey, "test-agent/1"
			if *got != tc.want {
				t.Fatalf("request =\n  %+v\nwant\n  %+v", *got, tc.want)
			}
		})
	}
	// Ids that cannot be ids never reach the server.
	for _, id := range []string{"", "..", "cred_1/../../agents", "a b", "cred_1?x=1", "%2e"} {
		t.Run("ErrBadID/"+id, func(t *testing.T) {
			last.Store(nil)
			for _, err := range []error{
				c.DeleteCredential(ctx, id), c.DeleteAgent(ctx, id), c.RevokeCredential(ctx, id, "cred_1"), c.RevokeCredential(ctx, "agent_1", id),
				func() error { _, err := c.UpdateCredential(ctx, id, &agentkeys.CredentialUpdate{}); return err }(),
				func() error { _, err := c.AssignCredential(ctx, id, "cred_1"); return err }(),
			} {
				if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
					t.Fatalf("err = %v, want NOT_FOUND", err)
				}
			}
			if last.Load() != nil {
				t.Fatalf("a request reached the server: %+v", *last.Load())
			}
		})
	}
}
