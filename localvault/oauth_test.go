package localvault_test

import (
	"context"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

// OAuth apps: the client secret round-trips sealed, is never listed,
// survives a data key rotation, and a bad app writes nothing.
func TestOAuthApps(t *testing.T) {
	ctx := context.Background()
	cfg := localvault.Config{Home: t.TempDir(), Keychain: newMemKeyStore()}
	if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.OAuthApp(ctx, "github"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND || !strings.Contains(err.Error(), "agentkeys oauth apps add github") {
		t.Fatalf("missing app: %v", err)
	}
	if err := v.SaveOAuthApp(ctx, &agentkeys.OAuthApp{Provider: "custom", ClientID: "x"}); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
		t.Fatalf("bad app: %v", err)
	}
	if apps, _ := v.ListOAuthApps(ctx); len(apps) != 0 {
		t.Fatal("a refused app was written")
	}
	if err := v.SaveOAuthApp(ctx, &agentkeys.OAuthApp{Provider: "GitHub", ClientID: "Iv1.abc", ClientSecret: agentkeys.Secret{Value: "gh-client-secret"}}); err != nil {
		t.Fatal(err)
	}
	apps, err := v.ListOAuthApps(ctx)
	if err != nil || len(apps) != 1 || apps[0].Provider != "github" || apps[0].ClientSecret.Value != "" {
		t.Fatalf("list: %+v %v", apps, err)
	}
	if _, err := v.RotateKey(ctx, localvault.RotateOptions{DataKey: true}); err != nil {
		t.Fatal(err)
	}
	a, err := v.OAuthApp(ctx, "github")
	if err != nil || a.ClientSecret.Value != "gh-client-secret" || a.ClientID != "Iv1.abc" || a.TokenURL == "" {
		t.Fatalf("app after rotation: %v", err)
	}
	if err := v.DeleteOAuthApp(ctx, "github"); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteOAuthApp(ctx, "github"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		t.Fatalf("second delete: %v", err)
	}
}
