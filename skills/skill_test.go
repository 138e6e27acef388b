// Package skills_test keeps the OpenClaw skills in this directory honest: the
// front matter must be what OpenClaw and ClawHub read, and every shell example
// in a SKILL.md must work, run as written (target URLs pointed at a loopback
// upstream) against a real `agentkeys up` and a real `agentkeys serve`.
package skills_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agentkeys/agentkeys"
)

const skillPath = "agentkeys/SKILL.md"

// frontMatter is the part of SKILL.md's YAML front matter OpenClaw reads.
type frontMatter struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Metadata    map[string]any `yaml:"metadata"`
}

type openclawMeta struct {
	Emoji      string              `json:"emoji"`
	Homepage   string              `json:"homepage"`
	PrimaryEnv string              `json:"primaryEnv"`
	Requires   map[string][]string `json:"requires"`
	Install    []map[string]any    `json:"install"`
	OS         []string            `json:"os"`
}

// readSkill splits SKILL.md into its front matter (the raw YAML) and body.
func readSkill(t *testing.T) (yamlText, body string) {
	t.Helper()
	b, err := os.ReadFile(skillPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "---\n") {
		t.Fatalf("%s does not start with a --- front matter line", skillPath)
	}
	end := strings.Index(s[4:], "\n---\n")
	if end < 0 {
		t.Fatalf("%s: front matter is not closed by a --- line", skillPath)
	}
	return s[4 : 4+end+1], s[4+end+5:]
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// TestSkill_FrontMatter checks the front matter against OpenClaw's format:
// name and description, and metadata.openclaw with requires (env, bins),
// primaryEnv and install entries, each with the field its kind needs
// (OpenClaw silently drops an entry without it). metadata is one line of
// JSON, which both a YAML parser and OpenClaw's line-based one read.
func TestSkill_FrontMatter(t *testing.T) {
	raw, body := readSkill(t)
	var fm frontMatter
	if err := yaml.Unmarshal([]byte(raw), &fm); err != nil {
		t.Fatalf("front matter is not YAML: %v", err)
	}
	if fm.Name != filepath.Base(filepath.Dir(skillPath)) || !regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`).MatchString(fm.Name) {
		t.Errorf("name %q: must be the folder's name, lowercase letters, digits and hyphens", fm.Name)
	}
	if n := len(fm.Description); n < 40 || n > 1024 || !strings.Contains(fm.Description, "Use when") {
		t.Errorf("description (%d bytes) must say what the skill does and, with \"Use when\", when to use it", n)
	}

	// metadata: a single line of JSON.
	var metaLine string
	for _, l := range strings.Split(raw, "\n") {
		if strings.HasPrefix(l, "metadata:") {
			metaLine = strings.TrimSpace(strings.TrimPrefix(l, "metadata:"))
		}
	}
	var meta struct {
		OpenClaw *openclawMeta `json:"openclaw"`
	}
	dec := json.NewDecoder(strings.NewReader(metaLine))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil || meta.OpenClaw == nil {
		t.Fatalf("metadata must be one line of JSON {\"openclaw\": {…}} with known fields only: %v\n%s", err, metaLine)
	}
	if _, ok := fm.Metadata["openclaw"]; !ok {
		t.Errorf("YAML sees no metadata.openclaw: %v", fm.Metadata)
	}
	oc := meta.OpenClaw

	for k := range oc.Requires {
		switch k {
		case "bins", "anyBins", "env", "config":
		default:
			t.Errorf("requires.%s is not a key OpenClaw knows (bins, anyBins, env, config)", k)
		}
	}
	if len(oc.Requires["env"]) == 0 || len(oc.Requires["bins"]) == 0 {
		t.Errorf("requires must name the env variables and binaries the skill needs: %v", oc.Requires)
	}
	for _, e := range append(append([]string{}, oc.Requires["env"]...), oc.PrimaryEnv) {
		if !envName.MatchString(e) || !strings.Contains(body, e) {
			t.Errorf("env variable %q: not a variable name, or not explained in the body", e)
		}
	}
	for _, b := range oc.Requires["bins"] {
		if !strings.Contains(body, b+" ") {
			t.Errorf("required binary %q is never used in the body", b)
		}
	}

	// Install entries: each kind with its field; the Homebrew formula is the
	// tap goreleaser.yaml writes, the go module is this repository's command.
	want := map[string]string{"brew": "formula", "node": "package", "uv": "package", "go": "module", "download": "url"}
	tap := goreleaserTap(t)
	ids := map[string]bool{}
	if len(oc.Install) == 0 {
		t.Error("no install entries")
	}
	for i, in := range oc.Install {
		kind, _ := in["kind"].(string)
		field, ok := want[kind]
		if !ok {
			t.Errorf("install[%d]: kind %q is not one of brew, node, go, uv, download", i, kind)
			continue
		}
		v, _ := in[field].(string)
		if v == "" {
			t.Errorf("install[%d] (%s) has no %q: OpenClaw would drop it", i, kind, field)
		}
		id, _ := in["id"].(string)
		if id == "" || ids[id] {
			t.Errorf("install[%d]: id %q missing or repeated", i, id)
		}
		ids[id] = true
		if bins, _ := in["bins"].([]any); len(bins) == 0 {
			t.Errorf("install[%d]: bins must name what it installs", i)
		}
		switch kind {
		case "brew":
			if v != tap+"/agentkeys" {
				t.Errorf("install[%d]: formula %q, but goreleaser.yaml writes the formula for tap %s", i, v, tap)
			}
		case "go":
			pkg, ver, ok := strings.Cut(v, "@")
			if !ok || ver == "" || !strings.HasPrefix(pkg, "github.com/agentkeys/agentkeys/") {
				t.Errorf("install[%d]: module %q must be github.com/agentkeys/agentkeys/…@version", i, v)
			} else if _, err := os.Stat(filepath.Join("..", strings.TrimPrefix(pkg, "github.com/agentkeys/agentkeys/"), "main.go")); err != nil {
				t.Errorf("install[%d]: module %q names no command in this repository", i, v)
			}
		}
	}
}

// goreleaserTap returns "owner/tap" for the Homebrew tap goreleaser.yaml
// writes the formula for (a repository homebrew-tap is the tap owner/tap).
func goreleaserTap(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Brews []struct {
			Repository struct{ Owner, Name string } `yaml:"repository"`
		} `yaml:"brews"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil || len(cfg.Brews) != 1 {
		t.Fatalf("goreleaser.yaml: %v (%d brews)", err, len(cfg.Brews))
	}
	r := cfg.Brews[0].Repository
	return r.Owner + "/" + strings.TrimPrefix(r.Name, "homebrew-")
}

// TestSkill_ErrorTable: the table of error codes names every code agentkeys
// answers with, each with its real status.
func TestSkill_ErrorTable(t *testing.T) {
	_, body := readSkill(t)
	row := regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([A-Z_]+)` \\|")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(body, -1) {
		status, _ := strconv.Atoi(m[1])
		if got := agentkeys.StatusForCode(m[2]); got != status || (status == 500 && m[2] != agentkeys.EINTERNAL) {
			t.Errorf("error table: %s is listed as %d, agentkeys answers it with %d", m[2], status, got)
		}
		seen[m[2]] = true
	}
	for _, code := range []string{agentkeys.EINVALID, agentkeys.EUNAUTHORIZED, agentkeys.EFORBIDDEN, agentkeys.EDESTINATION,
		agentkeys.ENOTFOUND, agentkeys.ECONFLICT, agentkeys.ETOOLARGE, agentkeys.ERATELIMIT, agentkeys.EINTERNAL,
		agentkeys.EUPSTREAM, agentkeys.ETIMEOUT, agentkeys.EUNAVAILABLE} {
		if !seen[code] {
			t.Errorf("error table lacks %s", code)
		}
	}
}

// example is one ```sh block of the skill.
type example struct {
	line   int    // SKILL.md line of its opening fence
	only   string // "up" or "serve" when annotated <!-- skill-test: NAME -->
	script string
}

// examples returns the shell blocks of body; offset is the number of lines
// before body in SKILL.md, so line numbers are the file's.
func examples(t *testing.T, body string, offset int) []example {
	t.Helper()
	var out []example
	var cur *example
	only := ""
	for i, l := range strings.Split(body, "\n") {
		switch {
		case cur != nil && l == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.script += l + "\n"
		case l == "```sh" || l == "```bash":
			cur = &example{line: offset + i + 1, only: only}
			only = ""
		case strings.HasPrefix(l, "<!-- skill-test:"):
			only = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "<!-- skill-test:"), "-->"))
		case strings.TrimSpace(l) != "":
			only = ""
		}
	}
	if cur != nil {
		t.Fatalf("SKILL.md line %d: unclosed code block", cur.line)
	}
	return out
}

