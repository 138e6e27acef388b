package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// demo stands in for what an agent finds in production: a running
// `agentkeys serve` (or `agentkeys up`), a workspace with a "Stripe"
// credential, an agent's proxy token, and the Stripe API (a fake on
// loopback that wants the key sk_test_demo).
type demo struct {
	proxyURL, token, apiKey, api string
	stop                         func()
}

func startDemo() *demo {
	ctx := context.Background()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk_test_demo" {
			http.Error(w, `{"error":"invalid key"}`, http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/v1/balance":
			io.WriteString(w, `{"available":[{"amount":1000,"currency":"usd"}]}`)
		default:
			fmt.Fprintf(w, `{"method":%q,"received":%s}`, r.Method, body)
		}
	}))
	dir, _ := os.MkdirTemp("", "agentkeys-example-")
	key, _ := agentkeys.NewKey()
	st, err := store.Open(ctx, store.Config{DataDir: dir, ServerKey: key})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, AllowLoopbackTargets: true})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ws, err := client.Signup(ctx, client.Config{BaseURL: hs.URL}, client.SignupInput{Email: "owner@example.com", Password: "correct horse battery", Workspace: "Acme"})
	if err != nil {
		log.Fatal(err)
	}
	admin, _ := client.New(client.Config{BaseURL: hs.URL, APIKey: ws.APIKey})
	cred, err := admin.CreateCredential(ctx, &agentkeys.CredentialInput{Name: "Stripe", Type: agentkeys.APIKey,
		AllowedHosts: []string{strings.TrimPrefix(api.URL, "http://")}, Secret: agentkeys.Secret{Value: "sk_test_demo"}})
	if err != nil {
		log.Fatal(err)
	}
	agent, _ := admin.CreateAgent(ctx, "billing-bot")
	grant, err := admin.AssignCredential(ctx, agent.ID, cred.ID)
	if err != nil {
		log.Fatal(err)
	}
	return &demo{proxyURL: hs.URL, token: grant.ProxyToken, apiKey: ws.APIKey, api: api.URL, stop: func() {
		admin.Close()
		hs.Close()
		st.Close()
		api.Close()
		os.RemoveAll(dir)
	}}
}

// An agent holds only its pxr_ proxy token: every request of the returned
// client goes through the proxy, which adds the Stripe key.
func ExampleNewProxy() {
	d := startDemo() // in production: the token and AGENTKEYS_PROXY_URL from the environment
	defer d.stop()

	hc, err := client.NewProxy(d.token, d.proxyURL) // or NewProxy("", "") to read the environment
	if err != nil {
		log.Fatal(err)
	}
	resp, err := hc.Get(d.api + "/v1/balance") // in production: https://api.stripe.com/v1/balance
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK {"available":[{"amount":1000,"currency":"usd"}]}
}

// With the workspace key (ak_ws_…) any credential is used by name: For
// binds one.
func ExampleProxyClient_For() {
	d := startDemo()
	defer d.stop()

	ak, err := client.NewProxy(d.apiKey, d.proxyURL)
	if err != nil {
		log.Fatal(err)
	}
	stripe := ak.For("Stripe")
	resp, err := stripe.Post(d.api+"/v1/customers", "application/json", strings.NewReader(`{"email":"user@example.com"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"method":"POST","received":{"email":"user@example.com"}}
}

// Refusals by the proxy itself are *ProxyError; the upstream's own 4xx/5xx
// are ordinary responses.
func ExampleProxyError() {
	d := startDemo()
	defer d.stop()

	hc, _ := client.NewProxy(d.token, d.proxyURL)
	_, err := hc.Get("https://evil.example/steal")
	var pe *client.ProxyError
	if errors.As(err, &pe) {
		fmt.Println(pe.Status, pe.Code, agentkeys.ErrorCode(err) == agentkeys.EDESTINATION)
	}
	// Output: 403 DESTINATION_NOT_ALLOWED true
}

// A webhook receiver checks X-AgentKeys-Signature against the raw body.
func ExampleVerifyWebhook() {
	secret := "whsec_test_secret_1" // AGENTKEYS_WEBHOOK_SECRET
	body := []byte(`{"event":"credential.expiring","data":{"id":"cred_1"}}`)
	sig := "833ef1ab35b31917fc37a882000e3e42dd70d2d82051289727c14d1e3907c017"

	fmt.Println(client.VerifyWebhook(body, sig, secret))
	fmt.Println(client.VerifyWebhook([]byte(`{"event":"tampered"}`), sig, secret))
	// Output:
	// true
	// false
}

// A Standard Webhooks delivery: webhook-id, webhook-timestamp and
// webhook-signature, checked within ±5 minutes of now.
func ExampleVerifyStandardWebhook() {
	secret := "whsec_+0daOVh3KgE8Z01N9oprdqartrPEjL1QXUxcytYvSbo="
	body := []byte(`{"event":"credential.expiring","data":{"id":"cred_1"}}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_2Lx1")
	h.Set("webhook-timestamp", "1764670000")
	h.Set("webhook-signature", "v1,zwMUUIEBYy+jTZW1MwXJqUvzG0Qm1zN1Vtsw5m9MPD0=")

	now := time.Unix(1764670010, 0) // in a receiver: time.Time{} for the current time
	fmt.Println(client.VerifyStandardWebhook(body, h, secret, 0, now))
	fmt.Println(client.VerifyStandardWebhook(body, h, secret, 0, now.Add(time.Hour)) != nil)
	// Output:
	// <nil>
	// true
}

// The REST client manages a server's workspace with its ak_ws_ key.
func ExampleNew() {
	d := startDemo()
	defer d.stop()

	c, err := client.New(client.Config{BaseURL: d.proxyURL, APIKey: d.apiKey})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	creds, err := c.ListCredentials(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, cr := range creds {
		fmt.Println(cr.Name, cr.Type, len(cr.AllowedHosts))
	}
	// Output: Stripe API_KEY 1
}
