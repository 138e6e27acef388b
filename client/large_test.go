package client_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestProxy_BodyTooLarge: a body over the server's proxy limit is the
// proxy's 413 (ETOOLARGE), not a broken connection, whether its length is
// announced or it is streamed.
func TestProxy_BodyTooLarge(t *testing.T) {
	s := newLiveServer(t)
	c := mustClient(t, s.url, s.key)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	_, err := c.CreateCredential(t.Context(), &agentkeys.CredentialInput{Name: "Up", Type: agentkeys.APIKey,
		AllowedHosts: []string{strings.TrimPrefix(up.URL, "http://")}, Secret: agentkeys.Secret{Value: "v"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []io.Reader{
		bytes.NewReader(make([]byte, 11<<20)),                 // known length
		io.MultiReader(bytes.NewReader(make([]byte, 11<<20))), // streamed
	} {
		resp, err := c.Proxy(t.Context(), &agentkeys.ProxyRequest{CredentialName: "Up", Method: "POST", URL: up.URL + "/big", Body: body})
		if resp != nil {
			resp.Body.Close()
			t.Fatalf("got %d, want an error", resp.StatusCode)
		}
		if agentkeys.ErrorCode(err) != agentkeys.ETOOLARGE {
			t.Fatalf("err = %v, want PAYLOAD_TOO_LARGE", err)
		}
	}
}