// The credentials the examples name, as the test stores them.
var services = []struct {
	name, host string
	args       []string // for `credentials add`, after --name and before --allow-host
	auth       string   // the Authorization the upstream must receive
}{
	{"Resend", "api.resend.com", []string{"--type", "API_KEY", "--value", "re_skilltest_resend_canary"}, "Bearer re_skilltest_resend_canary"},
	{"Stripe", "api.stripe.com", []string{"--type", "API_KEY", "--value", "sk_test_skilltest_stripe_canary"}, "Bearer sk_test_skilltest_stripe_canary"},
	{"GitHub", "api.github.com", []string{"--type", "API_KEY", "--value", "ghp_skilltest_github_canary"}, "Bearer ghp_skilltest_github_canary"},
	{"Jira", "acme.atlassian.net", []string{"--type", "BASIC_AUTH", "--username", "ada@example.com", "--password", "jira_skilltest_canary"},
		"Basic " + base64.StdEncoding.EncodeToString([]byte("ada@example.com:jira_skilltest_canary"))},
}

// hit is one request the upstream received.
type hit struct {
	host, method, path, query string
	header                    http.Header
	body                      []byte
}

// upstream stands in for every API: a target https://HOST/PATH is rewritten
// to http://127.0.0.1:PORT/HOST/PATH. It answers 200 with a marker when the
// injected Authorization is the one HOST's credential holds, 401 otherwise.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.hits = append(u.hits, hit{host, r.Method, "/" + path, r.URL.RawQuery, r.Header.Clone(), b})
		u.mu.Unlock()
		for _, s := range services {
			if s.host == host && r.Header.Get("Authorization") == s.auth {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"skillTestUpstream": %q}`+"\n", host)
				return
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"message": "bad credentials for %s"}`+"\n", host)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) take() []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.hits
	u.hits = nil
	return h
}

