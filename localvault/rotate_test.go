package localvault_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

const rotateHelperEnv = "AGENTKEYS_TEST_ROTATE_HELPER"

// TestRotateHelperProcess rotates the key of the vault in
// AGENTKEYS_TEST_HOME and stops dead (prints "AT <step>" and sleeps) at the
// step named by the helper variable, for the parent to kill -9.
func TestRotateHelperProcess(t *testing.T) {
	stopAt := os.Getenv(rotateHelperEnv)
	if stopAt == "" {
		t.Skip("helper process for TestRotateKey_KillNine")
	}
	ctx := context.Background()
	cfg := localvault.Config{Home: os.Getenv("AGENTKEYS_TEST_HOME"), MasterKey: os.Getenv("AGENTKEYS_TEST_MASTER_KEY"),
		Passphrase: os.Getenv("AGENTKEYS_TEST_PASSPHRASE"), Keychain: newMemKeyStore()}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	localvault.SetRotateHook(func(step string) {
		if step == stopAt {
			fmt.Printf("AT %s\n", step)
			time.Sleep(time.Hour)
		}
	})
	newKey, _ := agentkeys.ParseKey("new", os.Getenv("AGENTKEYS_TEST_NEW_KEY"))
	_, err = v.RotateKey(ctx, localvault.RotateOptions{
		DataKey:       os.Getenv("AGENTKEYS_TEST_DATA_KEY") != "",
		NewPassphrase: os.Getenv("AGENTKEYS_TEST_NEW_PASSPHRASE"),
		SaveMasterKey: func(string) error { return nil },
		NewRootKey:    newKey,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate:", err)
		os.Exit(1)
	}
	fmt.Println("AT end")
	time.Sleep(time.Hour)
}

// TestRotateKey_KillNine kills a rotating process at every step, for an
// environment key and a passphrase key, with and without a new data key:
// the vault then opens with the old key or the new one — never neither —
// and every value opens.
func TestRotateKey_KillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs helper processes")
	}
	newKeyB64 := base64.StdEncoding.EncodeToString(make32(7))
	newKey, _ := agentkeys.ParseKey("new", newKeyB64)
	for _, source := range []string{"environment", "passphrase"} {
		for _, dataKey := range []bool{false, true} {
			for _, step := range []string{"resealed", "pending", "saved", "done", "end"} {
				if step == "resealed" && !dataKey {
					continue
				}
				t.Run(fmt.Sprintf("%s/dataKey=%v/%s", source, dataKey, step), func(t *testing.T) {
					ctx := context.Background()
					home := t.TempDir()
					oldKey := base64.StdEncoding.EncodeToString(make32(3))
					cfg := localvault.Config{Home: home, Keychain: newMemKeyStore()}
					env := append(os.Environ(), rotateHelperEnv+"="+step, "AGENTKEYS_TEST_HOME="+home,
						"AGENTKEYS_TEST_NEW_KEY="+newKeyB64, "AGENTKEYS_TEST_NEW_PASSPHRASE=new passphrase")
					if source == "environment" {
						cfg.MasterKey = oldKey
						env = append(env, "AGENTKEYS_TEST_MASTER_KEY="+oldKey)
					} else {
						cfg.Passphrase = "old passphrase"
						env = append(env, "AGENTKEYS_TEST_PASSPHRASE=old passphrase")
					}
					if dataKey {
						env = append(env, "AGENTKEYS_TEST_DATA_KEY=1")
					}
					if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{UsePassphrase: source == "passphrase"}); err != nil {
						t.Fatal(err)
					}
					v, err := localvault.Open(ctx, cfg)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < 5; i++ {
						if _, err := v.CreateCredential(ctx, apiKeyInput(fmt.Sprintf("c%d", i), fmt.Sprintf("value-%d", i))); err != nil {
							t.Fatal(err)
						}
					}
					v.Close()

					c := exec.Command(os.Args[0], "-test.run=^TestRotateHelperProcess$")
					c.Env = env
					out, _ := c.StdoutPipe()
					var stderr strings.Builder
					c.Stderr = &stderr
					if err := c.Start(); err != nil {
						t.Fatal(err)
					}
					line, err := bufio.NewReader(out).ReadString('\n')
					if err != nil || strings.TrimSpace(line) != "AT "+step {
						c.Process.Kill()
						c.Wait()
						t.Fatalf("helper: %q %v\n%s", line, err, stderr.String())
					}
					c.Process.Kill() // SIGKILL: no deferred function runs
					c.Wait()

					oldCfg, newCfg := cfg, cfg
					if source == "environment" {
						newCfg.MasterKey = newKeyB64
					} else {
						newCfg.Passphrase = "new passphrase"
					}
					opened := 0
					for name, try := range map[string]localvault.Config{"old": oldCfg, "new": newCfg} {
						v, err := localvault.Open(ctx, try)
						if err != nil {
							t.Logf("%s key: %v", name, err)
							continue
						}
						opened++
						for i := 0; i < 5; i++ {
							c, err := v.FindCredential(ctx, fmt.Sprintf("c%d", i))
							if err != nil {
								t.Fatal(err)
							}
							s, err := v.OpenSecret(ctx, &agentkeys.Route{Credential: c})
							if err != nil || s.Value != fmt.Sprintf("value-%d", i) {
								t.Fatalf("%s key: value %d does not open: %v", name, i, err)
							}
						}
						v.Close()
					}
					if opened == 0 {
						t.Fatal("the vault opens with neither the old key nor the new one")
					}
					_ = newKey
				})
			}
		}
	}
}

func make32(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// TestRotateKey_Keychain: a keychain vault's key is replaced in the
// keychain; the vault opens with it and values open.
func TestRotateKey_Keychain(t *testing.T) {
	ctx := context.Background()
	ks := newMemKeyStore()
	cfg := localvault.Config{Home: t.TempDir(), Keychain: ks}
	res, err := localvault.Init(ctx, cfg, localvault.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ks.Get(localvault.KeychainService, res.WorkspaceID)
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateCredential(ctx, apiKeyInput("a", "value-a")); err != nil {
		t.Fatal(err)
	}
	r, err := v.RotateKey(ctx, localvault.RotateOptions{DataKey: true})
	if err != nil || r.Resealed != 1 || r.DataKeyVersion != 2 {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	v.Close()
	after, _ := ks.Get(localvault.KeychainService, res.WorkspaceID)
	if after == before || after == "" {
		t.Fatal("the keychain entry was not replaced")
	}
	v, err = localvault.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, _ := v.FindCredential(ctx, "a")
	if s, err := v.OpenSecret(ctx, &agentkeys.Route{Credential: c}); err != nil || s.Value != "value-a" {
		t.Fatalf("value after rotation: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, localvault.KeyFileName)); err == nil {
		t.Error("a keychain vault got a key file")
	}
}
