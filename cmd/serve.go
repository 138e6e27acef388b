package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/store"
)

// DefaultServeListen is where `agentkeys serve` listens unless --listen says
// otherwise.
const DefaultServeListen = "127.0.0.1:8080"

// StoreOptions are the flags `serve` and `serve create-workspace` share:
// where the database is and the server key.
type StoreOptions struct {
	DatabaseURL   string // --database-url, else AGENTKEYS_DATABASE_URL; "" = SQLite in DataDir
	DataDir       string // --data-dir, else $AGENTKEYS_HOME/server
	ServerKeyFile string // --server-key-file, else AGENTKEYS_SERVER_KEY
}

// ServeOptions are the parsed flags of `serve`.
type ServeOptions struct {
	IO     *IOStreams
	Getenv func(string) string
	Logger *slog.Logger
	Store  StoreOptions

	Listen               string
	Signup               string
	AllowLoopbackTargets bool
	BehindProxy          bool
	TLSCert, TLSKey      string
	ShutdownTimeout      time.Duration
	// OAuthConfig is the file of the operator's OAuth apps (oauth.go).
	OAuthConfig string
	// Ready, when set, is called with the base URL once the server accepts
	// connections (tests).
	Ready func(baseURL string)

	// logs batches the log lines (a line per proxied request and per API
	// request) into one write(2) per 100 ms; flushed before serve's own
	// stderr lines. nil: Logger writes as it likes.
	logs *batchWriter
}

// CreateWorkspaceOptions are the parsed flags of `serve create-workspace`.
type CreateWorkspaceOptions struct {
	IO        *IOStreams
	Getenv    func(string) string
	Logger    *slog.Logger
	Store     StoreOptions
	Email     string
	Workspace string
	JSON      bool
}

// newCmdServe returns `serve` with its subcommands.
func newCmdServe(f *Factory) *cobra.Command { return NewCmdServe(f, nil, nil) }

