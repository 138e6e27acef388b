// Package oauthflow runs the OAuth 2.0 flows of OAuth Connect on
// golang.org/x/oauth2: authorization code with PKCE (S256) and a loopback
// redirect, the device authorization grant, and refresh. It turns tokens
// into the sealed agentkeys.Secret of an OAUTH credential and provider
// errors into agentkeys errors; it stores nothing itself.
package oauthflow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentkeys/agentkeys"
)

// Config is the x/oauth2 configuration of app, with the given scopes
// (none: the app's) and redirect URL. A custom provider's client
// authenticates with HTTP Basic (RFC 6749 §2.3.1), a public client (no
// secret) with its id in the form; catalog providers are detected once per
// process (a failed first try is retried the other way).
func Config(app *agentkeys.OAuthApp, scopes []string, redirectURL string) *oauth2.Config {
	if len(scopes) == 0 {
		scopes = app.Scopes
	}
	style := oauth2.AuthStyleAutoDetect
	switch {
	case app.ClientSecret.Value == "":
		style = oauth2.AuthStyleInParams
	case app.Provider == agentkeys.CustomOAuthProvider:
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret.Value,
		Endpoint: oauth2.Endpoint{AuthURL: app.AuthURL, TokenURL: app.TokenURL, DeviceAuthURL: app.DeviceURL,
			AuthStyle: style},
		RedirectURL: redirectURL,
		Scopes:      scopes,
	}
}

// Secret is the OAUTH credential value of tok, obtained through provider's
// app with the scopes asked for. A token without a refresh token keeps
// previous (a provider that does not rotate answers a refresh without one).
func Secret(tok *oauth2.Token, provider string, scopes []string, previous string) *agentkeys.Secret {
	s := &agentkeys.Secret{Value: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, OAuthApp: provider}
	if s.RefreshToken == "" {
		s.RefreshToken = previous
	}
	if !tok.Expiry.IsZero() {
		s.ExpiresAt = tok.Expiry.UTC().Round(time.Second)
	}
	if granted, ok := tok.Extra("scope").(string); ok && granted != "" {
		s.Scopes = strings.Fields(granted)
	} else {
		s.Scopes = append([]string(nil), scopes...)
	}
	return s
}

// Backoff is the wait before each retry of a refresh whose token endpoint
// could not be reached. Tests shorten it.
var Backoff = []time.Duration{200 * time.Millisecond, 800 * time.Millisecond, 2 * time.Second}

// Refresh exchanges the refresh token of s at app's token endpoint, retrying
// network failures and 5xx answers with Backoff. Returns the new secret;
// ECREDENTIAL (via agentkeys.ReconnectError) when the provider refused the
// refresh token (invalid_grant, or no refresh token to use); EUPSTREAM when
// the endpoint stayed unreachable or refused the client (invalid_client and
// the like, which are the app's fault, not the connection's). client nil:
// http.DefaultClient.
func Refresh(ctx context.Context, client *http.Client, app *agentkeys.OAuthApp, credName string, s *agentkeys.Secret) (*agentkeys.Secret, error) {
	if s.RefreshToken == "" {
		return nil, agentkeys.ReconnectError(credName, app.Provider)
	}
	if client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	}
	cfg := Config(app, s.Scopes, "")
	var lastErr error
	for attempt := 0; ; attempt++ {
		tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
		if err == nil {
			out := Secret(tok, app.Provider, s.Scopes, s.RefreshToken)
			if len(out.Scopes) == 0 {
				out.Scopes = s.Scopes
			}
			return out, nil
		}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode != "" || re.Response != nil && re.Response.StatusCode < 500) {
			if re.ErrorCode == "invalid_grant" {
				return nil, agentkeys.ReconnectError(credName, app.Provider)
			}
			code := re.ErrorCode
			if code == "" {
				code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
			}
			// Not the connection's fault (a wrong client secret, say): the
			// credential is not marked broken.
			return nil, agentkeys.Errorf(agentkeys.EUPSTREAM, "the token endpoint of %s refused the refresh (%s): check the OAuth app (`agentkeys oauth apps add %s`)",
				app.Provider, oneLine(code), app.Provider)
		}
		lastErr = err
		if attempt >= len(Backoff) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(Backoff[attempt]):
		case <-ctx.Done():
		}
	}
	_ = lastErr // may quote the token endpoint's answer; not shown
	return nil, agentkeys.Errorf(agentkeys.EUPSTREAM, "the token endpoint of %s could not be reached to refresh the OAuth token: try again later", app.Provider)
}

