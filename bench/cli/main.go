// Command cli measures the CLI's start-up and list costs against baselines,
// side by side in one run:
//
//		go run ./bench/cli [-n 10000] [-runs 15]
//
//	  - `agentkeys credentials list` (piped) over a vault of -n credentials,
//	    against the sqlite3 command-line tool running the same query on the
//	    same file (needs sqlite3 on PATH; skipped otherwise). Target: < 3×.
//	  - `agentkeys --version` against a cobra hello-world's `--version`.
//	    Target: < 1.3×.
//	  - shell completion of credential names (`agentkeys __complete
//	    credentials show ""`) over 1,000 credentials. Target: <= 50 ms.
//
// Each figure is the median of -runs runs, the commands interleaved so a
// busy machine slows both alike. Binaries are built into a temporary
// directory; vaults live there too, unlocked by a random key.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/localvault"
)

func main() {
	n := flag.Int("n", 10000, "credentials in the list benchmark's vault")
	runs := flag.Int("runs", 15, "runs per command (the median is reported)")
	flag.Parse()
	if err := run(*n, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cli:", err)
		os.Exit(1)
	}
}

func run(n, runs int) error {
	dir, err := os.MkdirTemp("", "agentkeys-bench-cli-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ak, hello := filepath.Join(dir, "agentkeys"), filepath.Join(dir, "hello")
	for bin, pkg := range map[string]string{ak: "./cmd/agentkeys", hello: "./bench/cli/hello"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	master := base64.StdEncoding.EncodeToString(key)

	big, err := vault(filepath.Join(dir, "big"), master, n)
	if err != nil {
		return err
	}
	small, err := vault(filepath.Join(dir, "small"), master, 1000)
	if err != nil {
		return err
	}
	env := func(home string) []string {
		return append(os.Environ(), "AGENTKEYS_HOME="+home, "AGENTKEYS_MASTER_KEY="+master, "HOME="+dir)
	}
	cmd := func(home string, name string, args ...string) func() error {
		return func() error {
			c := exec.Command(name, args...)
			c.Env = env(home)
			c.Stdout, c.Stderr = nil, nil
			return c.Run()
		}
	}

	fmt.Printf("bench/cli: medians of %d runs\n", runs)
	list := cmd(big, ak, "credentials", "list")
	if sq, err := exec.LookPath("sqlite3"); err == nil {
		query := cmd(big, sq, "-separator", "\t", filepath.Join(big, localvault.DBFileName),
			"SELECT id, name, type, allowed_hosts, created_at FROM credentials ORDER BY name_key")
		t, err := compare(runs, list, query)
		if err != nil {
			return err
		}
		fmt.Printf("credentials list, %d credentials: agentkeys %v, sqlite3 %v: %.2f× (target < 3×)\n", n, t[0], t[1], ratio(t))
	} else {
		fmt.Println("credentials list: sqlite3 is not on PATH, skipped (apt-get install sqlite3)")
	}
	t, err := compare(runs, cmd(big, ak, "--version"), cmd(big, hello, "--version"))
	if err != nil {
		return err
	}
	fmt.Printf("start-up: agentkeys --version %v, cobra hello-world --version %v: %.2f× (target < 1.3×)\n", t[0], t[1], ratio(t))
	t, err = compare(runs, cmd(small, ak, "__complete", "credentials", "show", ""))
	if err != nil {
		return err
	}
	fmt.Printf("completion of credential names, 1000 credentials: %v (target <= 50ms)\n", t[0])
	return nil
}

// vault creates a vault in home with n API_KEY credentials.
func vault(home, master string, n int) (string, error) {
	ctx := context.Background()
	cfg := localvault.Config{Home: home, MasterKey: master}
	if _, err := localvault.Init(ctx, cfg, localvault.InitOptions{}); err != nil {
		return "", err
	}
	v, err := localvault.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer v.Close()
	for i := 0; i < n; i++ {
		_, err := v.CreateCredential(ctx, &agentkeys.CredentialInput{
			Name: fmt.Sprintf("Credential %05d", i), Type: agentkeys.APIKey,
			AllowedHosts: []string{fmt.Sprintf("api%d.example.com", i%50)}, Secret: agentkeys.Secret{Value: "sk-bench"},
		})
		if err != nil {
			return "", err
		}
	}
	return home, nil
}

// compare runs each function runs times, interleaved, and returns their
// median durations.
func compare(runs int, fns ...func() error) ([]time.Duration, error) {
	times := make([][]time.Duration, len(fns))
	for r := 0; r < runs; r++ {
		for i, fn := range fns {
			start := time.Now()
			if err := fn(); err != nil {
				return nil, err
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	out := make([]time.Duration, len(fns))
	for i, ts := range times {
		slices.Sort(ts)
		out[i] = ts[len(ts)/2].Round(100 * time.Microsecond)
	}
	return out, nil
}

func ratio(t []time.Duration) float64 { return float64(t[0]) / float64(t[1]) }
