package cmd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

// CredentialsUpdateOptions are the parsed flags of `credentials update`.
type CredentialsUpdateOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)

	Ref  string // id or name
	Name string
	// NameSet tells `--name ""` from no flag.
	NameSet bool
	// Secret flags, as in `credentials add`; any of them replaces the whole
	// value (the old one is never read back).
	Value    string
	ValueSet bool
	Username string
	Password string
	Headers  []string
	Param    string

	// AllowHosts replaces the allowlist; AddHosts and RemoveHosts edit it.
	AllowHosts  []string
	AddHosts    []string
	RemoveHosts []string
	Expiry      expiryFlags
	JSON        bool
}

// NewCmdCredentialsUpdate returns `credentials update`.
func NewCmdCredentialsUpdate(f *Factory, runF func(context.Context, *CredentialsUpdateOptions) error) *cobra.Command {
	opts := &CredentialsUpdateOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:     "update <credential-id-or-name> [--name N] [secret flags] [--allow-host H]... [--add-host H]... [--remove-host H]...",
		Aliases: []string{"edit", "set"},
		Short:   "Change a credential's name, value or allowed hosts; agents keep their proxy tokens",
		Long: `Change a credential in place. Agents assigned to it keep their proxy tokens:
the next proxied request uses the new value and allowlist.

A new value replaces the old one whole (it is never read back), with the same
flags as ` + "`credentials add`" + ` for the credential's type:

  API_KEY, OAUTH, COOKIE  --value V (or --value - to read stdin)
  BASIC_AUTH              --username U --password P (prompted when missing in a terminal)
  CUSTOM_HEADER           --header "Name: value" ... (every header, as they should be)
  QUERY_PARAM             --param NAME --value V

Allowed hosts: --allow-host replaces the list; --add-host and --remove-host
change it. The list used is printed. --expires-at or --expires-in sets when the
proxy starts refusing the credential; --no-expiry removes it. The type cannot change: remove the
credential and add it again for that.`,
		Example: `  agentkeys credentials update "Resend Production" --value - < new-key.txt
  agentkeys credentials update Stripe --add-host files.stripe.com
  agentkeys credentials update Jira --username bot --password -
  agentkeys credentials update cred_01H... --name "Resend Staging"
  agentkeys credentials update Stripe --value - --expires-in 90d < new-key.txt`,
		Args:              exactArgs(1, "one credential id or name"),
		ValidArgsFunction: completeCredentialNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			opts.ValueSet = cmd.Flags().Changed("value")
			opts.NameSet = cmd.Flags().Changed("name")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCredentialsUpdate(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Name, "name", "", "new name (unique, case-insensitive)")
	fl.StringVar(&opts.Value, "value", "", `new secret; "-" reads it from stdin`)
	fl.StringVar(&opts.Username, "username", "", "BASIC_AUTH: new user name")
	fl.StringVar(&opts.Password, "password", "", `BASIC_AUTH: new password; "-" reads it from stdin`)
	fl.StringArrayVar(&opts.Headers, "header", nil, `CUSTOM_HEADER: every header "Name: value" (repeatable; replaces them all)`)
	fl.StringVar(&opts.Param, "param", "", "QUERY_PARAM: the query parameter's name (needed with --value)")
	fl.StringArrayVar(&opts.AllowHosts, "allow-host", nil, "replace the allowed hosts with these (repeatable)")
	fl.StringArrayVar(&opts.AddHosts, "add-host", nil, "add an allowed host (repeatable)")
	fl.StringArrayVar(&opts.RemoveHosts, "remove-host", nil, "remove an allowed host (repeatable)")
	opts.Expiry.register(fl, true)
	fl.BoolVar(&opts.JSON, "json", false, `print {"credential": {...}, "changed": [...]} as JSON`)
	return c
}

func (o *CredentialsUpdateOptions) secretGiven() bool {
	return o.ValueSet || o.Username != "" || o.Password != "" || len(o.Headers) > 0 || o.Param != ""
}

