package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// TestProxy_RedirectDropsInjectedQueryParam: a 3xx that repeats the query
// string would give the agent the QUERY_PARAM secret; the proxy removes that
// parameter from Location and Content-Location and keeps everything else.
func TestProxy_RedirectDropsInjectedQueryParam(t *testing.T) {
	tests := []struct {
		name, location, want string
	}{
		{"Relative", "/new?{q}", "/new?a=1&b=2"},
		{"Absolute", "https://api.example.com/v2/x?{q}#frag", "https://api.example.com/v2/x?a=1&b=2#frag"},
		{"EscapedName", "/new?api%5Fkey=s3cret-value&a=1", "/new?a=1"},
		{"OnlyTheSecret", "/new?api_key=s3cret-value", "/new"},
		{"NoQuery", "/new", "/new"},
		{"OtherParamKept", "/new?api_keys=1&xapi_key=2", "/new?api_keys=1&xapi_key=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				loc := strings.ReplaceAll(tt.location, "{q}", r.URL.RawQuery)
				w.Header().Set("Location", loc)
				w.Header().Set("Content-Location", loc)
				w.WriteHeader(http.StatusFound)
			})
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "q", agentkeys.QueryParam, []string{up.hostPort()},
				agentkeys.Secret{Param: "api_key", Value: "s3cret-value"}), "a")
			p := newTestProxy(t, b, proxy.Config{})
			resp := p.do(t, call{Token: tok, Target: up.URL + "/old?a=1&api_key=agents&b=2"})
			readAll(t, resp)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := up.last(t).URL.Query().Get("api_key"); got != "s3cret-value" {
				t.Fatalf("upstream got api_key %q", got)
			}
			wantValues(t, resp.Header, "Location", tt.want)
			wantValues(t, resp.Header, "Content-Location", tt.want)
		})
	}
}

// TestProxy_SetCookieForInjectedCookieDropped: the upstream's Set-Cookie for
// a cookie the proxy injects (a session refresh or rotation) would give the
// agent the secret or its successor; it is removed, other cookies are kept.
func TestProxy_SetCookieForInjectedCookieDropped(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "sid=rotated-session; Path=/; HttpOnly")
		w.Header().Add("Set-Cookie", "csrftoken=new-csrf")
		w.Header().Add("Set-Cookie", "theme=dark; Path=/")
		w.Header().Add("Set-Cookie", "sidecar=1")
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "c", agentkeys.Cookie, []string{up.hostPort()},
		agentkeys.Secret{Value: "sid=real-session; csrftoken=real-csrf"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL + "/x", Header: http.Header{"Cookie": {"theme=light"}}})
	readAll(t, resp)
	if got := up.last(t).Header.Get("Cookie"); got != "theme=light; sid=real-session; csrftoken=real-csrf" {
		t.Fatalf("upstream Cookie %q", got)
	}
	wantValues(t, resp.Header, "Set-Cookie", "theme=dark; Path=/", "sidecar=1")
}

// TestProxy_LinkHeaderDropsInjectedQueryParam: pagination links that repeat
// the query string (RFC 8288 Link) lose the injected parameter too.
func TestProxy_LinkHeaderDropsInjectedQueryParam(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.RawQuery
		w.Header().Add("Link", `<https://api.example.com/items?`+q+`&page=2>; rel="next", </items?page=9&`+q+`>; rel="last"`)
		w.Header().Add("Link", `<https://api.example.com/docs>; rel="help"`)
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "q", agentkeys.QueryParam, []string{up.hostPort()},
		agentkeys.Secret{Param: "api_key", Value: "s3cret-value"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL + "/items?per_page=5"})
	readAll(t, resp)
	wantValues(t, resp.Header, "Link",
		`<https://api.example.com/items?per_page=5&page=2>; rel="next", </items?page=9&per_page=5>; rel="last"`,
		`<https://api.example.com/docs>; rel="help"`)
}
