package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
)

// contract is sdk/cases.json, the behaviour the TypeScript, Python and Go
// SDKs share.
type contract struct {
	Cases []struct {
		Name       string   `json:"name"`
		SDKs       []string `json:"sdks"`
		Auth       string   `json:"auth"`
		Credential string   `json:"credential"`
		Request    struct {
			Method  string                     `json:"method"`
			Path    string                     `json:"path"`
			URL     string                     `json:"url"`
			Headers map[string]string          `json:"headers"`
			Body    map[string]json.RawMessage `json:"body"`
		} `json:"request"`
		Expect struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			JSON    json.RawMessage   `json:"json"`
			Events  []string          `json:"events"`
			Error   *struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			} `json:"error"`
			Echo *struct {
				Method            string            `json:"method"`
				Path              string            `json:"path"`
				Body              *string           `json:"body"`
				BodyBase64        string            `json:"bodyBase64"`
				BodyContains      string            `json:"bodyContains"`
				JSON              json.RawMessage   `json:"json"`
				ContentTypePrefix string            `json:"contentTypePrefix"`
				Headers           map[string]string `json:"headers"`
				AbsentHeaders     []string          `json:"absentHeaders"`
			} `json:"echo"`
		} `json:"expect"`
	} `json:"cases"`
	Webhooks struct {
		Seed []struct {
			Name, Secret, Body, Signature string
			Valid                         bool
		} `json:"seed"`
		Standard []struct {
			Name, Secret, ID, Timestamp, Body, Signature string
			Now                                          int64
			ToleranceSeconds                             int64
			Valid                                        bool
		} `json:"standard"`
	} `json:"webhooks"`
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	raw, err := os.ReadFile("../sdk/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("sdk/cases.json: %v", err)
	}
	return &c
}

// caseUpstream is the upstream sdk/cases.json describes: /status/N,
// /sse?id=X released by /release?id=X, anything else echoes.
type caseUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	released map[string]chan struct{}
}

