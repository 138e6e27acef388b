package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys/client"
	"github.com/agentkeys/agentkeys/server/store"
)

// webhookEvents are the events `webhooks add --all-events` subscribes to:
// the server's list.
var webhookEvents = store.WebhookEvents

// WebhooksOptions are the parsed flags of the `webhooks` commands.
type WebhooksOptions struct {
	IO *IOStreams
	// Client returns the logged-in server's client; EINVALID (exit 2) with
	// the local vault, which sends no webhooks.
	Client func(context.Context) (*client.Client, error)

	ID          string
	DeliveryID  string
	URL         string
	URLSet      bool
	Events      []string
	AllEvents   bool
	Description string
	DescSet     bool
	Enable      bool
	Disable     bool
	Limit       int
	Yes         bool
	JSON        bool
}

// webhooksClient is the client of the server the CLI is logged in to.
func webhooksClient(f *Factory) func(context.Context) (*client.Client, error) {
	return func(ctx context.Context) (*client.Client, error) {
		cfg, err := f.Config()
		if err != nil {
			return nil, err
		}
		if !remoteConfigured(cfg) {
			return nil, errInvalid("webhooks are sent by an agentkeys server, not the local vault: log in to one first (agentkeys login --server URL)")
		}
		v, err := f.Vault(ctx)
		if err != nil {
			return nil, err
		}
		rv, ok := v.(*remoteVault)
		if !ok {
			return nil, errInvalid("webhooks need a server: run `agentkeys login --server URL`")
		}
		return rv.Client, nil
	}
}

func newCmdWebhooks(f *Factory) *cobra.Command {
	c := groupCmd("webhooks", "Manage the server's webhook endpoints and their deliveries")
	c.Long = `Webhooks are HTTPS requests the agentkeys server makes to your endpoint when a
credential expires or is about to (7 days ahead), when a target API refuses a
credential (401/403), and when the workspace reaches its request limit. Each is
signed (X-AgentKeys-Signature and the Standard Webhooks headers), retried 3
times (1 min, 5 min, 30 min) and listed with every attempt. They need a
server: run ` + "`agentkeys login --server URL`" + ` first.`
	sub := func(use, short string, args cobra.PositionalArgs, run func(context.Context, *WebhooksOptions) error,
		flags func(*cobra.Command, *WebhooksOptions)) *cobra.Command {
		opts := &WebhooksOptions{IO: f.IOStreams, Client: webhooksClient(f)}
		cmd := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				opts.ID = a[0]
			}
			if len(a) > 1 {
				opts.DeliveryID = a[1]
			}
			opts.URLSet = cmd.Flags().Changed("url")
			opts.DescSet = cmd.Flags().Changed("description")
			return run(cmd.Context(), opts)
		}}
		cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
		if flags != nil {
			flags(cmd, opts)
		}
		return cmd
	}
	eventFlags := func(c *cobra.Command, o *WebhooksOptions) {
		c.Flags().StringVar(&o.URL, "url", "", "the endpoint, https://… (http only to loopback with `serve --allow-loopback-targets`)")
		c.Flags().StringArrayVar(&o.Events, "event", nil, "an event to send (repeatable): "+strings.Join(webhookEvents, ", "))
		c.Flags().BoolVar(&o.AllEvents, "all-events", false, "send every event")
		c.Flags().StringVar(&o.Description, "description", "", "what the endpoint is for")
	}
	c.AddCommand(
		sub("add --url URL (--event EVENT... | --all-events)", "Add an endpoint; its signing secret is printed once", noArgs, RunWebhooksAdd, eventFlags),
		sub("list", "List endpoints (never their secrets)", noArgs, RunWebhooksList, nil),
		sub("update <webhook-id> [--url URL] [--event EVENT...|--all-events] [--enable|--disable]", "Change an endpoint", exactArgs(1, "one webhook id"), RunWebhooksUpdate,
			func(c *cobra.Command, o *WebhooksOptions) {
				eventFlags(c, o)
				c.Flags().BoolVar(&o.Enable, "enable", false, "enable it (clears a failure record)")
				c.Flags().BoolVar(&o.Disable, "disable", false, "stop sending to it")
			}),
		sub("remove <webhook-id>", "Remove an endpoint and its deliveries", exactArgs(1, "one webhook id"), RunWebhooksRemove,
			func(c *cobra.Command, o *WebhooksOptions) {
				c.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
			}),
		sub("test <webhook-id>", "Send a webhook.test event to an endpoint", exactArgs(1, "one webhook id"), RunWebhooksTest, nil),
		sub("rotate-secret <webhook-id>", "Give an endpoint a new signing secret, printed once", exactArgs(1, "one webhook id"), RunWebhooksRotate, nil),
		sub("deliveries <webhook-id>", "List an endpoint's deliveries with every attempt", exactArgs(1, "one webhook id"), RunWebhooksDeliveries,
			func(c *cobra.Command, o *WebhooksOptions) {
				c.Flags().IntVar(&o.Limit, "limit", 20, "at most this many deliveries, newest first")
			}),
		sub("redeliver <webhook-id> <delivery-id>", "Send a delivery's event to its endpoint again", exactArgs(2, "a webhook id and a delivery id"), RunWebhooksRedeliver, nil),
	)
	return c
}

