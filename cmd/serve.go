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
	"github.com/agentkeys/agentkeys/internal/version"
	"github.com/agentkeys/agentkeys/server"
	"github.com/agentkeys/agentkeys/server/mail"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
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
	// SMTPURL (--smtp-url, else AGENTKEYS_SMTP_URL) and SMTPFrom send
	// invitations by email; without them the API answers with the link.
	SMTPURL, SMTPFrom string
	// PublicURL (--public-url) is the address links in emails point to;
	// required with SMTP (else a caller's Host header would choose it).
	PublicURL string
	// WebhookRetryDelays are the waits before each webhook retry (default
	// 1m,5m,30m); WebhookLease how long a claimed delivery stays reserved
	// (tests shorten both).
	WebhookRetryDelays []time.Duration
	WebhookLease       time.Duration
	// Billing is "" or "none" (every workspace unlimited) or "stripe"
	// (plans on: new workspaces start on Free).
	Billing string
	// StripeKeyFile holds the Stripe secret key (else STRIPE_SECRET_KEY);
	// the webhook signing secret is STRIPE_WEBHOOK_SECRET; Prices maps
	// starter/pro/scale to Stripe Price ids (--stripe-price-PLAN, else
	// STRIPE_PRICE_PLAN).
	StripeKeyFile string
	Prices        map[string]string
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
	prices := map[string]*string{}
	for _, p := range paidPlans {
		prices[p] = new(string)
	}
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

Plans: without --billing every workspace is unlimited (set plans or limits with
` + "`agentkeys serve set-plan`" + `); --billing stripe starts new workspaces on Free and sells
the plans through Stripe (STRIPE_SECRET_KEY or --stripe-key-file,
STRIPE_WEBHOOK_SECRET, --stripe-price-starter/-pro/-scale).

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
			if opts.Billing != "" && opts.Billing != "none" && opts.Billing != "stripe" {
				return errInvalid("--billing must be none or stripe (got %q)", opts.Billing)
			}
			for p, v := range prices {
				opts.Prices[p] = strings.TrimSpace(*v)
				if opts.Prices[p] == "" {
					opts.Prices[p] = strings.TrimSpace(f.Getenv("STRIPE_PRICE_" + strings.ToUpper(p)))
				}
			}
			if err := server.CheckListen(opts.listenConfig()); err != nil {
				return err
			}
			if err := opts.Store.resolve(f); err != nil {
				return err
			}
			if opts.SMTPURL == "" {
				opts.SMTPURL = strings.TrimSpace(f.Getenv("AGENTKEYS_SMTP_URL"))
			}
			if _, err := opts.mailer(); err != nil {
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
	c.Flags().StringVar(&opts.SMTPURL, "smtp-url", "", "send invitations through this SMTP server: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://… (env AGENTKEYS_SMTP_URL, which keeps the password out of the process list)")
	c.Flags().StringVar(&opts.PublicURL, "public-url", "", "the server's address as people reach it, for links in emails (required with --smtp-url)")
	c.Flags().StringVar(&opts.SMTPFrom, "smtp-from", "", "the sender of invitation emails, e.g. \"agentkeys <noreply@example.com>\"")
	c.Flags().DurationSliceVar(&opts.WebhookRetryDelays, "webhook-retry-delays", nil, "waits before each webhook retry, comma-separated (default 1m,5m,30m: 4 attempts in all)")
	c.Flags().DurationVar(&opts.WebhookLease, "webhook-lease", 0, "how long a delivery being sent stays reserved to this process (default 40s; tests)")
	c.Flags().MarkHidden("webhook-lease")
	c.Flags().StringVar(&opts.Billing, "billing", "none", "none (every workspace unlimited: self-hosting) or stripe (plans on: new workspaces start on Free)")
	c.Flags().StringVar(&opts.StripeKeyFile, "stripe-key-file", "", "file holding the Stripe secret key (default: STRIPE_SECRET_KEY); the webhook signing secret is STRIPE_WEBHOOK_SECRET")
	opts.Prices = map[string]string{}
	for _, p := range paidPlans {
		c.Flags().StringVar(prices[p], "stripe-price-"+p, "", "Stripe Price id of plan "+p+" (default: STRIPE_PRICE_"+strings.ToUpper(p)+")")
	}
	c.AddCommand(newCmdCreateWorkspace(f, &opts.Store, createF))
	c.AddCommand(newCmdSetPlan(f, &opts.Store, nil))
	return c
}

