package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

// AuditOptions are the parsed flags of `audit`.
type AuditOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Now   func() time.Time

	JSON       bool
	Follow     bool
	Agent      string // id or name
	Credential string // id or name
	Limit      int
	// Interval is how often --follow polls the log.
	Interval time.Duration
}

// NewCmdAudit returns `audit`.
func NewCmdAudit(f *Factory, runF func(context.Context, *AuditOptions) error) *cobra.Command {
	opts := &AuditOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:   "audit [--agent A] [--credential C] [--limit N] [--follow] [--json]",
		Short: "Show the audit log of proxied requests",
		Long: `Show the audit log: one row per proxied request, allowed or refused, with time,
agent, credential, method, host, path (no query string), status, decision and
duration. Never a header value, a body or a secret.

Without --follow the newest rows come first; --json prints {"events": [...]}.
With --follow the last rows are printed oldest first, then every request as it
completes, until Ctrl-C; with --json each row is one JSON object per line.
Rows of requests still in flight ("pending") are shown by the plain listing and
printed by --follow once they complete.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 1 || opts.Limit > agentkeys.MaxAuditLimit {
				return errInvalid("--limit must be between 1 and %d", agentkeys.MaxAuditLimit)
			}
			if opts.Interval <= 0 {
				return errInvalid("--interval must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAudit(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new rows until interrupted")
	fl.StringVar(&opts.Agent, "agent", "", "only this agent (id or name)")
	fl.StringVar(&opts.Credential, "credential", "", "only this credential (id or name)")
	fl.IntVarP(&opts.Limit, "limit", "n", 50, fmt.Sprintf("how many rows (1-%d)", agentkeys.MaxAuditLimit))
	fl.DurationVar(&opts.Interval, "interval", 500*time.Millisecond, "how often --follow polls")
	_ = fl.MarkHidden("interval")
	return c
}

// RunAudit lists audit rows, and with Follow keeps polling until ctx ends
// (which is a normal end: it returns nil).
func RunAudit(ctx context.Context, opts *AuditOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	filter := agentkeys.AuditFilter{Limit: opts.Limit}
	if opts.Agent != "" {
		if filter.AgentID, err = resolveRef(ctx, opts.Agent, "agent_", func(ctx context.Context, ref string) (string, error) {
			a, err := findAgent(ctx, v, ref)
			if err != nil {
				return "", err
			}
			return a.ID, nil
		}); err != nil {
			return err
		}
	}
	if opts.Credential != "" {
		if filter.CredentialID, err = resolveRef(ctx, opts.Credential, "cred_", func(ctx context.Context, ref string) (string, error) {
			c, err := findCredential(ctx, v, ref)
			if err != nil {
				return "", err
			}
			return c.ID, nil
		}); err != nil {
			return err
		}
	}
	events, err := v.ListAudit(ctx, filter)
	if err != nil {
		return err
	}
	if !opts.Follow {
		if events == nil {
			events = []*agentkeys.AuditEvent{}
		}
		if opts.JSON {
			return writeJSON(opts.IO.Out, map[string]any{"events": events})
		}
		if len(events) == 0 && opts.IO.IsStdoutTTY() {
			fmt.Fprintln(opts.IO.ErrOut, "No proxied requests yet.")
			return nil
		}
		return printAuditRows(opts, events, true)
	}

	// Follow: oldest first, completed rows only. A pending row gets a new,
	// higher Seq when it completes, so it is printed then.
	var cursor int64
	for _, e := range events {
		cursor = max(cursor, e.Seq)
	}
	slices.Reverse(events)
	if err := printAuditRows(opts, completed(events), true); err != nil {
		return err
	}
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f := filter
		f.AfterSeq = cursor
		f.Limit = agentkeys.MaxAuditLimit
		events, err := v.ListAudit(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range events {
			cursor = max(cursor, e.Seq)
		}
		if err := printAuditRows(opts, completed(events), false); err != nil {
			return err
		}
	}
}

// resolveRef turns an id or name into an id. An id that no longer exists
// (a deleted agent still has audit rows) is used as given.
func resolveRef(ctx context.Context, ref, idPrefix string, find func(context.Context, string) (string, error)) (string, error) {
	id, err := find(ctx, ref)
	if err == nil {
		return id, nil
	}
	var ae *agentkeys.Error
	if errors.As(err, &ae) && ae.Code == agentkeys.ENOTFOUND && strings.HasPrefix(ref, idPrefix) {
		return ref, nil
	}
	return "", err
}

func completed(events []*agentkeys.AuditEvent) []*agentkeys.AuditEvent {
	out := events[:0:0]
	for _, e := range events {
		if e.Decision != agentkeys.DecisionPending {
			out = append(out, e)
		}
	}
	return out
}

// printAuditRows prints rows as a table (header only when first is set and
// stdout is a terminal), tab-separated lines, or JSON lines when following.
func printAuditRows(opts *AuditOptions, events []*agentkeys.AuditEvent, first bool) error {
	if opts.JSON { // --follow --json: one object per line
		for _, e := range events {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(opts.IO.Out, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	}
	if len(events) == 0 {
		return nil
	}
	tty := opts.IO.IsStdoutTTY()
	var t *table
	if tty {
		t = newTable(opts.IO, "TIME", "AGENT", "CREDENTIAL", "METHOD", "HOST", "PATH", "STATUS", "DECISION", "MS", "REQUEST ID")
		t.cols = []colFit{{}, {flex: true, min: 10}, {flex: true, min: 10}, {}, {flex: true, min: 16}, {flex: true, min: 10}, {}, {}, {drop: true}, {drop: true}}
	} else {
		// Scripts get the error code in a column of its own.
		t = newTable(opts.IO, "TIME", "AGENT", "CREDENTIAL", "METHOD", "HOST", "PATH", "STATUS", "DECISION", "CODE", "MS", "REQUEST ID")
	}
	for _, e := range events {
		ts := e.Time.UTC().Format(time.RFC3339)
		if tty {
			ts = e.Time.Local().Format("2006-01-02 15:04:05")
		}
		agent := e.AgentName
		if agent == "" {
			agent = e.AgentID
		}
		if agent == "" {
			agent = "-"
		}
		status := strconv.Itoa(e.Status)
		if e.Status == 0 {
			status = "-"
		}
		ms := strconv.FormatFloat(e.DurationMs, 'f', 1, 64)
		if !tty {
			code := e.Code
			if code == "" {
				code = "-"
			}
			t.add(ts, agent, e.CredentialName, e.Method, e.Host, e.Path, status, e.Decision, code, ms, e.RequestID)
			continue
		}
		decision := e.Decision
		if e.Code != "" {
			decision += " " + e.Code
		}
		t.add(ts, agent, e.CredentialName, e.Method, e.Host, e.Path, status, decision, ms, e.RequestID)
	}
	if !first && opts.IO.IsStdoutTTY() {
		// Rows printed while following line up with the first batch only
		// roughly; a header each time would be noise.
		t.header = nil
	}
	return t.render()
}