func (o *WebhooksOptions) events() ([]string, error) {
	if o.AllEvents && len(o.Events) > 0 {
		return nil, errInvalid("give either --event (repeatable) or --all-events, not both")
	}
	if o.AllEvents {
		return webhookEvents, nil
	}
	return o.Events, nil
}

// RunWebhooksAdd creates an endpoint and prints its secret once.
func RunWebhooksAdd(ctx context.Context, o *WebhooksOptions) error {
	events, err := o.events()
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.URL) == "" {
		return errInvalid("missing --url: the https:// endpoint to send events to")
	}
	if len(events) == 0 {
		return errInvalid("missing events: give --event (repeatable: %s) or --all-events", strings.Join(webhookEvents, ", "))
	}
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	h, err := c.CreateWebhook(ctx, client.WebhookEndpointInput{URL: o.URL, Events: events, Description: o.Description})
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"webhook": h})
	}
	fmt.Fprintf(o.IO.Out, "%s Added webhook %s → %s (%s)\n", o.IO.Green("✓"), h.ID, h.URL, strings.Join(h.Events, ", "))
	printSecret(o.IO.Out, h.Secret)
	return nil
}

func printSecret(w io.Writer, secret string) {
	fmt.Fprintf(w, "Signing secret (shown only now; keep it with your endpoint): %s\n", secret)
	fmt.Fprintln(w, "Verify X-AgentKeys-Signature: hex HMAC-SHA256 of the raw body keyed with this whole string.")
}

// RunWebhooksList prints every endpoint.
func RunWebhooksList(ctx context.Context, o *WebhooksOptions) error {
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	hs, err := c.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"webhooks": hs})
	}
	if len(hs) == 0 && o.IO.IsStdoutTTY() {
		fmt.Fprintln(o.IO.ErrOut, "No webhooks yet. Add one with: agentkeys webhooks add --url https://… --all-events")
		return nil
	}
	t := newTable(o.IO, "ID", "URL", "EVENTS", "STATE")
	t.cols = []colFit{{id: true}, {flex: true, min: 20}, {flex: true, min: 16}, {flex: true, min: 8}}
	for _, h := range hs {
		state := "enabled"
		if !h.Enabled {
			state = "disabled: " + h.DisabledReason
		} else if h.FailingSince != nil {
			state = "failing since " + h.FailingSince.UTC().Format(time.RFC3339)
		}
		t.add(h.ID, h.URL, strings.Join(h.Events, ","), state)
	}
	return t.render()
}

