package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

// BillingOptions are the parsed flags of `billing` and its subcommands.
type BillingOptions struct {
	IO     *IOStreams
	Getenv func(string) string
	Vault  func(context.Context) (agentkeys.Vault, error)
	JSON   bool
	// Action is "" (show), "upgrade" (Plan) or "portal".
	Action string
	Plan   string
	// Open opens a URL in a browser; nil: the system's, when there is one.
	Open func(url string) bool
}

func newCmdBilling(f *Factory) *cobra.Command { return NewCmdBilling(f, nil) }

// NewCmdBilling returns `billing` with `upgrade` and `portal`. runF, when
// set, receives the parsed options instead of running (tests).
func NewCmdBilling(f *Factory, runF func(context.Context, *BillingOptions) error) *cobra.Command {
	opts := &BillingOptions{IO: f.IOStreams, Getenv: f.Getenv, Vault: f.Vault}
	run := func(cmd *cobra.Command) error {
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return RunBilling(cmd.Context(), opts)
	}
	c := &cobra.Command{
		Use:   "billing [--json]",
		Short: "Show the hosted workspace's plan and subscription; upgrade it or manage it",
		Long: `Show the plan, the subscription's status, the end of the billing period and the
next invoice of a workspace on a server with billing (agentkeys serve --billing
stripe). Upgrade with ` + "`agentkeys billing upgrade starter|pro|scale`" + ` (prints the
Stripe Checkout URL and opens it in a browser when there is one); change the card,
plan or cancel with ` + "`agentkeys billing portal`" + `. Payment details go to Stripe
only; the server never sees them.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd) },
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	c.AddCommand(&cobra.Command{
		Use:   "upgrade PLAN",
		Short: "Subscribe to a plan (starter, pro, scale): prints the Stripe Checkout URL",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Action, opts.Plan = "upgrade", strings.ToLower(strings.TrimSpace(args[0]))
			switch opts.Plan {
			case agentkeys.PlanStarter, agentkeys.PlanPro, agentkeys.PlanScale:
			default:
				return errInvalid("plan must be starter, pro or scale (got %q); enterprise: contact the server's operator", args[0])
			}
			return run(cmd)
		},
	}, &cobra.Command{
		Use:   "portal",
		Short: "Open the Stripe Customer Portal: card, invoices, plan changes, cancellation",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Action = "portal"
			return run(cmd)
		},
	})
	return c
}

// RunBilling shows the subscription, or prints (and opens) the Checkout or
// Portal URL.
func RunBilling(ctx context.Context, opts *BillingOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	b, ok := v.(agentkeys.BillingService)
	if !ok {
		return agentkeys.Errorf(agentkeys.EINVALID, "billing is for workspaces on a hosted server: `agentkeys login --server URL` first (the local vault has no plan limits)")
	}
	out := opts.IO.Out
	var url string
	switch opts.Action {
	case "upgrade":
		url, err = b.Checkout(ctx, opts.Plan)
	case "portal":
		url, err = b.BillingPortal(ctx)
	default:
		st, err := b.Billing(ctx)
		if err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(out, map[string]any{"billing": st})
		}
		fmt.Fprintf(out, "Plan:         %s\n", st.Plan)
		status := st.Status
		if status == "" {
			status = "no subscription (upgrade with `agentkeys billing upgrade pro`)"
		}
		fmt.Fprintf(out, "Subscription: %s\n", status)
		if st.PeriodEnd != nil {
			fmt.Fprintf(out, "Period ends:  %s\n", st.PeriodEnd.UTC().Format(time.RFC3339))
		}
		if st.NextInvoice != nil {
			fmt.Fprintf(out, "Next invoice: %.2f %s\n", float64(st.NextInvoice.AmountDue)/100, strings.ToUpper(st.NextInvoice.Currency))
		}
		if st.Status == "past_due" {
			opts.IO.Warnf("the last payment failed: update the card with `agentkeys billing portal`")
		}
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, url)
	open := opts.Open
	if open == nil {
		open = func(u string) bool { return opts.IO.IsStdoutTTY() && openBrowser(opts.Getenv, u) }
	}
	if open(url) {
		opts.IO.Warnf("opened in your browser")
	}
	return nil
}