func newCaseUpstream(t *testing.T) *caseUpstream {
	u := &caseUpstream{released: map[string]chan struct{}{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *caseUpstream) gate(id string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch, ok := u.released[id]
	if !ok {
		ch = make(chan struct{}, 8)
		u.released[id] = ch
	}
	return ch
}

var statusPath = regexp.MustCompile(`^/status/(\d{3})$`)

func (u *caseUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch m := statusPath.FindStringSubmatch(r.URL.Path); {
	case r.URL.Path == "/release":
		u.gate(r.URL.Query().Get("id")) <- struct{}{}
		io.WriteString(w, "ok")
	case m != nil:
		code, _ := strconv.Atoi(m[1])
		w.Header().Set("Content-Type", "application/json")
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/echo")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status": %d}`, code)
	case r.URL.Path == "/sse":
		gate := u.gate(r.URL.Query().Get("id"))
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, "data: one\n\n")
		rc.Flush()
		for _, ev := range []string{"two", "three"} {
			select {
			case <-gate:
				io.WriteString(w, "data: "+ev+"\n\n")
			case <-time.After(5 * time.Second):
				io.WriteString(w, "data: timeout\n\n")
				return
			}
			rc.Flush()
		}
	default:
		h := map[string]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		if r.Host != "" {
			h["host"] = r.Host
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.RequestURI(), "headers": h,
			"body": string(body), "bodyBase64": base64.StdEncoding.EncodeToString(body)})
	}
}

// deadHostPort is a loopback address nothing listens on.
func deadHostPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSDKCases runs sdk/cases.json with client.NewProxy against the real
// server's hosted proxy (server.New on SQLite, loopback targets allowed):
// once with a pxr_ token and once with the ak_ws_ key and For(name).
func TestSDKCases(t *testing.T) {
	c := loadContract(t)
	up := newCaseUpstream(t)
	dead := deadHostPort(t)
	s := newLiveServer(t)
	admin := mustClient(t, s.url, s.key)
	upHost := strings.TrimPrefix(up.URL, "http://")
	secret := "sk_echo_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cred, err := admin.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "echo", Type: agentkeys.APIKey,
		AllowedHosts: []string{upHost, dead}, Secret: agentkeys.Secret{Value: secret, RawResponses: true}}) // the echo upstream reflects the key
	if err != nil {
		t.Fatal(err)
	}
	agent, err := admin.CreateAgent(t.Context(), "bot")
	if err != nil {
		t.Fatal(err)
	}
	grant, err := admin.AssignCredential(t.Context(), agent.ID, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	sse := 0
	for _, tc := range c.Cases {
		if tc.SDKs != nil && !contains(tc.SDKs, "go") {
			continue
		}
		modes := []string{"token", "key"}
		if tc.Auth != "" && tc.Auth != "both" {
			modes = []string{tc.Auth}
		}
		for _, auth := range modes {
			t.Run(tc.Name+" ("+auth+")", func(t *testing.T) {
				token := map[string]string{"token": grant.ProxyToken, "key": s.key, "bad-token": "pxr_" + strings.Repeat("A", 43)}[auth]
				pc, err := client.NewProxy(token, s.url)
				if err != nil {
					t.Fatal(err)
				}
				name := tc.Credential
				if name == "" {
					name = map[bool]string{true: "echo", false: "ignored"}[auth == "key"]
				}
				hc := pc.For(name)
				target := up.URL + tc.Request.Path
				if tc.Request.URL != "" {
					target = strings.ReplaceAll(tc.Request.URL, "$DEAD", "http://"+dead)
				}
				sse++
				id := fmt.Sprintf("go-sse-%d", sse)
				if tc.Expect.Events != nil {
					target += "?id=" + id
				}
				method := tc.Request.Method
				if method == "" {
					method = http.MethodGet
				}
				body, ctype := caseBody(t, tc.Request.Body)
				req, err := http.NewRequestWithContext(t.Context(), method, target, body)
				if err != nil {
					t.Fatal(err)
				}
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				for k, v := range tc.Request.Headers {
					req.Header.Set(k, v)
				}
				resp, err := hc.Do(req)
				if want := tc.Expect.Error; want != nil {
					var pe *client.ProxyError
					if !errors.As(err, &pe) {
						t.Fatalf("want a ProxyError %s, got %v", want.Code, err)
					}
					if pe.Code != want.Code || pe.Status != want.Status || !strings.HasPrefix(pe.RequestID, "req_") || pe.Message == "" ||
						agentkeys.ErrorCode(err) != want.Code || strings.Contains(err.Error(), token) {
						t.Fatalf("error = %+v (%v)", pe, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tc.Expect.Status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.Expect.Status)
				}
				for k, v := range tc.Expect.Headers {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				if tc.Expect.JSON != nil {
					got, _ := io.ReadAll(resp.Body)
					jsonEqual(t, got, tc.Expect.JSON)
				}
				if e := tc.Expect.Echo; e != nil {
					var echo struct {
						Method, Path, Body, BodyBase64 string
						Headers                        map[string]string
					}
					if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
						t.Fatal(err)
					}
					switch {
					case e.Method != "" && echo.Method != e.Method:
						t.Errorf("method %s, want %s", echo.Method, e.Method)
					case e.Path != "" && echo.Path != e.Path:
						t.Errorf("path %s, want %s", echo.Path, e.Path)
					case e.Body != nil && echo.Body != *e.Body:
						t.Errorf("body %q, want %q", echo.Body, *e.Body)
					case e.BodyBase64 != "" && echo.BodyBase64 != e.BodyBase64:
						t.Errorf("body %s, want %s", echo.BodyBase64, e.BodyBase64)
					case e.BodyContains != "" && !strings.Contains(echo.Body, e.BodyContains):
						t.Errorf("body %q lacks %q", echo.Body, e.BodyContains)
					case !strings.HasPrefix(echo.Headers["content-type"], e.ContentTypePrefix):
						t.Errorf("content-type %q, want %q…", echo.Headers["content-type"], e.ContentTypePrefix)
					}
					if e.JSON != nil {
						jsonEqual(t, []byte(echo.Body), e.JSON)
					}
					for k, v := range e.Headers {
						if got, want := echo.Headers[k], strings.ReplaceAll(v, "$SECRET", secret); got != want {
							t.Errorf("upstream header %s = %q, want %q", k, got, want)
						}
					}
					for _, k := range e.AbsentHeaders {
						if _, ok := echo.Headers[k]; ok {
							t.Errorf("upstream got header %s", k)
						}
					}
				}
				if tc.Expect.Events != nil {
					var events []string
					sc := bufio.NewScanner(resp.Body)
					for sc.Scan() {
						ev, ok := strings.CutPrefix(sc.Text(), "data: ")
						if !ok {
							continue
						}
						events = append(events, ev)
						// Only now may the upstream send the next event: a
						// buffering client would see "timeout" instead.
						if ev != "three" && ev != "timeout" {
							r, err := http.Get(up.URL + "/release?id=" + id)
							if err != nil {
								t.Fatal(err)
							}
							r.Body.Close()
						}
					}
					if !reflect.DeepEqual(events, tc.Expect.Events) {
						t.Fatalf("events %q, want %q", events, tc.Expect.Events)
					}
				}
			})
		}
	}
}

// caseBody is a case's body in Go's terms: a reader (a pipe for "chunks",
// so its length is unknown and it streams) and a Content-Type when the
// encoding implies one.
func caseBody(t *testing.T, b map[string]json.RawMessage) (io.Reader, string) {
	switch {
	case b == nil:
		return nil, ""
	case b["json"] != nil:
		return bytes.NewReader(b["json"]), "application/json"
	case b["text"] != nil:
		var s string
		json.Unmarshal(b["text"], &s)
		return strings.NewReader(s), ""
	case b["base64"] != nil:
		var s string
		json.Unmarshal(b["base64"], &s)
		raw, _ := base64.StdEncoding.DecodeString(s)
		return bytes.NewReader(raw), ""
	case b["chunks"] != nil:
		var parts []string
		json.Unmarshal(b["chunks"], &parts)
		pr, pw := io.Pipe()
		go func() {
			for _, p := range parts {
				io.WriteString(pw, p)
			}
			pw.Close()
		}()
		return pr, ""
	case b["form"] != nil:
		var pairs [][2]string
		json.Unmarshal(b["form"], &pairs)
		v := url.Values{}
		for _, p := range pairs {
			v.Add(p[0], p[1])
		}
		return strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	}
	t.Fatalf("unknown body kind %v", b)
	return nil, ""
}

func jsonEqual(t *testing.T, got []byte, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON %s, want %s", got, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNewProxy_Defaults: the environment defaults, and the refusals made
// before any request.
func TestNewProxy_Defaults(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AGENTKEYS_") {
			t.Setenv(name, "")
		}
	}
	if _, err := client.NewProxy("", ""); agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), "AGENTKEYS_API_KEY") {
		t.Fatalf("no token: %v", err)
	}
	t.Setenv("AGENTKEYS_PROXY_TOKEN_B", "pxr_b")
	t.Setenv("AGENTKEYS_PROXY_TOKEN_A", "pxr_a")
	p, err := client.NewProxy("", "")
	if err != nil || p.ProxyURL() != "http://127.0.0.1:8787/v1/proxy" {
		t.Fatalf("defaults: %v %v", p, err)
	}
	t.Setenv("AGENTKEYS_PROXY_URL", "https://proxy.example/base/v1/proxy/")
	if p, _ := client.NewProxy("", ""); p.ProxyURL() != "https://proxy.example/base/v1/proxy" {
		t.Fatalf("AGENTKEYS_PROXY_URL: %s", p.ProxyURL())
	}
	// Which token: the first AGENTKEYS_PROXY_TOKEN_* by name, unless
	// AGENTKEYS_API_KEY is set; seen by an upstream... here by a fake proxy.
	var gotAuth, gotName string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotName = r.Header.Get("Authorization"), r.Header.Get("X-Credential-Name")
	}))
	defer fake.Close()
	t.Setenv("AGENTKEYS_PROXY_URL", fake.URL)
	p, _ = client.NewProxy("", "")
	if _, err := p.Get("https://api.example.com/"); err != nil || gotAuth != "Bearer pxr_a" || gotName != "" {
		t.Fatalf("env token: %q %q %v", gotAuth, gotName, err)
	}
	t.Setenv("AGENTKEYS_API_KEY", "ak_ws_k")
	p, _ = client.NewProxy("", "")
	if _, err := p.Get("https://api.example.com/"); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Fatalf("ak_ws_ without a name: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
	req.Header.Set("X-Credential-Name", "Stripe")
	if _, err := p.Do(req); err != nil || gotAuth != "Bearer ak_ws_k" || gotName != "Stripe" {
		t.Fatalf("ak_ws_ with X-Credential-Name: %q %q %v", gotAuth, gotName, err)
	}
	for _, bad := range []string{"ftp://x", "not a url", "http://user:pw@x"} {
		if _, err := client.NewProxy("pxr_x", bad); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("proxy URL %q: %v", bad, err)
		}
	}
	// Nobody listening: EUNAVAILABLE; a cancelled context: its error.
	dead, _ := client.NewProxy("pxr_x", "http://"+deadHostPort(t))
	if _, err := dead.Get("https://api.example.com/"); agentkeys.ErrorCode(err) != agentkeys.EUNAVAILABLE {
		t.Fatalf("dead proxy: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
	if _, err := dead.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
