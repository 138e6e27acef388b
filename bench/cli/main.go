// Command cli measures the CLI's start-up and list costs against baselines,
// side by side in one run:
//
//		go run ./bench/cli [-n 10000] [-runs 15]
//
//	  - `agentkeys credentials list` (piped) over a vault of -n credentials,
//	    against the sqlite3 command-line tool running the same query on the
//	    same file (needs sqlite3 on PATH; skipped otherwise): issue 14's
//	    target, < 3×.
//	  - `agentkeys --version` against a cobra hello-world's `--version`:
//	    issue 14's target, < 1.3×.
//	  - both against the floor (bench/cli/floor): a cobra program that links
//	    every third-party package agentkeys imports and runs the list query
//	    through database/sql and modernc.org/sqlite, as little as a program
//	    on agentkeys' dependencies can do. The floor's ratios to sqlite3 and
//	    to the hello-world are what the dependencies cost; agentkeys' ratios
//	    to the floor are what agentkeys adds. Targets: --version < 1.3× the
//	    floor, list < 1.5× the floor.
//	  - shell completion of credential names (`agentkeys __complete
//	    credentials show ""`) over 1,000 credentials. Target: <= 50 ms.
//
// Each figure is the median of -runs runs, the commands interleaved so a
// busy machine slows all alike: the wall time, and the CPU time (user +
// system) the process used, which a loaded machine inflates less. Binaries
// are built into a temporary directory; vaults live there too, unlocked by a
// random key. A line warns when the floor's imports no longer match
// agentkeys' third-party imports.
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
	"strings"
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
	ak, hello, floor := filepath.Join(dir, "agentkeys"), filepath.Join(dir, "hello"), filepath.Join(dir, "floor")
	for bin, pkg := range map[string]string{ak: "./cmd/agentkeys", hello: "./bench/cli/hello", floor: "./bench/cli/floor"} {
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
	if err := checkFloorImports(); err != nil {
		fmt.Println("warning:", err)
	}
	list := cmd(big, ak, "credentials", "list")
	floorList := cmd(big, floor, "list", filepath.Join(big, localvault.DBFileName))
	if sq, err := exec.LookPath("sqlite3"); err == nil {
		query := cmd(big, sq, "-separator", "\t", filepath.Join(big, localvault.DBFileName), floorQuery)
		t, err := compare(runs, list, query, floorList)
		if err != nil {
			return err
		}
		fmt.Printf("credentials list, %d credentials: agentkeys %v, sqlite3 %v: %s (issue 14's target < 3×)\n", n, t.wall[0], t.wall[1], t.ratios(0, 1))
		fmt.Printf("  floor %v: floor/sqlite3 %s; agentkeys/floor %s (target < 1.5×)\n", t.wall[2], t.ratios(2, 1), t.ratios(0, 2))
	} else {
		fmt.Println("credentials list: sqlite3 is not on PATH, compared with the floor only (apt-get install sqlite3)")
		t, err := compare(runs, list, floorList)
		if err != nil {
			return err
		}
		fmt.Printf("credentials list, %d credentials: agentkeys %v, floor %v: %s (target < 1.5×)\n", n, t.wall[0], t.wall[1], t.ratios(0, 1))
	}
	t, err := compare(runs, cmd(big, ak, "--version"), cmd(big, hello, "--version"), cmd(big, floor, "--version"))
	if err != nil {
		return err
	}
	fmt.Printf("start-up: agentkeys --version %v, cobra hello-world --version %v: %s (issue 14's target < 1.3×)\n", t.wall[0], t.wall[1], t.ratios(0, 1))
	fmt.Printf("  floor --version %v: floor/hello-world %s; agentkeys/floor %s (target < 1.3×)\n", t.wall[2], t.ratios(2, 1), t.ratios(0, 2))
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

// ratios says how command i compares with command j.
func (t timings) ratios(i, j int) string {
	return fmt.Sprintf("%.2f× (CPU %v vs %v: %.2f×)", ratio(t.wall, i, j), t.cpu[i], t.cpu[j], ratio(t.cpu, i, j))
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

func ratio(t []time.Duration, i, j int) float64 { return float64(t[i]) / float64(t[j]) }

// floorQuery is the list query sqlite3 and the floor run (bench/cli/floor's
// Query).
const floorQuery = "SELECT id, name, type, allowed_hosts, created_at FROM credentials ORDER BY name_key"

// checkFloorImports returns an error naming the differences between the
// third-party packages agentkeys' own packages import and those the floor
// imports (go list), so the floor does not drift from what it stands for.
func checkFloorImports() error {
	list := func(args ...string) (map[string]bool, error) {
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("go list %v: %w", args, err)
		}
		set := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || (fields[0] != "floor" && !strings.HasPrefix(fields[0], "github.com/agentkeys/agentkeys")) {
				continue
			}
			for _, imp := range fields[1:] {
				if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") && !strings.HasPrefix(imp, "github.com/agentkeys/agentkeys") {
					set[imp] = true
				}
			}
		}
		return set, nil
	}
	ours, err := list("-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{join .Imports \" \"}}{{end}}", "github.com/agentkeys/agentkeys/cmd/agentkeys")
	if err != nil {
		return err
	}
	floor, err := list("-f", "floor {{join .Imports \" \"}}", "github.com/agentkeys/agentkeys/bench/cli/floor")
	if err != nil {
		return err
	}
	delete(floor, "github.com/spf13/cobra") // the floor's own command
	ours["github.com/spf13/cobra"] = false
	var missing, extra []string
	for p, used := range ours {
		if used && !floor[p] {
			missing = append(missing, p)
		}
	}
	for p := range floor {
		if _, ok := ours[p]; !ok {
			extra = append(extra, p)
		}
	}
	if len(missing)+len(extra) == 0 {
		return nil
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Errorf("bench/cli/floor's imports differ from agentkeys': missing %v, not imported by agentkeys %v", missing, extra)
}