var targetURL = regexp.MustCompile(`X-Target-Url: https://([a-z0-9.-]+)(/[^"]*)`)

// TestSkill_Examples runs every shell example of the skill against a real
// `agentkeys up` and a real `agentkeys serve`, each holding the four
// credentials the examples name and an agent with a proxy token for each.
// A proxy example must exit 0, and the upstream must have received each
// of its calls with the right credential injected and the headers, method
// and body the example sent; any other example must exit 0 and name every
// credential. No output may contain a credential value.
func TestSkill_Examples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds agentkeys and runs it; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the examples are POSIX shell")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing: the skill's examples need it", tool)
			}
			t.Skipf("%s is missing: the skill's examples need it", tool)
		}
	}
	_, body := readSkill(t)
	raw, _ := readSkill(t)
	exs := examples(t, body, strings.Count(raw, "\n")+2)
	if len(exs) < 5 {
		t.Fatalf("only %d shell examples found", len(exs))
	}
	bin := buildAgentkeys(t)
	up := newUpstream(t)
	allow := strings.TrimPrefix(up.URL, "http://")

	for _, mode := range []string{"up", "serve"} {
		t.Run(mode, func(t *testing.T) {
			env := startAgentkeys(t, bin, mode, allow)
			up.take()
			ran := 0
			for _, ex := range exs {
				if ex.only != "" && ex.only != mode {
					continue
				}
				ran++
				runExample(t, env, ex, up)
			}
			if ran == 0 {
				t.Fatal("no example ran")
			}
		})
	}
}

