package testkit

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/go-oauth2/oauth2/v4/store"

	"github.com/agentkeys/agentkeys"
)

// OAuthServer is a real authorization server (github.com/go-oauth2/oauth2/v4)
// on loopback, with a resource endpoint (/api/me) that checks its access
// tokens. It approves every authorization at once (no login page), issues
// access tokens for AccessTokenExp and rotates refresh tokens: a refresh
// token works once.
type OAuthServer struct {
	URL          string
	ClientID     string
	ClientSecret string

	RefreshCalls atomic.Int64 // refresh_token grants answered or refused
	// Down makes the token endpoint drop connections (a network error).
	Down atomic.Bool
	// Revoked makes the server forget every refresh token presented to it
	// from then on, so a refresh answers invalid_grant.
	Revoked atomic.Bool
	// RefreshDelay holds each refresh that long before answering.
	RefreshDelay atomic.Int64 // nanoseconds

	srv    *server.Server
	tokens interface {
		RemoveByRefresh(ctx context.Context, refresh string) error
	}
	mu sync.Mutex
}

// NewOAuthServer starts an OAuthServer whose access tokens last
// accessTokenExp; it stops with the test.
func NewOAuthServer(t testing.TB, accessTokenExp time.Duration) *OAuthServer {
	t.Helper()
	o := &OAuthServer{ClientID: "agentkeys-test", ClientSecret: "client-secret-" + agentkeys.NewID("cred")[5:]}
	m := manage.NewDefaultManager()
	m.SetAuthorizeCodeTokenCfg(&manage.Config{AccessTokenExp: accessTokenExp, IsGenerateRefresh: true})
	m.SetPasswordTokenCfg(&manage.Config{AccessTokenExp: accessTokenExp, IsGenerateRefresh: true}) // issues the device grant's tokens
	m.SetRefreshTokenCfg(&manage.RefreshingConfig{AccessTokenExp: accessTokenExp, IsGenerateRefresh: true, IsRemoveAccess: true, IsRemoveRefreshing: true})
	ts, err := store.NewMemoryTokenStore()
	if err != nil {
		t.Fatal(err)
	}
	o.tokens = ts
	m.MapTokenStorage(ts)
	clients := store.NewClientStore()
	clients.Set(o.ClientID, &models.Client{ID: o.ClientID, Secret: o.ClientSecret, Domain: "http://127.0.0.1"})
	m.MapClientStorage(clients)
	// The default check compares host and port; a loopback redirect gets a
	// new port every time (RFC 8252 §7.3), so only the host is compared.
	m.SetValidateURIHandler(func(base, redirect string) error {
		b, err1 := url.Parse(base)
		r, err2 := url.Parse(redirect)
		if err1 != nil || err2 != nil || b.Scheme != r.Scheme || b.Hostname() != r.Hostname() {
			return errors.ErrInvalidRedirectURI
		}
		return nil
	})
	o.srv = server.NewDefaultServer(m)
	o.srv.SetAllowGetAccessRequest(false)
	o.srv.SetClientInfoHandler(o.clientOf)
	o.srv.SetUserAuthorizationHandler(func(http.ResponseWriter, *http.Request) (string, error) { return "user-1", nil })

	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		if err := o.srv.HandleAuthorizeRequest(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	// The device authorization grant (RFC 8628), which go-oauth2 lacks: codes
	// are kept here and the tokens issued by the manager.
	devices := map[string]*device{}
	mux.HandleFunc("/device", func(w http.ResponseWriter, r *http.Request) {
		id, _, err := o.clientOf(r)
		if err != nil || id != o.ClientID {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		d := &device{code: agentkeys.NewID("cred")[5:], user: strings.ToUpper(agentkeys.NewID("cred")[5:13]), scope: r.PostForm.Get("scope")}
		o.mu.Lock()
		devices[d.code] = d
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"device_code": d.code, "user_code": d.user,
			"verification_uri": o.URL + "/activate", "expires_in": 300, "interval": 1})
	})
	mux.HandleFunc("/activate", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, d := range devices {
			if d.user == r.URL.Query().Get("user_code") {
				d.approved = true
				io.WriteString(w, "approved")
				return
			}
		}
		http.Error(w, "unknown code", http.StatusNotFound)
	})
	deviceToken := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		id, secret, err := o.clientOf(r)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		o.mu.Lock()
		d := devices[r.PostForm.Get("device_code")]
		if d != nil && d.approved {
			delete(devices, d.code)
		}
		o.mu.Unlock()
		switch {
		case d == nil:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		case !d.approved:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"authorization_pending"}`)
			return
		}
		ti, err := m.GenerateAccessToken(r.Context(), oauth2.PasswordCredentials,
			&oauth2.TokenGenerateRequest{ClientID: id, ClientSecret: secret, UserID: "user-1", Scope: d.scope, Request: r})
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		json.NewEncoder(w).Encode(o.srv.GetTokenData(ti))
	}
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if o.Down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
		}
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code" {
			deviceToken(w, r)
			return
		}
		if r.PostForm.Get("grant_type") == "refresh_token" {
			o.RefreshCalls.Add(1)
			if d := time.Duration(o.RefreshDelay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return // the client went away before the refresh was made
				}
			}
			if o.Revoked.Load() {
				_ = o.tokens.RemoveByRefresh(r.Context(), r.PostForm.Get("refresh_token"))
			}
		}
		o.mu.Lock() // the memory store's rotation is not atomic across requests
		defer o.mu.Unlock()
		_ = o.srv.HandleTokenRequest(w, r)
	})
	mux.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		ti, err := o.srv.ValidationBearerToken(r)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"user": ti.GetUserID()})
	})
	hs := httptest.NewUnstartedServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	o.URL = hs.URL
	return o
}

type device struct {
	code, user, scope string
	approved          bool
}

func (o *OAuthServer) clientOf(r *http.Request) (string, string, error) {
	_ = r.ParseForm()
	if id, secret, err := server.ClientBasicHandler(r); err == nil {
		return id, secret, nil
	}
	return server.ClientFormHandler(r)
}

// ApproveDevice plays the user who enters code at the verification URL.
func (o *OAuthServer) ApproveDevice(userCode string) error {
	res, err := http.Get(o.URL + "/activate?user_code=" + url.QueryEscape(userCode))
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &agentkeys.Error{Code: agentkeys.ENOTFOUND, Message: "activate answered " + res.Status}
	}
	return nil
}

// App is the custom OAuth app of this server (client secret included),
// its tokens allowed on the server's own host.
func (o *OAuthServer) App() *agentkeys.OAuthApp {
	return &agentkeys.OAuthApp{
		Provider: agentkeys.CustomOAuthProvider, ClientID: o.ClientID, ClientSecret: agentkeys.Secret{Value: o.ClientSecret},
		AuthURL: o.URL + "/authorize", TokenURL: o.URL + "/token", DeviceURL: o.URL + "/device", Scopes: []string{"read"},
		AllowedHosts: []string{strings.TrimPrefix(o.URL, "http://")},
	}
}

// Approve plays the browser: it opens authURL without following the
// redirect and calls the loopback redirect it points at.
func (o *OAuthServer) Approve(authURL string) error { return ApproveURL(authURL) }

// ApproveURL is Approve for any authorization server that redirects at
// once (oauth2-mock-server).
func ApproveURL(authURL string) error {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	res, err := noFollow.Get(authURL)
	if err != nil {
		return err
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || loc == "" {
		return &agentkeys.Error{Code: agentkeys.EINTERNAL, Message: "authorize answered " + res.Status}
	}
	res, err = noFollow.Get(loc)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &agentkeys.Error{Code: agentkeys.EINTERNAL, Message: "redirect answered " + res.Status}
	}
	return nil
}
