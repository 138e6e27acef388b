package server

import (
	"fmt"
	"html"
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// OAuth Connect on the server: POST /api/v1/oauth/{provider}/start gives
// the authorization URL (state bound to the caller's workspace, single
// use, 10 minutes); the provider sends the browser to GET
// /api/v1/oauth/callback, which exchanges the code and stores the OAUTH
// credential. The app is the operator's (serve --oauth-config) or the
// workspace's.

// OAuthCallbackPath is the redirect URL to register with providers (on the
// server's base URL).
const OAuthCallbackPath = "/api/v1/oauth/callback"

type oauthStartRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (s *Server) startOAuth(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	var in oauthStartRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	u, err := ws.StartOAuth(r.Context(), r.PathValue("provider"), in.Name, in.Scopes, s.baseURL(r)+OAuthCallbackPath)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"authorizeUrl": u})
	return nil
}

// oauthCallback is reached by the person's browser, without a workspace
// key: the state is what binds it to a workspace.
func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return agentkeys.Errorf(agentkeys.EFORBIDDEN, "the provider refused the authorization (%s): start the connection again", html.EscapeString(e))
	}
	if q.Get("state") == "" || q.Get("code") == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "missing state or code: this page is the OAuth redirect, opened by the provider")
	}
	c, err := s.store.FinishOAuth(r.Context(), q.Get("state"), q.Get("code"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	// The connection may have been started from the CLI (the page is then
	// done) or from the dashboard's Credentials page (which it links back to).
	fmt.Fprintf(w, `<!doctype html><title>agentkeys: connected</title><p>Connected: credential %s. You can close this window, or go back to <a href="/credentials">Credentials</a> in the dashboard.</p>`, html.EscapeString(c.Name))
	return nil
}
