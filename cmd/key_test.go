package cmd_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/agentkeys/agentkeys/localvault"
)

// TestBinary_KeyRotateEnvironment: the new key is printed once; the old one
// stops opening the vault, the new one opens it, tokens keep working.
func TestBinary_KeyRotateEnvironment(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.init()
	e.mustBin("", "credentials", "add", "--name", "Local", "--value", "sk-rot-value", "--allow-host", up.host())
	tok := strings.TrimSpace(e.mustBin("", "agents", "create", "--name", "bot", "--credential", "Local"))
	if out := e.mustBin("", "key", "where"); !strings.Contains(out, "Key source: environment") {
		t.Errorf("key where:\n%s", out)
	}
	var res struct {
		KeySource    string `json:"keySource"`
		NewMasterKey string `json:"newMasterKey"`
	}
	if err := json.Unmarshal([]byte(e.mustBin("", "key", "rotate", "--data-key", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.KeySource != "environment" || len(res.NewMasterKey) != 44 || res.NewMasterKey == e.vars["AGENTKEYS_MASTER_KEY"] {
		t.Fatalf("rotate --json = %+v", res)
	}
	if r := e.runBin("", "credentials", "list"); r.code != 6 || !strings.Contains(r.stderr, "wrong vault key") {
		t.Errorf("old key after rotation: exit %d %s", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_MASTER_KEY"] = res.NewMasterKey
	e.mustBin("", "proxy", tok, up.URL+"/rotated")
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer sk-rot-value" {
		t.Errorf("after rotation the token injected %q", got)
	}
	out := e.mustBin("", "key", "rotate")
	if !strings.Contains(out, "shown only this once") || !strings.Contains(out, "Rotated the vault key (printed above)") {
		t.Errorf("rotate said:\n%s", out)
	}
}

// TestBinary_KeyPassphrase: a passphrase vault changes its passphrase, and
// rotation asks for a new one (AGENTKEYS_NEW_PASSPHRASE without a terminal).
func TestBinary_KeyPassphrase(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	e.vars["AGENTKEYS_PASSPHRASE"] = "first passphrase"
	e.mustBin("", "init", "--passphrase")
	e.mustBin("", "credentials", "add", "--name", "Stripe", "--value", "sk_x")
	if out := e.mustBin("", "key", "where"); !strings.Contains(out, "vault.key, wrapped by a passphrase") {
		t.Errorf("key where:\n%s", out)
	}
	if r := e.runBin("", "key", "passphrase"); r.code != 2 || !strings.Contains(r.stderr, "AGENTKEYS_NEW_PASSPHRASE") {
		t.Errorf("no new passphrase: exit %d %s", r.code, r.stderr)
	}
	e.vars["AGENTKEYS_NEW_PASSPHRASE"] = "second passphrase"
	e.mustBin("", "key", "passphrase")
	if r := e.runBin("", "credentials", "list"); r.code != 6 {
		t.Errorf("old passphrase still opens: exit %d", r.code)
	}
	e.vars["AGENTKEYS_PASSPHRASE"] = "second passphrase"
	e.vars["AGENTKEYS_NEW_PASSPHRASE"] = "third passphrase"
	if out := e.mustBin("", "key", "rotate", "--data-key"); !strings.Contains(out, "1 value(s) re-sealed") {
		t.Errorf("rotate said %q", out)
	}
	e.vars["AGENTKEYS_PASSPHRASE"] = "third passphrase"
	if !strings.Contains(e.mustBin("", "credentials", "list"), "Stripe") {
		t.Error("vault does not open with the new passphrase")
	}
	// An environment-key vault has no passphrase to change.
	env := newEnv(t)
	env.init()
	if r := env.runBin("", "key", "passphrase"); r.code != 2 || !strings.Contains(r.stderr, "not a passphrase") {
		t.Errorf("key passphrase on an env vault: exit %d %s", r.code, r.stderr)
	}
}

// TestKeyRotate_Keychain: a keychain vault's key is replaced there.
func TestKeyRotate_Keychain(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "AGENTKEYS_MASTER_KEY")
	kc := &rotKeychain{m: map[string]string{}}
	e.keychain = kc
	e.init()
	e.must("credentials", "add", "--name", "Stripe", "--value", "sk_x")
	if out := e.must("key", "where"); !strings.Contains(out, `the OS keychain, service "agentkeys"`) {
		t.Errorf("key where:\n%s", out)
	}
	before := len(kc.m)
	var old string
	for _, v := range kc.m {
		old = v
	}
	if out := e.must("key", "rotate"); !strings.Contains(out, "replaced in the OS keychain") {
		t.Errorf("rotate said %q", out)
	}
	for _, v := range kc.m {
		if v == old || len(kc.m) != before {
			t.Fatal("the keychain entry was not replaced")
		}
	}
	if !strings.Contains(e.must("credentials", "list"), "Stripe") {
		t.Error("vault does not open after rotation")
	}
}

// rotKeychain is an in-memory keychain whose entries the test reads.
type rotKeychain struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *rotKeychain) Get(s, u string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[s+"/"+u]
	if !ok {
		return "", localvault.ErrKeyNotFound
	}
	return v, nil
}

func (k *rotKeychain) Set(s, u, v string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[s+"/"+u] = v
	return nil
}

func (k *rotKeychain) Delete(s, u string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, s+"/"+u)
	return nil
}
