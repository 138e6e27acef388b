package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// SetPlanOptions are the parsed flags of `serve set-plan`.
type SetPlanOptions struct {
	IO        *IOStreams
	Getenv    func(string) string
	Logger    *slog.Logger
	Store     StoreOptions
	Workspace string
	Change    store.PlanChange
}

func newCmdSetPlan(f *Factory, so *StoreOptions, runF func(context.Context, *SetPlanOptions) error) *cobra.Command {
	opts := &SetPlanOptions{IO: f.IOStreams, Getenv: f.Getenv}
	var credentials, agents, requests int64
	c := &cobra.Command{
		Use:   "set-plan --workspace ws_… (--plan PLAN | --credentials N --agents N --requests N)",
		Short: "Set a workspace's plan or limits on the server's database (operators)",
		Long: `Set a workspace's plan, or limits that override its plan's, directly in the
server's database — with the same --database-url, --data-dir and server key as
serve. Running servers apply it at once (creations check the limits in their
transaction; the hosted proxy rereads them when the workspace changes).

Plans: ` + strings.Join(agentkeys.PlanNames(), ", ") + `. A new --plan drops the limit overrides not
given with it. A limit of 0 is unlimited. Self-hosted servers (serve without
--billing) start every workspace on unlimited; enterprise has only the limits set
here.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(opts.Workspace, "ws_") {
				return errInvalid("give --workspace ws_… (the workspace's id: `agentkeys status --json` shows it)")
			}
			fl := cmd.Flags()
			if fl.Changed("credentials") {
				opts.Change.Credentials = &credentials
			}
			if fl.Changed("agents") {
				opts.Change.Agents = &agents
			}
			if fl.Changed("requests") {
				opts.Change.Requests = &requests
			}
			opts.Change.Plan = strings.ToLower(strings.TrimSpace(opts.Change.Plan))
			if opts.Change.Plan == "" && opts.Change.Credentials == nil && opts.Change.Agents == nil && opts.Change.Requests == nil {
				return errInvalid("give --plan, or one of --credentials, --agents, --requests")
			}
			opts.Store = *so
			if err := opts.Store.resolve(f); err != nil {
				return err
			}
			opts.Logger = f.Logger
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunSetPlan(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Workspace, "workspace", "", "the workspace's id (ws_…)")
	c.Flags().StringVar(&opts.Change.Plan, "plan", "", "the plan: "+strings.Join(agentkeys.PlanNames(), ", "))
	c.Flags().Int64Var(&credentials, "credentials", 0, "credentials allowed (0: unlimited)")
	c.Flags().Int64Var(&agents, "agents", 0, "agents allowed (0: unlimited)")
	c.Flags().Int64Var(&requests, "requests", 0, "proxied requests allowed a billing period (0: unlimited)")
	return c
}

// RunSetPlan applies the change and prints the workspace's plan.
func RunSetPlan(ctx context.Context, opts *SetPlanOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := opts.Store.open(ctx, opts.Getenv, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetPlan(ctx, opts.Workspace, opts.Change); err != nil {
		return err
	}
	ws, err := st.Workspace(opts.Workspace).Status(ctx)
	if err != nil {
		return err
	}
	l := ws.Limits
	fmt.Fprintf(opts.IO.Out, "Workspace %s is on plan %s: credentials %s, agents %s, requests %s a period.\n",
		ws.ID, ws.Plan, limit(int64(l.Credentials)), limit(int64(l.Agents)), limit(l.RequestsPerMonth))
	return nil
}
