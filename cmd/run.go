package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// RunOptions are the parsed arguments of `run`.
type RunOptions struct {
	IO           *IOStreams
	Vault        func(context.Context) (agentkeys.Vault, error)
	ProxyHandler func(context.Context) (http.Handler, error)
	Getenv       func(string) string
	// Environ is the environment the child starts from (os.Environ).
	Environ func() []string
	// ServerURL is the server's URL when the CLI is logged in to one
	// (remote mode), whose own proxy then serves the run; "" otherwise.
	ServerURL func() string

	Agent       string   // id or name: every credential assigned to it
	Credentials []string // ids or names
	TTL         time.Duration
	PrintEnv    bool
	JSON        bool
	Command     []string
}

// DefaultRunTTL is how long `run`'s tokens live if the child outlives them.
const DefaultRunTTL = 12 * time.Hour

// NewCmdRun returns `run`.
func NewCmdRun(f *Factory, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IOStreams, Vault: f.Vault, ProxyHandler: f.ProxyHandler, Getenv: f.Getenv, Environ: os.Environ}
	opts.ServerURL = func() string {
		cfg, err := f.Config()
		if err != nil || !remoteConfigured(cfg) {
			return ""
		}
		return strings.TrimRight(strings.TrimSpace(cfg.APIURL), "/")
	}
	c := &cobra.Command{
		Use:   "run (--agent AGENT | --credential CRED…) [--ttl 12h] [--print-env] -- COMMAND [ARG…]",
		Short: "Run a program with proxy tokens and base URLs in its environment (never a key)",
		Long: `Run a program that takes a base URL and an API key from its environment
(OPENAI_BASE_URL + OPENAI_API_KEY, ANTHROPIC_BASE_URL + ANTHROPIC_API_KEY, …)
through the agentkeys proxy, unchanged: it gets the proxy's base-URL mode as its
base URL and a short-lived proxy token as its key. It never sees a real secret.

The proxy runs in-process on a random loopback port, unless AGENTKEYS_PROXY_URL
names one that is running (agentkeys up); after agentkeys login, the server's
own proxy serves the run. The tokens belong to a temporary agent
("<agent> (run xxxxxx)", so the audit log tells runs apart); they expire after
--ttl and are revoked, with that agent, when the program exits.

The program gets AGENTKEYS_PROXY_URL, AGENTKEYS_PROXY_TOKEN_<NAME> for each
credential (the name upper-cased, other characters as _), and for credentials of
known services their usual variables (see README.md). Every AGENTKEYS_* variable
of this process (the vault key among them) is removed from its environment.

SIGINT, SIGTERM and SIGHUP are passed on to the program; stdin, stdout and
stderr are its own; agentkeys exits with the program's exit code (128+N when it
was killed by signal N, 127 when it could not be started).`,
		Example: `  agentkeys run --agent coder -- python agent.py
  agentkeys run --credential OpenAI --credential GitHub -- npx some-tool
  agentkeys run --agent coder --print-env`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Command = args
			if strings.TrimSpace(opts.Agent) == "" && len(opts.Credentials) == 0 {
				return errInvalid("say which credentials to use: --agent AGENT (all its credentials) or --credential NAME (repeatable)")
			}
			if opts.TTL <= 0 {
				return errInvalid("--ttl must be a positive duration, such as 30m or 12h")
			}
			if opts.JSON && !opts.PrintEnv {
				return errInvalid("--json goes with --print-env")
			}
			if len(args) == 0 && !opts.PrintEnv {
				return errInvalid("missing command: agentkeys run --agent AGENT -- COMMAND [ARG…]")
			}
			if len(args) > 0 && opts.PrintEnv {
				return errInvalid("--print-env runs nothing: leave out the command")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunRun(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Agent, "agent", "", "agent id or name: use every credential assigned to it")
	c.Flags().StringArrayVar(&opts.Credentials, "credential", nil, "credential id or name (repeatable; with --agent, a subset of its credentials)")
	c.Flags().DurationVar(&opts.TTL, "ttl", DefaultRunTTL, "the tokens expire after this long even if the program is still running")
	c.Flags().BoolVar(&opts.PrintEnv, "print-env", false, "print the variables the program would get (tokens masked) and run nothing")
	c.Flags().BoolVar(&opts.JSON, "json", false, "with --print-env: print them as a JSON object")
	return c
}

// childExitError carries the program's exit status out of `run`: ExitCode
// returns code, and nothing more is printed unless msg is set.
type childExitError struct {
	code int
	msg  string
}

func (e *childExitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("the command exited with status %d", e.code)
}

// RunRun mints the tokens, starts the proxy if needed, runs the program and
// cleans up after it.
func RunRun(ctx context.Context, opts *RunOptions) error {
	serving()
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	creds, agentName, err := runCredentials(ctx, v, opts)
	if err != nil {
		return err
	}
	proxyURL := strings.TrimRight(strings.TrimSpace(opts.Getenv("AGENTKEYS_PROXY_URL")), "/")
	if proxyURL != "" {
		if u, err := url.Parse(proxyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errInvalid("AGENTKEYS_PROXY_URL %q is not a proxy URL such as http://127.0.0.1:8787", proxyURL)
		}
	}
	if proxyURL == "" && opts.ServerURL != nil {
		proxyURL = opts.ServerURL() // remote mode: the tokens are the server's
	}
	if opts.PrintEnv {
		shown := proxyURL
		if shown == "" {
			shown = "http://127.0.0.1:<port>"
		}
		tokens := map[string]string{}
		for _, c := range creds {
			tokens[c.ID] = agentkeys.ProxyTokenPrefix + "****"
		}
		return printRunEnv(opts, runEnv(shown, creds, tokens))
	}

	if proxyURL == "" {
		h, err := opts.ProxyHandler(ctx)
		if err != nil {
			return fmt.Errorf("%w (or set AGENTKEYS_PROXY_URL to a running proxy)", err)
		}
		local, stop, err := startRunProxy(h)
		if err != nil {
			return err
		}
		defer stop()
		proxyURL = local
	}

	// A temporary agent holds this run's grants: assigning to the named
	// agent itself would replace its own tokens.
	cleanup := context.WithoutCancel(ctx)
	runAgent, err := v.CreateAgent(ctx, agentName+" (run "+randomHex(3)+")")
	if err != nil {
		return fmt.Errorf("create the run's agent: %w", err)
	}
	defer func() {
		if err := v.DeleteAgent(cleanup, runAgent.ID); err != nil {
			opts.IO.Warnf("could not revoke this run's tokens (agent %q): %v; they expire on their own within --ttl", runAgent.Name, err)
		}
	}()
	until := time.Now().Add(opts.TTL)
	tokens := map[string]string{}
	for _, c := range creds {
		g, err := v.AssignCredentialUntil(ctx, runAgent.ID, c.ID, until)
		if err != nil {
			return fmt.Errorf("assign %s: %w", c.Name, err)
		}
		tokens[c.ID] = g.ProxyToken
	}
	return runChild(opts, childEnv(opts.Environ(), runEnv(proxyURL, creds, tokens)))
}

// runCredentials resolves --agent and --credential to the credentials to
// use and the name of the run's agent.
func runCredentials(ctx context.Context, v agentkeys.Vault, opts *RunOptions) ([]*agentkeys.Credential, string, error) {
	var assigned map[string]bool
	var ids []string
	name := "run"
	if strings.TrimSpace(opts.Agent) != "" {
		a, err := v.FindAgent(ctx, opts.Agent)
		if err != nil {
			return nil, "", err
		}
		name = a.Name
		assigned = map[string]bool{}
		for _, ac := range a.Credentials {
			assigned[ac.CredentialID] = true
			ids = append(ids, ac.CredentialID)
		}
		if len(a.Credentials) == 0 {
			return nil, "", errInvalid("agent %s has no credentials: assign one with `agentkeys agents assign %s --credential NAME`", a.Name, quoteArg(a.Name))
		}
	}
	if len(opts.Credentials) > 0 {
		ids = ids[:0]
		for _, ref := range opts.Credentials {
			c, err := v.FindCredential(ctx, ref)
			if err != nil {
				return nil, "", err
			}
			if assigned != nil && !assigned[c.ID] {
				return nil, "", errInvalid("credential %s is not assigned to agent %s", c.Name, name)
			}
			ids = append(ids, c.ID)
		}
	}
	var creds []*agentkeys.Credential
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		c, err := v.FindCredential(ctx, id)
		if err != nil {
			return nil, "", err
		}
		creds = append(creds, c)
	}
	sort.Slice(creds, func(i, j int) bool { return strings.ToLower(creds[i].Name) < strings.ToLower(creds[j].Name) })
	return creds, name, nil
}

