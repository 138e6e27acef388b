package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// BenchmarkProxy compares, in one process over loopback, a bare
// httputil.ReverseProxy that adds one header with the agentkeys handler over
// the in-memory backend: the proxy code's own cost per request, without a
// store. (bench/proxy measures the whole `agentkeys up` side by side.)
func BenchmarkProxy(b *testing.B) {
	body := []byte(`{"id":"4ef9a2","object":"email","status":"queued"}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)

	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upURL)
			pr.Out.Header.Set("Authorization", "Bearer secret")
		},
		Transport:     proxy.NewTransport(proxy.TransportConfig{}),
		FlushInterval: -1,
		BufferPool:    benchPool{},
	})
	defer bare.Close()

	mb := newMemBackend()
	tok := mb.assign(mb.addCredential(b, "k", agentkeys.APIKey, []string{upURL.Host}, agentkeys.Secret{Value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}), "a")
	rawTok := mb.assign(mb.addCredential(b, "raw", agentkeys.APIKey, []string{upURL.Host}, agentkeys.Secret{Value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc", RawResponses: true}), "a")
	ak := httptest.NewServer(proxy.New(noAudit{mb}, proxy.Config{}))
	defer ak.Close()

	run := func(b *testing.B, u string, hdr http.Header) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", u, nil)
				for k, v := range hdr {
					req.Header[k] = v
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/emails", nil) })
	b.Run("bare", func(b *testing.B) { run(b, bare.URL+"/emails", nil) })
	b.Run("agentkeys", func(b *testing.B) {
		run(b, ak.URL+"/v1/proxy", http.Header{"Authorization": {"Bearer " + tok}, agentkeys.HeaderTargetURL: {up.URL + "/emails"}})
	})
	b.Run("agentkeys-baseurl", func(b *testing.B) {
		run(b, ak.URL+proxy.BaseURLPrefix+upURL.Host+"/emails", http.Header{"Authorization": {"Bearer " + tok}})
	})
	// The same without echo redaction: the difference is its cost.
	b.Run("agentkeys-raw", func(b *testing.B) {
		run(b, ak.URL+"/v1/proxy", http.Header{"Authorization": {"Bearer " + rawTok}, agentkeys.HeaderTargetURL: {up.URL + "/emails"}})
	})
}

// BenchmarkRedaction measures echo redaction on a larger body (64 KiB of
// JSON-like text, no echo in it): "redacted" against "raw" (the credential
// opted out), one request at a time, so the ratio is the per-byte cost.
func BenchmarkRedaction(b *testing.B) {
	body := []byte(strings.Repeat(`{"id":"msg_0123","text":"the quick brown fox jumps over the lazy dog"},`, 64<<10/72))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	mb := newMemBackend()
	tok := mb.assign(mb.addCredential(b, "k", agentkeys.APIKey, []string{upURL.Host}, agentkeys.Secret{Value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}), "a")
	rawTok := mb.assign(mb.addCredential(b, "raw", agentkeys.APIKey, []string{upURL.Host}, agentkeys.Secret{Value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc", RawResponses: true}), "a")
	ak := httptest.NewServer(proxy.New(noAudit{mb}, proxy.Config{}))
	defer ak.Close()
	client := &http.Client{Transport: &http.Transport{}}
	for _, c := range []struct{ name, tok string }{{"redacted", tok}, {"raw", rawTok}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req, _ := http.NewRequest("GET", ak.URL+"/v1/proxy", nil)
				req.Header.Set("Authorization", "Bearer "+c.tok)
				req.Header.Set(agentkeys.HeaderTargetURL, up.URL+"/")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// noAudit is the in-memory backend without audit bookkeeping (whose map of
// rows would grow with b.N).
type noAudit struct{ *memBackend }

func (noAudit) BeginAudit(context.Context, *agentkeys.AuditEvent) error { return nil }
func (noAudit) EndAudit(context.Context, *agentkeys.AuditEvent)         {}

type benchPool struct{}

var benchBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (benchPool) Get() []byte  { return *(benchBufs.Get().(*[]byte)) }
func (benchPool) Put(b []byte) { benchBufs.Put(&b) }