// RunWebhooksUpdate changes an endpoint.
func RunWebhooksUpdate(ctx context.Context, o *WebhooksOptions) error {
	events, err := o.events()
	if err != nil {
		return err
	}
	if o.Enable && o.Disable {
		return errInvalid("give either --enable or --disable, not both")
	}
	p := client.WebhookEndpointPatch{Events: events}
	if o.URLSet {
		p.URL = &o.URL
	}
	if o.DescSet {
		p.Description = &o.Description
	}
	if o.Enable || o.Disable {
		on := o.Enable
		p.Enabled = &on
	}
	if p.URL == nil && p.Events == nil && p.Description == nil && p.Enabled == nil {
		return errInvalid("nothing to update: give --url, --event/--all-events, --description, --enable or --disable")
	}
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	h, err := c.UpdateWebhook(ctx, o.ID, p)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"webhook": h})
	}
	state := "enabled"
	if !h.Enabled {
		state = "disabled"
	}
	fmt.Fprintf(o.IO.Out, "%s Updated webhook %s → %s (%s; %s)\n", o.IO.Green("✓"), h.ID, h.URL, strings.Join(h.Events, ", "), state)
	return nil
}

// RunWebhooksRemove deletes an endpoint after confirmation.
func RunWebhooksRemove(ctx context.Context, o *WebhooksOptions) error {
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	h, err := c.GetWebhook(ctx, o.ID)
	if err != nil {
		return err
	}
	if err := confirm(o.IO, o.Yes, "agentkeys webhooks remove", fmt.Sprintf("Remove webhook %s (%s)?", h.ID, h.URL),
		"Its deliveries are removed with it; pending ones are never sent."); err != nil {
		return err
	}
	if err := c.DeleteWebhook(ctx, h.ID); err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"removed": map[string]string{"id": h.ID, "url": h.URL}})
	}
	fmt.Fprintf(o.IO.Out, "%s Removed webhook %s\n", o.IO.Green("✓"), h.ID)
	return nil
}

// RunWebhooksTest queues a webhook.test event.
func RunWebhooksTest(ctx context.Context, o *WebhooksOptions) error {
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	id, err := c.TestWebhook(ctx, o.ID)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"eventId": id})
	}
	fmt.Fprintf(o.IO.Out, "%s Queued test event %s; see `agentkeys webhooks deliveries %s`\n", o.IO.Green("✓"), id, o.ID)
	return nil
}

// RunWebhooksRotate gives an endpoint a new secret and prints it once.
func RunWebhooksRotate(ctx context.Context, o *WebhooksOptions) error {
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	h, err := c.RotateWebhookSecret(ctx, o.ID)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"webhook": h})
	}
	fmt.Fprintf(o.IO.Out, "%s Rotated the secret of webhook %s: deliveries from now on are signed with the new one\n", o.IO.Green("✓"), h.ID)
	printSecret(o.IO.Out, h.Secret)
	return nil
}

// RunWebhooksDeliveries lists an endpoint's deliveries and attempts.
func RunWebhooksDeliveries(ctx context.Context, o *WebhooksOptions) error {
	if o.Limit <= 0 || o.Limit > 500 {
		return errInvalid("--limit must be between 1 and 500")
	}
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	ds, err := c.ListWebhookDeliveries(ctx, o.ID, o.Limit)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"deliveries": ds})
	}
	t := newTable(o.IO, "DELIVERY", "EVENT", "EVENT ID", "STATUS", "ATTEMPTS", "LAST")
	t.cols = []colFit{{id: true}, {}, {id: true}, {}, {}, {flex: true, min: 12}}
	for _, d := range ds {
		last := "-"
		if n := len(d.Attempts); n > 0 {
			a := d.Attempts[n-1]
			last = fmt.Sprintf("%s HTTP %d in %dms", a.At.UTC().Format(time.RFC3339), a.StatusCode, a.DurationMS)
			if a.Error != "" {
				last += ": " + a.Error
			}
		}
		t.add(d.ID, d.Event, d.EventID, d.Status, fmt.Sprint(len(d.Attempts)), last)
	}
	return t.render()
}

// RunWebhooksRedeliver queues a delivery's event again.
func RunWebhooksRedeliver(ctx context.Context, o *WebhooksOptions) error {
	c, err := o.Client(ctx)
	if err != nil {
		return err
	}
	d, err := c.RedeliverWebhook(ctx, o.ID, o.DeliveryID)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.IO.Out, map[string]any{"delivery": d})
	}
	fmt.Fprintf(o.IO.Out, "%s Queued event %s again as delivery %s\n", o.IO.Green("✓"), d.EventID, d.ID)
	return nil
}
