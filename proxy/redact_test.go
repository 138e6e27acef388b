package proxy_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// echoUpstream reflects everything it was sent, in the body and in the
// response headers agents follow or show (Location, Refresh, Link…), the
// way debugging endpoints and some error pages do.
func echoUpstream(t *testing.T) *upstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var all []string
		for k, vv := range r.Header {
			for _, v := range vv {
				all = append(all, k+": "+v)
			}
		}
		all = append(all, "url: "+r.URL.String(), "query: "+r.URL.RawQuery)
		dump := strings.Join(all, "\n")
		for _, h := range []string{"Location", "X-Location", "Refresh", "Set-Cookie2", "Link", "Content-Location", "X-Debug", "Www-Authenticate"} {
			w.Header().Set(h, "/next?"+r.URL.RawQuery+"&echo="+url.QueryEscape(dump))
		}
		w.Header().Set("X-Raw-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Raw-Cookie", r.Header.Get("Cookie"))
		js, _ := json.Marshal(map[string]any{"headers": r.Header, "url": r.URL.String(), "args": r.URL.Query()})
		io.WriteString(w, dump+"\n")
		w.Write(js)
		io.WriteString(w, "\n"+base64.StdEncoding.EncodeToString([]byte(dump)))
	})
}

// TestProxy_RedactsEchoes: for every credential type, every form of the
// value that an echo can carry is gone from what the agent receives, in
// every header and in the body.
func TestProxy_RedactsEchoes(t *testing.T) {
	const value = "sk-CANARY-echo/+&=?x y"
	tests := []struct {
		typ    agentkeys.CredentialType
		secret agentkeys.Secret
		query  string
		forbid []string
	}{
		{agentkeys.APIKey, agentkeys.Secret{Value: value}, "", nil},
		{agentkeys.OAuth, agentkeys.Secret{Value: value, RefreshToken: "rt-CANARY-refresh"}, "", nil},
		{agentkeys.BasicAuth, agentkeys.Secret{Username: "ada", Password: value}, "",
			[]string{base64.StdEncoding.EncodeToString([]byte("ada:" + value))}},
		{agentkeys.Cookie, agentkeys.Secret{Value: "sid=CANARYsid123; csrf=CANARYcsrf456; theme=dark"}, "",
			[]string{"CANARYsid123", "CANARYcsrf456"}},
		{agentkeys.CustomHeader, agentkeys.Secret{Headers: []agentkeys.Header{{Name: "x-api-key", Value: value}, {Name: "x-second", Value: "CANARY-second-hdr"}}}, "",
			[]string{"CANARY-second-hdr"}},
		{agentkeys.QueryParam, agentkeys.Secret{Param: "key", Value: value}, "a=1&b=2", nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			up := echoUpstream(t)
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", tt.typ, []string{up.hostPort()}, tt.secret), "a")
			p := newTestProxy(t, b, proxy.Config{})
			target := up.URL + "/echo"
			if tt.query != "" {
				target += "?" + tt.query
			}
			resp := p.do(t, call{Token: tok, Target: target, Header: http.Header{"Accept-Encoding": {"gzip, br, zstd"}}})
			body := readAll(t, resp)
			// A small body of announced length is redacted whole and keeps
			// a (corrected) Content-Length.
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
			}
			var all strings.Builder
			all.Write(body)
			resp.Header.Write(&all)
			forbid := append([]string{}, tt.forbid...)
			for _, v := range []string{value, url.QueryEscape(value), url.PathEscape(value), strings.ToLower(url.QueryEscape(value)), `sk-CANARY-echo\/`, base64.StdEncoding.EncodeToString([]byte(value))} {
				if tt.typ != agentkeys.Cookie {
					forbid = append(forbid, v)
				}
			}
			if tt.typ == agentkeys.OAuth {
				forbid = append(forbid, "rt-CANARY-refresh")
			}
			for _, f := range forbid {
				if strings.Contains(all.String(), f) {
					t.Errorf("the agent received %q:\n%s", f, all.String())
				}
			}
			if !strings.Contains(string(body), agentkeys.RedactedEcho) || !strings.Contains(resp.Header.Get("X-Location"), agentkeys.RedactedEcho) {
				t.Errorf("no redaction marker in body or X-Location:\n%s", all.String())
			}
			if strings.Contains(all.String(), "CANARY") && !strings.Contains(all.String(), "theme=dark") {
				t.Errorf("a CANARY remains:\n%s", all.String())
			}
			if got := up.last(t).Header.Get("Accept-Encoding"); got != "gzip" {
				t.Errorf("upstream was asked for Accept-Encoding %q, want gzip (the agent's br/zstd would go past the check)", got)
			}
		})
	}
}

