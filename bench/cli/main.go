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
// busy machine slows both alike: the wall time, and the CPU time (user +
// system) the process used, which a loaded machine inflates less. Binaries are built into a temporary
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
	cmd := func(home string, name string, args ...string) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			c := exec.Command(name, args...)
			c.Env = env(home)
			c.Stdout, c.Stderr = nil, nil
			if err := c.Run(); err != nil {
				return 0, fmt.Errorf("%s: %w", c, err)
			}
			return c.ProcessState.UserTime() + c.ProcessState.SystemTime(), nil
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
		fmt.Printf("credentials list, %d credentials: agentkeys %v, sqlite3 %v: %s (target < 3×)\n", n, t.wall[0], t.wall[1], t.ratios())
	} else {
		fmt.Println("credentials list: sqlite3 is not on PATH, skipped (apt-get install sqlite3)")
	}
	t, err := compare(runs, cmd(big, ak, "--version"), cmd(big, hello, "--version"))
	if err != nil {
		return err
	}
	fmt.Printf("start-up: agentkeys --version %v, cobra hello-world --version %v: %s (target < 1.3×)\n", t.wall[0], t.wall[1], t.ratios())
	t, err = compare(runs, cmd(small, ak, "__complete", "credentials", "show", ""))
	if err != nil {
		return err
	}
	fmt.Printf("completion of credential names, 1000 credentials: %v, CPU %v (target <= 50ms)\n", t.wall[0], t.cpu[0])
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

// timings are the medians compare measured, one per command.
type timings struct{ wall, cpu []time.Duration }

// ratios says how the first command compares with the second.
func (t timings) ratios() string {
	return fmt.Sprintf("%.2f× (CPU %v vs %v: %.2f×)", ratio(t.wall), t.cpu[0], t.cpu[1], ratio(t.cpu))
}

// compare runs each function runs times, interleaved, and returns the
// medians of their wall times and of the CPU times they report.
func compare(runs int, fns ...func() (time.Duration, error)) (timings, error) {
	wall, cpu := make([][]time.Duration, len(fns)), make([][]time.Duration, len(fns))
	for r := 0; r < runs; r++ {
		for i, fn := range fns {
			start := time.Now()
			c, err := fn()
			if err != nil {
				return timings{}, err
			}
			wall[i], cpu[i] = append(wall[i], time.Since(start)), append(cpu[i], c)
		}
	}
	return timings{median(wall), median(cpu)}, nil
}

// median returns the median of each list, rounded to 0.1 ms.
func median(lists [][]time.Duration) []time.Duration {
	out := make([]time.Duration, len(lists))
	for i, ts := range lists {
		slices.Sort(ts)
		out[i] = ts[len(ts)/2].Round(100 * time.Microsecond)
	}
	return out
}

func ratio(t []time.Duration) float64 { return float64(t[0]) / float64(t[1]) }
