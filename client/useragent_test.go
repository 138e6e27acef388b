package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/internal/version"
)

// TestUserAgent_Default: without Config.UserAgent every request says
// agentkeys/<version>, REST calls and proxied calls alike.
func TestUserAgent_Default(t *testing.T) {
	uas := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uas <- r.Header.Get("User-Agent")
		w.Write([]byte(`{"credentials":[]}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "agentkeys/" + version.Version()
	if got := <-uas; got != want || client.DefaultUserAgent != want {
		t.Fatalf("User-Agent %q (DefaultUserAgent %q), want %q", got, client.DefaultUserAgent, want)
	}
}