// TestProxy_RedactsAcrossChunks: a value split over many small writes
// (one byte per flush) is still found; what is not part of a value is not
// held back.
func TestProxy_RedactsAcrossChunks(t *testing.T) {
	const secret = "sk-CANARY-chunked-0123456789"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		msg := "before " + r.Header.Get("Authorization") + " middle sk-CANARY-chu after " + secret
		for i := 0; i < len(msg); i++ {
			w.Write([]byte{msg[i]})
			w.(http.Flusher).Flush()
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	body := string(readAll(t, p.do(t, call{Token: tok, Target: up.URL})))
	want := "before Bearer " + agentkeys.RedactedEcho + " middle sk-CANARY-chu after " + agentkeys.RedactedEcho
	if body != want {
		t.Fatalf("body = %q\nwant   %q", body, want)
	}
}

// TestProxy_RedactionKeepsSSEStreaming: events reach the agent as they are
// sent (each before the next is written), and an event carrying the value
// is redacted.
func TestProxy_RedactionKeepsSSEStreaming(t *testing.T) {
	const secret = "sk-CANARY-sse-abcdef"
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			if i == 1 {
				io.WriteString(w, "data: echo "+secret+"\n\n")
			} else {
				io.WriteString(w, "data: event "+string(rune('0'+i))+"\n\n")
			}
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(10 * time.Second):
				return // the agent never saw the event: the test fails below
			}
		}
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL})
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	want := []string{"data: event 0", "data: echo " + agentkeys.RedactedEcho, "data: event 2"}
	for _, w := range want {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading %q: %v", w, err)
		}
		if strings.TrimSpace(line) != w {
			t.Fatalf("event = %q, want %q", line, w)
		}
		rd.ReadString('\n') // the blank line ending the event
		next <- struct{}{}  // only now is the next event written
	}
}

// TestProxy_RedactionThroughCompression: an upstream that compresses
// anyway (gzip, zlib deflate, raw deflate) is decoded and redacted; one
// that sends an encoding the proxy cannot read (br, zstd, stacked) is
// refused with 502 and nothing of its body is passed on.
func TestProxy_RedactionThroughCompression(t *testing.T) {
	const secret = "sk-CANARY-compressed-777"
	encoders := map[string]func(io.Writer) io.WriteCloser{
		"gzip":    func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"x-gzip":  func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"deflate": func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
		"raw-deflate": func(w io.Writer) io.WriteCloser {
			fw, _ := flate.NewWriter(w, flate.DefaultCompression)
			return fw
		},
	}
	for name, enc := range encoders {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				ce := name
				if name == "raw-deflate" {
					ce = "deflate"
				}
				w.Header().Set("Content-Encoding", ce)
				zw := enc(w)
				io.WriteString(zw, strings.Repeat("padding ", 500)+"echo: "+r.Header.Get("Authorization"))
				zw.Close()
			})
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
			p := newTestProxy(t, b, proxy.Config{})
			resp := p.do(t, call{Token: tok, Target: up.URL, Header: http.Header{"Accept-Encoding": {"br"}}})
			body := readAll(t, resp)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			if !bytes.HasSuffix(body, []byte("echo: Bearer "+agentkeys.RedactedEcho)) || bytes.Contains(body, []byte(secret)) {
				t.Fatalf("body ends %q", body[max(len(body)-60, 0):])
			}
		})
	}
	for _, ce := range []string{"br", "zstd", "compress", "gzip, br", "x-custom"} {
		t.Run(ce, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", ce)
				io.WriteString(w, "opaque "+r.Header.Get("Authorization"))
			})
			b := newMemBackend()
			tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
			p := newTestProxy(t, b, proxy.Config{})
			resp := p.do(t, call{Token: tok, Target: up.URL})
			reqID := resp.Header.Get(agentkeys.HeaderRequestID)
			e := wantProxyError(t, resp, http.StatusBadGateway, agentkeys.EUPSTREAM)
			if strings.Contains(e.Error, secret) || !strings.Contains(e.Error, "cannot check") {
				t.Fatalf("message %q", e.Error)
			}
			if row := b.rowByRequestID(t, reqID); row.Code != agentkeys.EUPSTREAM {
				t.Fatalf("audit row %+v", row)
			}
		})
	}
}