func runExample(t *testing.T, env []string, ex example, up *upstream) {
	t.Helper()
	script := targetURL.ReplaceAllString(ex.script, "X-Target-Url: "+up.URL+"/$1$2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	c.Env = env
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	out := stdout.String() + stderr.String()
	where := fmt.Sprintf("the example at SKILL.md line %d", ex.line)
	if err != nil {
		t.Fatalf("%s failed: %v\n%s\noutput:\n%s", where, err, ex.script, out)
	}
	for _, s := range services {
		for _, secret := range []string{strings.TrimPrefix(strings.TrimPrefix(s.auth, "Bearer "), "Basic "), "jira_skilltest_canary"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s printed a credential value:\n%s", where, out)
			}
		}
	}
	hits := up.take()
	calls := curlCalls(ex.script)
	if len(calls) == 0 {
		for _, s := range services {
			if !strings.Contains(strings.ToLower(out), strings.ToLower(s.name)) {
				t.Errorf("%s does not name the credential %s:\n%s", where, s.name, out)
			}
		}
		if len(hits) != 0 {
			t.Errorf("%s reached the upstream %d times", where, len(hits))
		}
		return
	}
	if len(hits) != len(calls) {
		t.Fatalf("%s: %d proxied calls, the upstream got %d", where, len(calls), len(hits))
	}
	for i, call := range calls {
		h := hits[i]
		if h.host != call.host || h.path != call.path || h.query != call.query || h.method != call.method {
			t.Errorf("%s call %d: upstream got %s %s%s?%s, want %s %s%s?%s", where, i+1, h.method, h.host, h.path, h.query,
				call.method, call.host, call.path, call.query)
		}
		for k, v := range call.headers {
			if got := h.header.Get(k); got != v {
				t.Errorf("%s call %d: upstream got %s: %q, want %q", where, i+1, k, got, v)
			}
		}
		for _, k := range []string{"X-Target-Url", "X-Credential-Name"} {
			if h.header.Get(k) != "" {
				t.Errorf("%s call %d: the proxy passed its own header %s upstream", where, i+1, k)
			}
		}
		if call.hasBody && len(h.body) == 0 {
			t.Errorf("%s call %d: the body did not arrive", where, i+1)
		}
		if strings.Contains(call.headers["Content-Type"], "json") && !json.Valid(h.body) {
			t.Errorf("%s call %d: body is not valid JSON: %s", where, i+1, h.body)
		}
		if !strings.Contains(out, `"skillTestUpstream": "`+call.host+`"`) {
			t.Errorf("%s call %d: the upstream's answer is not in the output:\n%s", where, i+1, out)
		}
	}
}

// call is what one curl command of an example asks the upstream for.
type call struct {
	method, host, path, query string
	headers                   map[string]string // the ones meant for the API
	hasBody                   bool
}

var (
	headerArg = regexp.MustCompile(`-H "([^"]*)"`)
	methodArg = regexp.MustCompile(`-X ([A-Z]+)`)
)

