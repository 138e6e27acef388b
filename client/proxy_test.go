package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
)

// proxySetup is a fake server with one credential allowed to upstream,
// assigned to one agent.
func proxySetup(t *testing.T, upstream http.Handler) (c *client.Client, token string, up *httptest.Server) {
	t.Helper()
	f := newFakeServer(t)
	up = httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	c = mustClient(t, f.srv.URL, f.key)
	ctx := context.Background()
	cred, err := c.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Up", Type: agentkeys.APIKey,
		AllowedHosts: []string{strings.TrimPrefix(up.URL, "http://")}, Secret: agentkeys.Secret{Value: "sk-stream"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.CreateAgent(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.AssignCredential(ctx, a.ID, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c, g.ProxyToken, up
}

// TestProxy_StreamsResponse reads the first event of a stream before the
// upstream has written the second.
func TestProxy_StreamsResponse(t *testing.T) {
	release := make(chan struct{})
	c, token, up := proxySetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	}))
	defer close(release)
	resp, err := c.Proxy(t.Context(), &agentkeys.ProxyRequest{Token: token, URL: up.URL + "/events"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	release <- struct{}{}
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest = %q", rest)
	}
}

// TestProxy_StreamsRequest: the upstream receives the first part of the
// body before the caller has written the second.
func TestProxy_StreamsRequest(t *testing.T) {
	gotFirst := make(chan string, 1)
	c, token, up := proxySetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("upstream read: %v", err)
			return
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(buf)+string(rest)+" "+r.Header.Get("Authorization"))
	}))
	pr, pw := io.Pipe()
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Proxy(context.Background(), &agentkeys.ProxyRequest{Token: token, Method: "PUT", URL: up.URL + "/upload", Body: pr})
		done <- result{resp, err}
	}()
	pw.Write([]byte("part1"))
	select {
	case s := <-gotFirst:
		if s != "part1" {
			t.Fatalf("upstream got %q first", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not receive the first part while the body was still open")
	}
	pw.Write([]byte("-part2"))
	pw.Close()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	b, _ := io.ReadAll(res.resp.Body)
	// The upstream echoed the injected value: the hosted proxy replaced it.
	if string(b) != "PUT part1-part2 Bearer "+agentkeys.RedactedEcho {
		t.Fatalf("answer = %q", b)
	}
}

func TestProxy_Answers(t *testing.T) {
	c, token, up := proxySetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.example/steal", http.StatusFound)
		case "/spoof":
			// An upstream pretending to be the proxy: the header is
			// stripped, so this stays the upstream's 401.
			w.Header().Set(agentkeys.HeaderError, agentkeys.EUNAUTHORIZED)
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"upstream says no"}`)
		case "/head":
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("X-Method", r.Method)
		default:
			w.Header().Set("X-Method", r.Method)
			io.WriteString(w, "ok")
		}
	}))
	ctx := context.Background()
	t.Run("RedirectReturned", func(t *testing.T) {
		resp, err := c.Proxy(ctx, &agentkeys.ProxyRequest{Token: token, URL: up.URL + "/redirect"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://elsewhere.example/steal" {
			t.Fatalf("got %d %q, want the upstream's 302", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("UpstreamErrorIsAResponse", func(t *testing.T) {
		resp, err := c.Proxy(ctx, &agentkeys.ProxyRequest{Token: token, URL: up.URL + "/spoof"})
		if err != nil {
			t.Fatalf("upstream 401 became an error: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get(agentkeys.HeaderError) != "" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("Head", func(t *testing.T) {
		resp, err := c.Proxy(ctx, &agentkeys.ProxyRequest{Token: token, Method: "HEAD", URL: up.URL + "/head"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Method") != "HEAD" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("OddMethod", func(t *testing.T) {
		resp, err := c.Proxy(ctx, &agentkeys.ProxyRequest{Token: token, Method: "PROPFIND", URL: up.URL + "/"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Method") != "PROPFIND" {
			t.Fatalf("upstream saw %q", resp.Header.Get("X-Method"))
		}
	})
	for _, tc := range []struct {
		name string
		req  *agentkeys.ProxyRequest
		code string
	}{
		{"ErrNil", nil, agentkeys.EINVALID},
		{"ErrOwnerWithoutName", &agentkeys.ProxyRequest{URL: up.URL + "/"}, agentkeys.EINVALID},
		{"ErrTokenWithNewline", &agentkeys.ProxyRequest{Token: token + "\r\nX-Evil: 1", URL: up.URL + "/"}, agentkeys.EUNAUTHORIZED},
		{"ErrHeaderWithNewline", &agentkeys.ProxyRequest{Token: token, URL: up.URL + "/", Header: http.Header{"X-A": {"a\r\nb"}}}, agentkeys.EINVALID},
		{"ErrTrace", &agentkeys.ProxyRequest{Token: token, Method: "TRACE", URL: up.URL + "/"}, agentkeys.EINVALID},
		{"ErrConnect", &agentkeys.ProxyRequest{Token: token, Method: "CONNECT", URL: up.URL + "/"}, agentkeys.EINVALID},
		{"ErrBadMethod", &agentkeys.ProxyRequest{Token: token, Method: "GE T", URL: up.URL + "/"}, agentkeys.EINVALID},
		{"ErrWorkspaceKeyWithoutName", &agentkeys.ProxyRequest{Token: agentkeys.NewWorkspaceKey(), URL: up.URL + "/"}, agentkeys.EINVALID},
		{"ErrWrongWorkspaceKey", &agentkeys.ProxyRequest{Token: agentkeys.NewWorkspaceKey(), CredentialName: "Up", URL: up.URL + "/"}, agentkeys.EUNAUTHORIZED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Proxy(ctx, tc.req)
			if resp != nil {
				resp.Body.Close()
				t.Fatalf("got a response %d, want %s", resp.StatusCode, tc.code)
			}
			if agentkeys.ErrorCode(err) != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("OwnKeyByName", func(t *testing.T) {
		resp, err := c.Proxy(ctx, &agentkeys.ProxyRequest{CredentialName: "up", Method: "POST", URL: up.URL + "/x", Body: strings.NewReader("b")})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Method") != "POST" {
			t.Fatalf("upstream saw %q", resp.Header.Get("X-Method"))
		}
	})
}

// TestNoKeyInErrors: however a call fails — even against a server that
// echoes the Authorization header back — no error carries the API key or a
// proxy token.
func TestNoKeyInErrors(t *testing.T) {
	key := agentkeys.NewWorkspaceKey()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set(agentkeys.HeaderError, "UNAUTHORIZED")
		w.WriteHeader(401)
		json.NewEncoder(w).Encode(map[string]any{"error": "bad key " + auth + " " + strings.TrimPrefix(auth, "Bearer "), "code": "UNAUTHORIZED", "status": 401})
	}))
	defer echo.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{not json "+r.Header.Get("Authorization"))
	}))
	defer garbage.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	ctx := context.Background()
	token := agentkeys.NewProxyToken()
	for _, base := range []string{echo.URL, garbage.URL, closedURL} {
		c := mustClient(t, base, key)
		var errs []error
		_, err := c.Status(ctx)
		errs = append(errs, err)
		_, err = c.ListCredentials(ctx)
		errs = append(errs, err)
		_, err = c.FindCredential(ctx, "cred_x")
		errs = append(errs, err)
		_, err = c.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "x", Type: agentkeys.APIKey, Secret: agentkeys.Secret{Value: "v"}})
		errs = append(errs, err)
		for _, req := range []*agentkeys.ProxyRequest{
			{CredentialName: "x", URL: "https://api.example.com/"},
			{Token: token, URL: "https://api.example.com/"},
		} {
			resp, err := c.Proxy(ctx, req)
			if resp != nil {
				// An answer without X-Agentkeys-Error is the upstream's
				// (the garbage server's): not an error to check.
				resp.Body.Close()
				continue
			}
			errs = append(errs, err)
		}
		for _, err := range errs {
			if err == nil {
				t.Fatalf("%s: a call succeeded", base)
			}
			msg := err.Error() + " " + agentkeys.ErrorMessage(err) + " " + errText(err)
			if strings.Contains(msg, key) || strings.Contains(msg, token) {
				t.Fatalf("%s: error carries a secret: %v", base, err)
			}
		}
	}
}

func errText(err error) string {
	if e, ok := err.(*agentkeys.Error); ok {
		return e.Code + " " + e.Message
	}
	return err.Error()
}

func TestSignup(t *testing.T) {
	const password = "correct horse battery staple"
	newKey := agentkeys.NewWorkspaceKey()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/signup" || r.Header.Get("Authorization") != "" {
			w.WriteHeader(400)
			return
		}
		var in client.SignupInput
		json.NewDecoder(r.Body).Decode(&in)
		switch in.Email {
		case "taken@example.com":
			w.WriteHeader(409)
			json.NewEncoder(w).Encode(map[string]any{"error": "email taken (password " + in.Password + ")", "code": "CONFLICT", "status": 409})
		case "closed@example.com":
			w.WriteHeader(403)
			json.NewEncoder(w).Encode(map[string]any{"error": "sign-up is closed on this server", "code": "FORBIDDEN", "status": 403})
		case "bad@example.com":
			w.WriteHeader(201)
			io.WriteString(w, `{"workspace":{"id":"ws_1","name":"Acme"}}`)
		default:
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]any{"workspace": map[string]string{"id": "ws_1", "name": in.Workspace}, "apiKey": newKey})
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	res, err := client.Signup(ctx, client.Config{BaseURL: srv.URL}, client.SignupInput{Email: "a@example.com", Password: password, Workspace: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if res.APIKey != newKey || res.Workspace.ID != "ws_1" || res.Workspace.Name != "Acme" {
		t.Fatalf("result = %+v", res)
	}
	for _, tc := range []struct{ email, code string }{
		{"taken@example.com", agentkeys.ECONFLICT}, {"closed@example.com", agentkeys.EFORBIDDEN}, {"bad@example.com", agentkeys.EINTERNAL},
	} {
		_, err := client.Signup(ctx, client.Config{BaseURL: srv.URL}, client.SignupInput{Email: tc.email, Password: password, Workspace: "Acme"})
		if agentkeys.ErrorCode(err) != tc.code || strings.Contains(err.Error(), password) {
			t.Fatalf("%s: err = %v, want %s without the password", tc.email, err, tc.code)
		}
	}
}
