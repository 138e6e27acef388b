package oauthflow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/oauthflow"
	"github.com/agentkeys/agentkeys/internal/testkit"
)

// redirectOf returns the redirect_uri and state of an authorization URL.
func redirectOf(t *testing.T, authURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("redirect_uri"), u.Query().Get("state")
}

func TestLoopback_ForgedStateDoesNotEndTheWait(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	open := func(authURL string) error {
		redirect, _ := redirectOf(t, authURL)
		if !strings.HasPrefix(redirect, "http://127.0.0.1:") {
			t.Errorf("redirect %q is not a 127.0.0.1 loopback", redirect)
		}
		res, err := http.Get(redirect + "?code=forged&state=wrong")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("forged state answered %d", res.StatusCode)
		}
		return o.Approve(authURL)
	}
	tok, err := oauthflow.Loopback(context.Background(), o.App(), oauthflow.LoopbackOptions{Open: open, Timeout: 10 * time.Second})
	if err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("flow: %v", err)
	}
}

func TestLoopback_ProviderRefusal(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	open := func(authURL string) error {
		redirect, state := redirectOf(t, authURL)
		res, err := http.Get(redirect + "?error=access_denied&state=" + url.QueryEscape(state))
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	_, err := oauthflow.Loopback(context.Background(), o.App(), oauthflow.LoopbackOptions{Open: open, Timeout: 10 * time.Second})
	if agentkeys.ErrorCode(err) != agentkeys.EFORBIDDEN || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("err = %v, want EFORBIDDEN naming access_denied", err)
	}
}

func TestLoopback_Timeout(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	var out strings.Builder
	_, err := oauthflow.Loopback(context.Background(), o.App(), oauthflow.LoopbackOptions{Out: &out, Timeout: 200 * time.Millisecond})
	if agentkeys.ErrorCode(err) != agentkeys.ETIMEOUT {
		t.Fatalf("err = %v, want ETIMEOUT", err)
	}
	if !strings.Contains(out.String(), o.URL+"/authorize?") || !strings.Contains(out.String(), "code_challenge_method=S256") {
		t.Fatalf("printed %q", out.String())
	}
}

func TestRefresh_Errors(t *testing.T) {
	o := testkit.NewOAuthServer(t, time.Hour)
	app := o.App()
	if _, err := oauthflow.Refresh(context.Background(), nil, app, "T", &agentkeys.Secret{Value: "a"}); agentkeys.ErrorCode(err) != agentkeys.ECREDENTIAL {
		t.Fatalf("no refresh token: %v", err)
	}
	if _, err := oauthflow.Refresh(context.Background(), nil, app, "T", &agentkeys.Secret{Value: "a", RefreshToken: "unknown"}); agentkeys.ErrorCode(err) != agentkeys.ECREDENTIAL {
		t.Fatalf("unknown refresh token: %v", err)
	}
	// A token endpoint refusing the client (RFC 6749 §5.2): the app's
	// fault, so not ECREDENTIAL (the connection is not marked broken).
	refuser := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client","error_description":"bad secret wrong-secret"}`))
	}))
	defer refuser.Close()
	bad := *app
	bad.TokenURL = refuser.URL
	bad.ClientSecret = agentkeys.Secret{Value: "wrong-secret"}
	_, err := oauthflow.Refresh(context.Background(), nil, &bad, "T", &agentkeys.Secret{Value: "a", RefreshToken: "r"})
	if agentkeys.ErrorCode(err) != agentkeys.EUPSTREAM || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong client secret: %v", err)
	}
}