// Start begins an authorization code flow with PKCE (S256) whose redirect
// goes to redirectURL: it returns the authorization URL, the state (to
// check on the callback) and the verifier (to give Exchange).
func Start(app *agentkeys.OAuthApp, scopes []string, redirectURL string) (authURL, state, verifier string) {
	verifier = oauth2.GenerateVerifier()
	state = randomState()
	authURL = Config(app, scopes, redirectURL).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.AccessTypeOffline)
	return authURL, state, verifier
}

// Exchange trades the code of a flow begun by Start for a token.
func Exchange(ctx context.Context, app *agentkeys.OAuthApp, scopes []string, redirectURL, code, verifier string) (*oauth2.Token, error) {
	tok, err := Config(app, scopes, redirectURL).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, exchangeError(app.Provider, err)
	}
	return tok, nil
}

// LoopbackOptions are the knobs of Loopback.
type LoopbackOptions struct {
	Scopes []string
	// Open opens the URL in a browser; nil or an error: the URL is only
	// printed.
	Open    func(url string) error
	Out     io.Writer     // where the URL is printed
	Timeout time.Duration // default 5 minutes
	Client  *http.Client  // for the token endpoint; nil: http.DefaultClient
}

// Loopback runs the authorization code flow with PKCE (S256): it listens
// on 127.0.0.1 on a random port, prints (and opens) the authorization URL,
// waits for the redirect, checks state and exchanges the code.
func Loopback(ctx context.Context, app *agentkeys.OAuthApp, opts LoopbackOptions) (*oauth2.Token, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot listen on 127.0.0.1 for the OAuth redirect: %v", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	cfg := Config(app, opts.Scopes, redirect)
	verifier := oauth2.GenerateVerifier()
	state := randomState()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.AccessTypeOffline)

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			http.Error(w, "state does not match: start again with agentkeys credentials connect", http.StatusBadRequest)
			return // a stray or forged request does not end the wait
		case q.Get("error") != "":
			res.err = agentkeys.Errorf(agentkeys.EFORBIDDEN, "the provider refused the authorization: %s", oneLine(q.Get("error")))
		case q.Get("code") == "":
			res.err = agentkeys.Errorf(agentkeys.EINVALID, "the provider's redirect carried no code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if res.err != nil {
			fmt.Fprintf(w, "<p>agentkeys: %s</p>", html.EscapeString(res.err.Error()))
		} else {
			fmt.Fprint(w, "<p>agentkeys: connected. You can close this window.</p>")
		}
		select {
		case done <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	if opts.Out != nil {
		fmt.Fprintf(opts.Out, "Open this URL to authorize agentkeys:\n\n  %s\n\nWaiting up to %s for the redirect to %s …\n", authURL, opts.Timeout.Round(time.Second), redirect)
	}
	if opts.Open != nil {
		_ = opts.Open(authURL)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return nil, agentkeys.Errorf(agentkeys.ETIMEOUT, "no authorization arrived within %s: run the command again", opts.Timeout.Round(time.Second))
	}
	if res.err != nil {
		return nil, res.err
	}
	if opts.Client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, opts.Client)
	}
	tok, err := cfg.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, exchangeError(app.Provider, err)
	}
	return tok, nil
}

// Device runs the device authorization grant: it prints the verification
// URL and user code and polls until the user approves (or timeout).
func Device(ctx context.Context, app *agentkeys.OAuthApp, scopes []string, out io.Writer, client *http.Client, timeout time.Duration) (*oauth2.Token, error) {
	if app.DeviceURL == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "%s has no device authorization endpoint: connect without --device (a browser on any machine can open the printed URL)", app.Provider)
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	}
	cfg := Config(app, scopes, "")
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, exchangeError(app.Provider, err)
	}
	if out != nil {
		u := da.VerificationURIComplete
		if u == "" {
			u = da.VerificationURI
		}
		fmt.Fprintf(out, "Open %s and enter the code %s\nWaiting up to %s …\n", u, da.UserCode, timeout.Round(time.Second))
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		if ctx.Err() != nil {
			return nil, agentkeys.Errorf(agentkeys.ETIMEOUT, "the device was not approved within %s: run the command again", timeout.Round(time.Second))
		}
		return nil, exchangeError(app.Provider, err)
	}
	return tok, nil
}

// exchangeError turns a token endpoint failure into an error that names
// the provider's error code but never its whole answer.
func exchangeError(provider string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		return agentkeys.Errorf(agentkeys.EFORBIDDEN, "%s refused the token request: %s", provider, oneLine(code))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return agentkeys.Errorf(agentkeys.EUPSTREAM, "the token endpoint of %s could not be reached", provider)
	}
	return agentkeys.Errorf(agentkeys.EUPSTREAM, "the token request to %s failed", provider)
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

func randomState() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