// RunCredentialsUpdate checks the flags, finds the credential, builds the
// update (gathering a new secret from flags, stdin or a prompt) and applies
// it in one call. Nothing is written on any error.
func RunCredentialsUpdate(ctx context.Context, opts *CredentialsUpdateOptions) error {
	if !opts.NameSet && !opts.secretGiven() && opts.AllowHosts == nil && opts.AddHosts == nil && opts.RemoveHosts == nil && !opts.Expiry.given() {
		return errInvalid("nothing to update: give --name, a new value (--value, --username/--password, --header, --param), hosts (--allow-host, --add-host, --remove-host) or an expiry (--expires-at, --expires-in, --no-expiry)")
	}
	expiresAt, err := opts.Expiry.parse(time.Now())
	if err != nil {
		return err
	}
	if len(opts.AllowHosts) > 0 && (len(opts.AddHosts) > 0 || len(opts.RemoveHosts) > 0) {
		return errInvalid("give either --allow-host (the whole list) or --add-host/--remove-host (changes to it), not both")
	}
	if opts.Value == "-" && opts.Password == "-" {
		return errInvalid("only one of --value and --password can read stdin")
	}
	upd := &agentkeys.CredentialUpdate{ExpiresAt: expiresAt}
	var changed []string
	if expiresAt != nil {
		changed = append(changed, "expiresAt")
	}
	if opts.NameSet {
		name, err := agentkeys.ValidateName("credential", opts.Name)
		if err != nil {
			return err
		}
		upd.Name = &name
		changed = append(changed, "name")
	}
	for _, list := range [][]string{opts.AllowHosts, opts.AddHosts, opts.RemoveHosts} {
		if _, err := agentkeys.ParseAllowedHosts(list); len(list) > 0 && err != nil {
			return err
		}
	}
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	cred, err := findCredential(ctx, v, opts.Ref)
	if err != nil {
		return err
	}
	if hosts, err := opts.hosts(cred.AllowedHosts); err != nil {
		return err
	} else if hosts != nil {
		upd.AllowedHosts = hosts
		changed = append(changed, "allowedHosts")
	}
	if opts.secretGiven() {
		s, err := opts.secret(cred.Type)
		if err != nil {
			return err
		}
		upd.Secret = s
		changed = append(changed, "value")
	}
	out, err := v.UpdateCredential(ctx, cred.ID, upd)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"credential": out, "changed": changed})
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "%s Updated credential %s (%s): %s\n", opts.IO.Green("✓"), out.Name, out.ID, describeChanges(changed))
	fmt.Fprintf(w, "Allowed hosts: %s\n", strings.Join(out.AllowedHosts, ", "))
	if out.ExpiresAt != nil {
		fmt.Fprintf(w, "Expires at %s.\n", out.ExpiresAt.Local().Format(time.RFC3339))
	} else if expiresAt != nil {
		fmt.Fprintln(w, "It never expires.")
	}
	fmt.Fprintln(w, "Agents keep their proxy tokens; the next request uses the change.")
	return nil
}

func describeChanges(changed []string) string {
	words := map[string]string{"name": "name changed", "allowedHosts": "allowed hosts changed", "value": "value replaced", "expiresAt": "expiry changed"}
	var out []string
	for _, c := range changed {
		out = append(out, words[c])
	}
	return strings.Join(out, ", ")
}

// hosts is the new allowlist, or nil when the flags leave it alone.
func (o *CredentialsUpdateOptions) hosts(current []string) ([]string, error) {
	if o.AllowHosts != nil {
		return o.AllowHosts, nil
	}
	if o.AddHosts == nil && o.RemoveHosts == nil {
		return nil, nil
	}
	remove, err := agentkeys.ParseAllowedHosts(o.RemoveHosts)
	if len(o.RemoveHosts) > 0 && err != nil {
		return nil, err
	}
	hosts := slices.Clone(current)
	for _, r := range remove {
		i := slices.Index(hosts, r)
		if i < 0 {
			return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "%s is not on this credential's allowed hosts (%s)", r, strings.Join(current, ", "))
		}
		hosts = slices.Delete(hosts, i, i+1)
	}
	hosts = append(hosts, o.AddHosts...)
	if len(hosts) == 0 {
		return nil, errInvalid("removing %s would leave no allowed host: add one with --add-host, or remove the credential", strings.Join(remove, ", "))
	}
	return hosts, nil
}

// secret builds the whole new value for a credential of type t from the
// flags, stdin or prompts, refusing flags the type does not use.
func (o *CredentialsUpdateOptions) secret(t agentkeys.CredentialType) (*agentkeys.Secret, error) {
	add := &CredentialsAddOptions{
		IO: o.IO, Value: o.Value, ValueSet: o.ValueSet, Username: o.Username, Password: o.Password,
		Headers: o.Headers, Param: o.Param,
	}
	misplaced := func(flag string, given bool, types ...agentkeys.CredentialType) error {
		if !given || slices.Contains(types, t) {
			return nil
		}
		return errInvalid("--%s does not fit: this credential is %s (the type cannot change; remove it and add it again for that)", flag, t)
	}
	for _, e := range []error{
		misplaced("username", o.Username != "", agentkeys.BasicAuth),
		misplaced("password", o.Password != "", agentkeys.BasicAuth),
		misplaced("header", len(o.Headers) > 0, agentkeys.CustomHeader),
		misplaced("param", o.Param != "", agentkeys.QueryParam),
		misplaced("value", o.ValueSet, agentkeys.APIKey, agentkeys.OAuth, agentkeys.Cookie, agentkeys.QueryParam, agentkeys.CustomHeader),
	} {
		if e != nil {
			return nil, e
		}
	}
	if o.ValueSet && strings.TrimSpace(o.Value) == "" {
		return nil, errInvalid("missing value: --value is empty")
	}
	in := &agentkeys.CredentialInput{Type: t}
	switch t {
	case agentkeys.CustomHeader:
		if len(o.Headers) == 0 {
			return nil, errInvalid(`a CUSTOM_HEADER credential's value is its headers: give every one with --header "Name: value"`)
		}
		for _, h := range o.Headers {
			hd, err := agentkeys.ParseHeader(h)
			if err != nil {
				return nil, err
			}
			in.Secret.Headers = append(in.Secret.Headers, hd)
		}
	case agentkeys.QueryParam:
		if strings.TrimSpace(o.Param) == "" || !o.ValueSet {
			return nil, errInvalid("a QUERY_PARAM credential's value is replaced whole: give both --param NAME and --value V")
		}
		in.Secret.Param = strings.TrimSpace(o.Param)
	}
	if err := add.readSecret(in); err != nil {
		return nil, err
	}
	if err := in.Secret.Validate(t); err != nil {
		return nil, err
	}
	return &in.Secret, nil
}