// mailer is the invitation sender the SMTP flags configure (nil without
// --smtp-url). Returns EINVALID for a bad URL or sender, or a sender without
// a URL.
func (o *ServeOptions) mailer() (server.Mailer, error) {
	if o.SMTPURL == "" {
		if o.SMTPFrom != "" {
			return nil, errInvalid("--smtp-from needs --smtp-url (or AGENTKEYS_SMTP_URL)")
		}
		return nil, nil
	}
	if o.SMTPFrom == "" {
		return nil, errInvalid("--smtp-url needs --smtp-from, the sender address of invitation emails")
	}
	if o.PublicURL == "" {
		return nil, errInvalid("--smtp-url needs --public-url, the server's address as people reach it (https://agentkeys.example.com): links in emails point there")
	}
	return mail.New(mail.Config{URL: o.SMTPURL, From: o.SMTPFrom})
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

// paidPlans are the plans sold through Stripe Checkout.
var paidPlans = []string{agentkeys.PlanStarter, agentkeys.PlanPro, agentkeys.PlanScale}

// billingConfig is the server's Stripe configuration (nil: billing off).
// Returns EINVALID for a half configuration, saying what is missing.
func (o *ServeOptions) billingConfig() (*server.BillingConfig, error) {
	if o.Billing != "stripe" {
		return nil, nil
	}
	b := &server.BillingConfig{WebhookSecret: strings.TrimSpace(o.Getenv("STRIPE_WEBHOOK_SECRET")), Prices: o.Prices,
		APIURL: strings.TrimSpace(o.Getenv("AGENTKEYS_STRIPE_API_URL"))}
	if o.StripeKeyFile != "" {
		k, err := os.ReadFile(o.StripeKeyFile)
		if err != nil {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot read --stripe-key-file: %v", unwrapPathError(err))
		}
		b.StripeKey = strings.TrimSpace(string(k))
	} else {
		b.StripeKey = strings.TrimSpace(o.Getenv("STRIPE_SECRET_KEY"))
	}
	return b, nil
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

// open opens the store these options name; each configure adjusts the
// store's configuration first.
func (o *StoreOptions) open(ctx context.Context, getenv func(string) string, log *slog.Logger, configure ...func(*store.Config)) (*store.Store, error) {
	key, err := o.serverKey(getenv)
	if err != nil {
		return nil, err
	}
	cfg := store.Config{DatabaseURL: o.DatabaseURL, DataDir: o.DataDir, ServerKey: key, Logger: log}
	for _, c := range configure {
		c(&cfg)
	}
	return store.Open(ctx, cfg)
}

func (o *ServeOptions) listenConfig() server.ListenConfig {
	return server.ListenConfig{Addr: o.Listen, TLSCert: o.TLSCert, TLSKey: o.TLSKey, BehindProxy: o.BehindProxy,
		ShutdownTimeout: o.ShutdownTimeout, Ready: o.Ready}
}

// RunServe opens the store and serves until ctx is cancelled.
func RunServe(ctx context.Context, opts *ServeOptions) error {
	serving()
	for _, d := range opts.WebhookRetryDelays {
		if d <= 0 {
			return errInvalid("--webhook-retry-delays must be positive durations, such as 1m,5m,30m")
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The store's lines carry the request id of the request they belong to.
	log = slog.New(server.WithRequestID(log.Handler()))
	billing, err := opts.billingConfig()
	if err != nil {
		return err
	}
	st, err := opts.Store.open(ctx, opts.Getenv, log, func(c *store.Config) {
		if opts.Billing == "stripe" {
			c.DefaultPlan = agentkeys.PlanFree
		}
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := loadOAuthConfig(opts.OAuthConfig, st); err != nil {
		return err
	}
	mailer, err := opts.mailer()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, Signup: opts.Signup, AllowLoopbackTargets: opts.AllowLoopbackTargets,
		BehindProxy: opts.BehindProxy, Logger: log, Mailer: mailer, PublicURL: opts.PublicURL, Billing: billing,
		Webhooks: webhook.Config{Backoff: opts.WebhookRetryDelays, Lease: opts.WebhookLease}})
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
		fmt.Fprintf(opts.IO.Out, "agentkeys server listening on %s (%s, version %s)\n", base, st.Dialect(), version.Version())
		fmt.Fprintf(opts.IO.Out, "dashboard: %s/\n", base)
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
	fmt.Fprintf(out, "Created workspace %s (%s), owned by %s.\n", agentkeys.SafeText(ws.Name), ws.ID, agentkeys.SafeText(ws.Email))
	fmt.Fprintf(out, "API key (shown once, only its hash is stored):\n%s\n", ws.APIKey)
	fmt.Fprintln(out, "Log in with: agentkeys login --server <URL> --api-key <the key above>")
	return nil
}
