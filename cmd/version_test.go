package cmd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys/internal/version"
)

func TestVersion(t *testing.T) {
	e := newEnv(t)
	want := version.Get()

	out := e.must("version")
	if out != want.String() || !strings.HasPrefix(out, "agentkeys "+want.Version+"\n") {
		t.Errorf("version printed %q, want %q", out, want.String())
	}
	if got := e.must("--version"); got != out {
		t.Errorf("--version printed %q, want the same as `version`: %q", got, out)
	}

	var in map[string]string
	if err := json.Unmarshal([]byte(e.must("version", "--json")), &in); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "commit", "date", "goVersion", "os", "arch"} {
		if in[k] == "" {
			t.Errorf("version --json: %q is empty or missing in %v", k, in)
		}
	}
	if in["version"] != want.Version || in["os"] != runtime.GOOS || in["arch"] != runtime.GOARCH {
		t.Errorf("version --json = %v", in)
	}

	if r := e.run("version", "extra"); r.code != 2 || r.stdout != "" {
		t.Errorf("version extra: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestVersion_Binary builds the binary the way a release does (ldflags) and
// without them, and checks what each reports.
func TestVersion_Binary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds agentkeys; skipped with -short")
	}
	dir := t.TempDir()
	build := func(name string, args ...string) string {
		t.Helper()
		bin := filepath.Join(dir, name)
		c := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), "github.com/agentkeys/agentkeys/cmd/agentkeys")...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		return bin
	}
	versionJSON := func(bin string) map[string]string {
		t.Helper()
		out, err := exec.Command(bin, "version", "--json").Output()
		if err != nil {
			t.Fatalf("%s version --json: %v", bin, err)
		}
		var in map[string]string
		if err := json.Unmarshal(out, &in); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return in
	}

	const pkg = "github.com/agentkeys/agentkeys/internal/version"
	release := build("release", "-trimpath", "-ldflags",
		"-s -w -X "+pkg+".version=1.2.3 -X "+pkg+".commit=0123456789abcdef0123456789abcdef01234567 -X "+pkg+".date=2026-01-02T03:04:05Z")
	in := versionJSON(release)
	if in["version"] != "1.2.3" || in["commit"] != "0123456789abcdef0123456789abcdef01234567" || in["date"] != "2026-01-02T03:04:05Z" {
		t.Errorf("release build: %v", in)
	}
	out, err := exec.Command(release, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "agentkeys 1.2.3\ncommit:   0123456789abcdef") {
		t.Errorf("release build --version: %q (%v)", out, err)
	}

	// serve names the stamped version on its start line and in /healthz.
	e := serveEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(release, "serve", "--listen", addr)
	srv.Env = e.environ()
	stdout, _ := srv.StdoutPipe()
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on http://"+addr) || !strings.Contains(line, "version 1.2.3") {
		t.Fatalf("serve's first line %q (%v), want its address and version 1.2.3; stderr: %s", line, err, stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Version string }
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health.Status != "ok" || health.Version != "1.2.3" {
		t.Errorf("/healthz of the release build = %d %+v, want ok and 1.2.3", resp.StatusCode, health)
	}

	// Without ldflags and without VCS stamping: never empty.
	plain := build("plain", "-buildvcs=false")
	in = versionJSON(plain)
	if in["version"] != version.Dev || in["commit"] != version.Unknown || in["date"] != version.Unknown {
		t.Errorf("build without ldflags or VCS: %v", in)
	}
}

// TestMan writes the man pages with a build that has `man` (-tags
// manpages, as scripts/release-assets.sh builds it) and checks the root page
// and a subcommand's; the default build has no `man` command.
func TestMan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds agentkeys; skipped with -short")
	}
	e := newEnv(t)
	if r := e.run("man", t.TempDir()); r.code != 2 || !strings.Contains(r.stderr, `unknown command "man"`) {
		t.Errorf("man in the default build: exit %d, stderr %q", r.code, r.stderr)
	}
	bin := filepath.Join(t.TempDir(), "agentkeys")
	if out, err := exec.Command("go", "build", "-tags", "manpages", "-o", bin, "github.com/agentkeys/agentkeys/cmd/agentkeys").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags manpages: %v\n%s", err, out)
	}
	run := func(args ...string) (string, int) {
		c := exec.Command(bin, args...)
		c.Env = e.environ()
		out, err := c.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	dir := filepath.Join(t.TempDir(), "man1")
	if out, code := run("man", dir); code != 0 {
		t.Fatalf("man %s: exit %d\n%s", dir, code, out)
	}
	root, err := os.ReadFile(filepath.Join(dir, "agentkeys.1"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(root); !strings.Contains(s, `.TH "AGENTKEYS" "1"`) || !strings.Contains(s, "agentkeys-credentials(1)") {
		t.Errorf("agentkeys.1 lacks its header or SEE ALSO:\n%s", s)
	}
	add, err := os.ReadFile(filepath.Join(dir, "agentkeys-credentials-add.1"))
	if err != nil || !strings.Contains(string(add), "--allow-host") {
		t.Errorf("agentkeys-credentials-add.1: %v\n%s", err, add)
	}
	if _, err := os.Stat(filepath.Join(dir, "agentkeys-man.1")); err == nil {
		t.Error("the hidden man command got a page of its own")
	}
	if out, _ := run("--help"); !strings.Contains(out, "credentials") || strings.Contains(out, "man ") {
		t.Error("the hidden man command shows in --help")
	}
	if out, code := run("man"); code != 2 {
		t.Errorf("man without a directory: exit %d\n%s", code, out)
	}
}
