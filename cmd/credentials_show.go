package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

// CredentialsShowOptions are the parsed arguments of `credentials show`.
type CredentialsShowOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Now   func() time.Time
	Ref   string
	JSON  bool
}

// credentialHolder is one agent that holds a credential, as `show` prints it.
type credentialHolder struct {
	AgentID    string     `json:"agentId"`
	AgentName  string     `json:"agentName"`
	AssignedAt time.Time  `json:"assignedAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

// NewCmdCredentialsShow returns `credentials show`.
func NewCmdCredentialsShow(f *Factory, runF func(context.Context, *CredentialsShowOptions) error) *cobra.Command {
	opts := &CredentialsShowOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:     "show <credential-id-or-name>",
		Aliases: []string{"get", "view"},
		Short:   "Show a credential: everything but its value, and the agents that hold it",
		Long: `Show a credential's type, allowed hosts, dates and the agents it is assigned
to, and the names the value is sent under: a CUSTOM_HEADER's header names, a
QUERY_PARAM's parameter name. The value is never shown. With --json:
{"credential": {"id", "name", "type", "allowedHosts", "createdAt", "updatedAt", "lastUsedAt", "expiresAt",
 "headerNames", "paramName"}, "headerNames": [...], "paramName",
 "agents": [{"agentId", "agentName", "assignedAt", "lastUsedAt"}]}
(headerNames and paramName only where they apply and are known: a server
too old to send them, or a value that no longer decrypts, leaves them out).`,
		Args:              exactArgs(1, "one credential id or name"),
		ValidArgsFunction: completeCredentialNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCredentialsShow(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// RunCredentialsShow prints one credential's metadata and holders.
func RunCredentialsShow(ctx context.Context, opts *CredentialsShowOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	cred, err := findCredential(ctx, v, opts.Ref)
	if err != nil {
		return err
	}
	holders, err := credentialHolders(ctx, v, cred.ID)
	if err != nil {
		return err
	}
	// The vault's lookup names a CUSTOM_HEADER's headers and a
	// QUERY_PARAM's parameter, local or remote; never their values.
	headers, param := cred.HeaderNames, cred.ParamName
	if opts.JSON {
		if cred.AllowedHosts == nil {
			cred.AllowedHosts = []string{}
		}
		out := map[string]any{"credential": cred, "agents": holders}
		if len(headers) > 0 {
			out["headerNames"] = headers
		}
		if param != "" {
			out["paramName"] = param
		}
		return writeJSON(opts.IO.Out, out)
	}
	now := opts.Now()
	when := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return formatTime(opts.IO, now, *t)
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "Name:           %s\n", cred.Name)
	fmt.Fprintf(w, "ID:             %s\n", cred.ID)
	fmt.Fprintf(w, "Type:           %s\n", cred.Type)
	fmt.Fprintf(w, "Allowed hosts:  %s\n", strings.Join(cred.AllowedHosts, ", "))
	if len(headers) > 0 {
		fmt.Fprintf(w, "Headers:        %s (values never shown)\n", strings.Join(headers, ", "))
	}
	if param != "" {
		fmt.Fprintf(w, "Parameter:      %s (value never shown)\n", param)
	}
	fmt.Fprintf(w, "Created:        %s\n", formatTime(opts.IO, now, cred.CreatedAt))
	fmt.Fprintf(w, "Updated:        %s\n", formatTime(opts.IO, now, cred.UpdatedAt))
	fmt.Fprintf(w, "Last used:      %s\n", when(cred.LastUsedAt))
	if cred.ExpiresAt != nil {
		state := "the proxy refuses it from then on"
		if cred.Expired(now) {
			state = "expired: the proxy refuses it"
		}
		fmt.Fprintf(w, "Expires:        %s (%s)\n", cred.ExpiresAt.UTC().Format(time.RFC3339), state)
	} else {
		fmt.Fprintf(w, "Expires:        never\n")
	}
	if len(holders) == 0 {
		fmt.Fprintf(w, "Agents:         none (assign with `agentkeys agents assign AGENT --credential %q`)\n", cred.Name)
		return nil
	}
	fmt.Fprintf(w, "Agents:         %d\n", len(holders))
	for _, h := range holders {
		fmt.Fprintf(w, "  %s (%s): assigned %s, last used %s\n", h.AgentName, h.AgentID, formatTime(opts.IO, now, h.AssignedAt), when(h.LastUsedAt))
	}
	return nil
}

// credentialHolders lists the agents holding credential id, by name.
func credentialHolders(ctx context.Context, v agentkeys.Vault, id string) ([]credentialHolder, error) {
	agents, err := v.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	out := []credentialHolder{}
	for _, a := range agents {
		for _, ac := range a.Credentials {
			if ac.CredentialID == id {
				out = append(out, credentialHolder{AgentID: a.ID, AgentName: a.Name, AssignedAt: ac.AssignedAt, LastUsedAt: ac.LastUsedAt})
			}
		}
	}
	return out, nil
}