// TestProxy_RedactionRefusesRangeAndUpgrade: a Range request would let an
// echo be read a few bytes at a time, so Range is not forwarded; an
// upgraded connection cannot be checked, so it is refused.
func TestProxy_RedactionRefusesRangeAndUpgrade(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		io.WriteString(w, "ok")
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: "sk-CANARY-range"}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	readAll(t, p.do(t, call{Token: tok, Target: up.URL, Header: http.Header{"Range": {"bytes=10-15"}, "If-Range": {`"x"`}}}))
	if got := up.last(t).Header; got.Get("Range") != "" || got.Get("If-Range") != "" {
		t.Fatalf("upstream got Range %q If-Range %q", got.Get("Range"), got.Get("If-Range"))
	}
	resp := p.do(t, call{Token: tok, Target: up.URL, Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}})
	wantProxyError(t, resp, http.StatusBadGateway, agentkeys.EUPSTREAM)
}

// TestProxy_RedactsTrailers: trailers are checked too.
func TestProxy_RedactsTrailers(t *testing.T) {
	const secret = "sk-CANARY-trailer-99"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Echo")
		io.WriteString(w, "body")
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	resp := p.do(t, call{Token: tok, Target: up.URL})
	readAll(t, resp)
	if got := resp.Trailer.Get("X-Echo"); got != "Bearer "+agentkeys.RedactedEcho {
		t.Fatalf("trailer X-Echo = %q", got)
	}
}

// TestProxy_RawResponses: a credential that asks for byte-exact responses
// gets them: the echo, the encoding and the length are the upstream's.
func TestProxy_RawResponses(t *testing.T) {
	const secret = "sk-CANARY-raw-1234"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "echo "+secret)
	zw.Close()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.Write(gz.Bytes())
	})
	b := newMemBackend()
	tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret, RawResponses: true}), "a")
	p := newTestProxy(t, b, proxy.Config{})
	req, _ := http.NewRequest("GET", p.URL+"/v1/proxy", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(agentkeys.HeaderTargetURL, up.URL)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if !bytes.Equal(body, gz.Bytes()) || resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(gz.Len()) || resp.Header.Get("X-Echo") != "Bearer "+secret {
		t.Fatalf("raw response changed: %d bytes, %v", len(body), resp.Header)
	}
}

// TestProxy_RedactionAnyChunking: however the body is cut into reads, the
// result is the same as redacting it whole, and no value survives.
func TestProxy_RedactionAnyChunking(t *testing.T) {
	const secret = "abcabcabd-CANARY"
	parts := []string{"abc", "abcab", secret, "abcabcab", "x", secret + secret, "abcabcabd-CANAR", "\n\n", "ab"}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 40; round++ {
		var msg strings.Builder
		for i := 0; i < 30; i++ {
			msg.WriteString(parts[rng.IntN(len(parts))])
		}
		cuts := 1 + rng.IntN(20)
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			s := msg.String()
			for len(s) > 0 {
				n := min(len(s), 1+rng.IntN(cuts))
				io.WriteString(w, s[:n])
				w.(http.Flusher).Flush()
				s = s[n:]
			}
		})
		b := newMemBackend()
		tok := b.assign(b.addCredential(t, "k", agentkeys.APIKey, []string{up.hostPort()}, agentkeys.Secret{Value: secret}), "a")
		p := newTestProxy(t, b, proxy.Config{})
		got := string(readAll(t, p.do(t, call{Token: tok, Target: up.URL})))
		want := strings.ReplaceAll(msg.String(), secret, agentkeys.RedactedEcho)
		for k := len(secret) - 1; k >= 4; k-- { // a dangling start of the value (4 bytes or more)
			if strings.HasSuffix(want, secret[:k]) {
				want = want[:len(want)-k] + agentkeys.RedactedEcho
				break
			}
		}
		if got != want {
			t.Fatalf("round %d:\n got %q\nwant %q", round, got, want)
		}
		if strings.Contains(got, secret) {
			t.Fatalf("round %d: the value passed", round)
		}
	}
}