// NewCmdServe returns `serve`. runF and createF, when set, receive the
// parsed options instead of running (tests).
func NewCmdServe(f *Factory, runF func(context.Context, *ServeOptions) error, createF func(context.Context, *CreateWorkspaceOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IOStreams, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080] [--database-url postgres://…]",
		Short: "Run the agentkeys server: the REST API and the hosted proxy",
		Long: `Run the agentkeys server: the REST API under /api/v1 (credentials, agents,
assignments, workspace status, audit log, sign-up; described at
/api/v1/openapi.json), the hosted proxy at /v1/proxy, /healthz and /readyz.

Storage is SQLite in --data-dir by default (one file, zero setup), or PostgreSQL
with --database-url postgres://… (several replicas may share it). Either way
every proxied request is written to an audit journal in --data-dir/audit before
it is forwarded (it survives the process being killed) and reaches the database
within about 200 ms; a journal left by a killed process is imported when a
server next starts on the same --data-dir.

The server key is required and never generated for you: set
AGENTKEYS_SERVER_KEY to the base64 of 32 random bytes (openssl rand -base64 32),
or give --server-key-file. It wraps every workspace's data key; the server
refuses to start with a key other than the one the database was created with.

Plain HTTP is served only on a loopback address, unless --tls-cert/--tls-key are
given or --behind-proxy says a TLS-terminating proxy stands in front.

SIGTERM or Ctrl-C stops accepting connections and lets in-flight requests and
streams finish (up to --shutdown-timeout).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ShutdownTimeout <= 0 {
				return errInvalid("--shutdown-timeout must be positive")
			}
			if opts.Signup != server.SignupOpen && opts.Signup != server.SignupClosed {
				return errInvalid("--signup must be open or closed (got %q)", opts.Signup)
			}
			if err := server.CheckListen(opts.listenConfig()); err != nil {
				return err
			}
			if err := opts.Store.resolve(f); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			f.defaultLogLevel(slog.LevelInfo)
			opts.logs = newBatchWriter(f.IOStreams.ErrOut, logFlushInterval)
			f.onClose(opts.logs.Close)
			f.Logger = slog.New(slog.NewTextHandler(opts.logs, &slog.HandlerOptions{Level: f.logLevel}))
			opts.Logger = f.Logger
			return RunServe(cmd.Context(), opts)
		},
	}
	c.PersistentFlags().StringVar(&opts.Store.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://…); default: SQLite in --data-dir (env AGENTKEYS_DATABASE_URL)")
	c.PersistentFlags().StringVar(&opts.Store.DataDir, "data-dir", "", "directory of the audit journals and of the SQLite database (default $AGENTKEYS_HOME/server)")
	c.PersistentFlags().StringVar(&opts.Store.ServerKeyFile, "server-key-file", "", "file holding the server key (base64 of 32 bytes); default: AGENTKEYS_SERVER_KEY")
	c.Flags().StringVar(&opts.Listen, "listen", DefaultServeListen, "address to listen on (host:port)")
	c.Flags().StringVar(&opts.Signup, "signup", server.SignupOpen, "who may create a workspace with POST /api/v1/signup: open or closed")
	c.Flags().BoolVar(&opts.AllowLoopbackTargets, "allow-loopback-targets", false, "let the hosted proxy reach loopback addresses (development and tests only)")
	c.Flags().BoolVar(&opts.BehindProxy, "behind-proxy", false, "a TLS-terminating proxy stands in front: allow plain HTTP on a non-loopback address")
	c.Flags().StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	c.Flags().StringVar(&opts.TLSKey, "tls-key", "", "the certificate's private key (PEM)")
	c.Flags().StringVar(&opts.OAuthConfig, "oauth-config", "", "JSON file of the OAuth apps (client id and secret per provider) the hosted proxy refreshes tokens with")
	c.Flags().DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
	c.AddCommand(newCmdCreateWorkspace(f, &opts.Store, createF))
	return c
}

func newCmdCreateWorkspace(f *Factory, so *StoreOptions, createF func(context.Context, *CreateWorkspaceOptions) error) *cobra.Command {
	opts := &CreateWorkspaceOptions{IO: f.IOStreams, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "create-workspace --email EMAIL --workspace NAME",
		Short: "Create a workspace and its owner on the server's database (works with sign-up closed)",
		Long: `Create a workspace, its owner (by email, without a password) and its API key,
directly in the server's database — with the same --database-url, --data-dir and
server key as serve. The API key (ak_ws_…) is printed once; only its hash is
stored. Give it to the owner, who runs: agentkeys login --server URL --api-key KEY`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(opts.Email) == "" || strings.TrimSpace(opts.Workspace) == "" {
				return errInvalid("give --email and --workspace")
			}
			opts.Store = *so
			if err := opts.Store.resolve(f); err != nil {
				return err
			}
			opts.Logger = f.Logger
			if createF != nil {
				return createF(cmd.Context(), opts)
			}
			return RunCreateWorkspace(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Email, "email", "", "the owner's email address")
	c.Flags().StringVar(&opts.Workspace, "workspace", "", "the workspace's name")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// resolve fills the defaults from the environment and the Factory's home.
func (o *StoreOptions) resolve(f *Factory) error {
	if o.DatabaseURL == "" {
		o.DatabaseURL = strings.TrimSpace(f.Getenv("AGENTKEYS_DATABASE_URL"))
	}
	if o.DataDir == "" {
		cfg, err := f.Config()
		if err != nil {
			return err
		}
		o.DataDir = filepath.Join(cfg.Home, "server")
	}
	return nil
}

// serverKey reads the key from --server-key-file, else AGENTKEYS_SERVER_KEY.
// Without either it refuses: a key is never generated silently.
func (o *StoreOptions) serverKey(getenv func(string) string) (agentkeys.Key, error) {
	if o.ServerKeyFile != "" {
		b, err := os.ReadFile(o.ServerKeyFile)
		if err != nil {
			return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot read --server-key-file: %v", unwrapPathError(err))
		}
		defer clear(b)
		return store.ParseServerKey(string(b))
	}
	if v := getenv("AGENTKEYS_SERVER_KEY"); v != "" {
		return store.ParseServerKey(v)
	}
	return agentkeys.Key{}, agentkeys.Errorf(agentkeys.EUNAVAILABLE,
		"no server key: set AGENTKEYS_SERVER_KEY to the base64 of 32 random bytes (export AGENTKEYS_SERVER_KEY=$(openssl rand -base64 32)) or give --server-key-file; keep it safe, the data cannot be read without it")
}

// open opens the store these options name.
func (o *StoreOptions) open(ctx context.Context, getenv func(string) string, log *slog.Logger) (*store.Store, error) {
	key, err := o.serverKey(getenv)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, store.Config{DatabaseURL: o.DatabaseURL, DataDir: o.DataDir, ServerKey: key, Logger: log})
}

func (o *ServeOptions) listenConfig() server.ListenConfig {
	return server.ListenConfig{Addr: o.Listen, TLSCert: o.TLSCert, TLSKey: o.TLSKey, BehindProxy: o.BehindProxy,
		ShutdownTimeout: o.ShutdownTimeout, Ready: o.Ready}
}

// RunServe opens the store and serves until ctx is cancelled.
func RunServe(ctx context.Context, opts *ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The store's lines carry the request id of the request they belong to.
	log = slog.New(server.WithRequestID(log.Handler()))
	st, err := opts.Store.open(ctx, opts.Getenv, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := loadOAuthConfig(opts.OAuthConfig, st); err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, Signup: opts.Signup, AllowLoopbackTargets: opts.AllowLoopbackTargets,
		BehindProxy: opts.BehindProxy, Logger: log})
	if err != nil {
		return err
	}
	opts.logs.Flush()
	if opts.AllowLoopbackTargets {
		opts.IO.Warnf("--allow-loopback-targets is on: the hosted proxy can reach services on this machine's loopback interface. Use it for development and tests only.")
	}
	lc := opts.listenConfig()
	ready := lc.Ready
	lc.Ready = func(base string) {
		opts.logs.Flush()
		fmt.Fprintf(opts.IO.Out, "agentkeys server listening on %s (%s)\n", base, st.Dialect())
		if ready != nil {
			ready(base)
		}
	}
	return srv.Serve(ctx, lc)
}

// RunCreateWorkspace creates a workspace and prints its API key once.
func RunCreateWorkspace(ctx context.Context, opts *CreateWorkspaceOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := opts.Store.open(ctx, opts.Getenv, log)
	if err != nil {
		return err
	}
	defer st.Close()
	ws, err := st.CreateWorkspace(ctx, store.NewWorkspace{Email: opts.Email, Name: opts.Workspace})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{
			"workspace": map[string]string{"id": ws.ID, "name": ws.Name},
			"email":     ws.Email,
			"apiKey":    ws.APIKey,
		})
	}
	out := opts.IO.Out
	fmt.Fprintf(out, "Created workspace %s (%s), owned by %s.\n", ws.Name, ws.ID, ws.Email)
	fmt.Fprintf(out, "API key (shown once, only its hash is stored):\n%s\n", ws.APIKey)
	fmt.Fprintln(out, "Log in with: agentkeys login --server <URL> --api-key <the key above>")
	return nil
}