// runPreset is the environment a well-known client reads its base URL and
// key from, for a credential allowed to host. The README's table lists them.
type runPreset struct {
	host     string // the credential's allowlist must hold this host exactly
	baseVar  string
	basePath string // appended to …/to/<host>
	keyVar   string
}

var runPresets = []runPreset{
	{"api.openai.com", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"},       // openai SDKs (base URL includes /v1)
	{"api.anthropic.com", "ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY"}, // anthropic SDKs (base URL without /v1)
	{"api.github.com", "GITHUB_API_URL", "", "GITHUB_TOKEN"},             // Octokit, @actions/github
	{"api.resend.com", "RESEND_BASE_URL", "", "RESEND_API_KEY"},          // resend SDK
}

// runEnv is the variables `run` sets: the proxy URL, a token per
// credential, and the preset variables of well-known services (the first
// credential, by name, wins a service).
func runEnv(proxyURL string, creds []*agentkeys.Credential, tokens map[string]string) map[string]string {
	env := map[string]string{"AGENTKEYS_PROXY_URL": proxyURL}
	for _, c := range creds {
		tok := tokens[c.ID]
		env["AGENTKEYS_PROXY_TOKEN_"+envName(c.Name)] = tok
		for _, p := range runPresets {
			if _, taken := env[p.keyVar]; taken || !slices.Contains(c.AllowedHosts, p.host) {
				continue
			}
			env[p.baseVar] = proxyURL + proxy.BaseURLPrefix + p.host + p.basePath
			env[p.keyVar] = tok
		}
	}
	return env
}

// envName is a credential name as an environment variable suffix:
// upper-case, every character other than A-Z and 0-9 as _.
func envName(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// childEnv is base without any AGENTKEYS_* variable (the vault key, the
// workspace key, a passphrase) or any variable run sets, plus set.
func childEnv(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; ours || strings.HasPrefix(strings.ToUpper(k), "AGENTKEYS_") {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+set[k])
	}
	return out
}

func printRunEnv(opts *RunOptions, env map[string]string) error {
	if opts.JSON {
		return writeJSON(opts.IO.Out, env)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(opts.IO.Out, "%s=%s\n", k, env[k])
	}
	return nil
}

// startRunProxy serves h (/v1/proxy and base-URL mode, loopback Host only)
// on a random loopback port. stop waits up to 5 s for requests in flight.
func startRunProxy(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, unavailable("cannot listen on loopback: %v", unwrapOpError(err))
	}
	guarded := proxy.LoopbackOnly(h)
	mux := http.NewServeMux()
	mux.Handle("/v1/proxy", guarded)
	mux.Handle(proxy.BaseURLPrefix, guarded)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go srv.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// forwardedSignals are passed on to the child. (On Windows only Ctrl-C
// arrives, and the console sends it to the child as well.)
var forwardedSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// runChild runs the command with env and the standard streams, passing
// signals on, and returns its exit status as a *childExitError (nil for 0).
func runChild(opts *RunOptions, env []string) error {
	c := exec.Command(opts.Command[0], opts.Command[1:]...)
	c.Env = env
	c.Stdin, c.Stdout, c.Stderr = opts.IO.In, opts.IO.Out, opts.IO.ErrOut
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		return &childExitError{code: 127, msg: fmt.Sprintf("cannot start %s: %v", opts.Command[0], startError(err))}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = c.Process.Signal(s) // it may have exited already
			case <-done:
				return
			}
		}
	}()
	err := c.Wait()
	close(done)
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run %s: %w", opts.Command[0], err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &childExitError{code: 128 + int(ws.Signal())}
	}
	return &childExitError{code: ee.ExitCode()}
}

// startError is why a program could not be started, without the path
// repeated ("executable file not found in $PATH").
func startError(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return unwrapPathError(err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
