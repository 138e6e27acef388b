package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// BenchmarkBaseURLOverhead serves the same request through the handler in
// process, in the /v1/proxy form and in base-URL mode, with an upstream that
// answers at once without a network: the CPU the two paths cost, side by
// side (run with -count to interleave them).
func BenchmarkBaseURLOverhead(b *testing.B) {
	mb := newMemBackend()
	tok := mb.assign(mb.addCredential(b, "k", agentkeys.APIKey, []string{"api.example.com"}, agentkeys.Secret{Value: "secret"}), "a")
	h := proxy.New(noAudit{mb}, proxy.Config{Transport: &recordingTransport{}})
	serve := func(b *testing.B, path string, hdr http.Header) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", "http://127.0.0.1:8787"+path, nil)
			for k, v := range hdr {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			io.Copy(io.Discard, rec.Body)
		}
	}
	b.Run("v1proxy", func(b *testing.B) {
		serve(b, "/v1/proxy", http.Header{"Authorization": {"Bearer " + tok}, agentkeys.HeaderTargetURL: {"https://api.example.com/emails"}})
	})
	b.Run("baseurl", func(b *testing.B) {
		serve(b, proxy.BaseURLPrefix+"api.example.com/emails", http.Header{"Authorization": {"Bearer " + tok}})
	})
}