// curlCalls parses the curl commands of a script that go through the proxy.
func curlCalls(script string) []call {
	joined := strings.ReplaceAll(script, "\\\n", " ")
	var out []call
	for _, cmd := range strings.Split(joined, "\n") {
		m := targetURL.FindStringSubmatch(cmd)
		if !strings.HasPrefix(strings.TrimSpace(cmd), "curl ") || m == nil {
			continue
		}
		path, query, _ := strings.Cut(m[2], "?")
		c := call{method: "GET", host: m[1], path: path, query: query, headers: map[string]string{}, hasBody: strings.Contains(cmd, " -d ")}
		if c.hasBody {
			c.method = "POST"
		}
		if mm := methodArg.FindStringSubmatch(cmd); mm != nil {
			c.method = mm[1]
		}
		for _, h := range headerArg.FindAllStringSubmatch(cmd, -1) {
			k, v, _ := strings.Cut(h[1], ":")
			k, v = http.CanonicalHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v)
			switch k {
			case "Authorization", "X-Target-Url", "X-Credential-Name", "X-Target-Method":
			default:
				c.headers[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}

func buildAgentkeys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "agentkeys")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/agentkeys/agentkeys/cmd/agentkeys").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startAgentkeys starts `agentkeys up` or `agentkeys serve` in a temporary
// home, stores the four credentials, creates an agent with a token for each,
// and returns the environment an OpenClaw agent would have: both of the
// skill's configurations, and agentkeys on PATH.
func startAgentkeys(t *testing.T, bin, mode, allowHost string) []string {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	vars := map[string]string{
		"HOME":                 dir,
		"AGENTKEYS_HOME":       filepath.Join(dir, "agentkeys"),
		"AGENTKEYS_MASTER_KEY": base64.StdEncoding.EncodeToString(key),
		"AGENTKEYS_SERVER_KEY": base64.StdEncoding.EncodeToString(key),
		"PATH":                 filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"NO_COLOR":             "1",
	}
	environ := func() []string {
		var out []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			lk := strings.ToLower(k)
			if strings.HasPrefix(k, "AGENTKEYS_") || k == "HOME" || k == "PATH" || lk == "http_proxy" || lk == "https_proxy" || lk == "all_proxy" || k == "DBUS_SESSION_BUS_ADDRESS" {
				continue
			}
			out = append(out, kv)
		}
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
	run := func(stdin string, args ...string) []byte {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = environ()
		c.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("agentkeys %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return out
	}
	decode := func(b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
	}

	var args []string
	switch mode {
	case "up":
		var in struct{ WorkspaceKey string }
		decode(run("", "init", "--json"), &in)
		vars["AGENTKEYS_API_KEY"] = in.WorkspaceKey
		args = []string{"up", "--listen", "127.0.0.1:0"}
	case "serve":
		var ws struct{ APIKey string }
		decode(run("", "serve", "create-workspace", "--email", "ada@example.com", "--workspace", "Skill", "--json"), &ws)
		vars["AGENTKEYS_API_KEY"] = ws.APIKey
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		args = []string{"serve", "--listen", addr, "--allow-loopback-targets"}
	}
	proc := exec.Command(bin, args...)
	proc.Env = environ()
	var logs bytes.Buffer
	proc.Stderr = &logs
	stdout, err := proc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			proc.Process.Kill()
			<-done
		}
	})
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), " listening on "); ok {
				base <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case u := <-base:
		vars["AGENTKEYS_PROXY_URL"] = u
		if mode == "serve" {
			// The CLI works on the server's workspace from here on.
			vars["AGENTKEYS_API_URL"] = u
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("agentkeys %s did not start: %s", mode, logs.String())
	}

	run("", "agents", "create", "--name", "openclaw")
	for _, s := range services {
		a := append([]string{"credentials", "add", "--name", s.name}, s.args...)
		run("", append(a, "--allow-host", allowHost)...)
		var g struct {
			Grant struct{ ProxyToken string } `json:"grant"`
		}
		decode(run("", "agents", "assign", "openclaw", "--credential", s.name, "--json"), &g)
		if !strings.HasPrefix(g.Grant.ProxyToken, "pxr_") {
			t.Fatalf("agents assign gave no pxr_ token")
		}
		vars["AGENTKEYS_PROXY_TOKEN_"+strings.ToUpper(s.name)] = g.Grant.ProxyToken
	}
	return environ()
}
