package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
)

func newCmdCredentials(f *Factory) *cobra.Command {
	c := groupCmd("credentials", "Add, list, show, update and remove credentials")
	c.Aliases = []string{"credential", "creds", "cred"}
	c.AddCommand(
		NewCmdCredentialsAdd(f, nil),
		NewCmdCredentialsList(f, nil),
		NewCmdCredentialsShow(f, nil),
		NewCmdCredentialsUpdate(f, nil),
		NewCmdCredentialsRemove(f, nil),
		newCmdCredentialsConnect(f),
		newCmdCredentialsRefresh(f),
	)
	return c
}

// CredentialsAddOptions are the parsed flags of `credentials add`.
type CredentialsAddOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)

	Name string
	// Type is the credential type as typed; empty means it is inferred:
	// CUSTOM_HEADER with --header, BASIC_AUTH with --username/--password,
	// QUERY_PARAM with --param, else API_KEY.
	Type string
	// Value is the secret ("-": read stdin). ValueSet tells `--value ""`
	// from no flag.
	Value    string
	ValueSet bool
	Username string
	Password string // "-": read stdin
	Headers  []string
	Param    string

	AllowHosts []string
	Service    string
	Expiry     expiryFlags
	JSON       bool
	// RawResponses turns off the proxy's echo redaction for the credential.
	RawResponses bool
}

// NewCmdCredentialsAdd returns `credentials add`. runF, when not nil,
// replaces the run function (tests use it to capture the options).
func NewCmdCredentialsAdd(f *Factory, runF func(context.Context, *CredentialsAddOptions) error) *cobra.Command {
	opts := &CredentialsAddOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "add --name NAME [--type TYPE] [secret flags] [--allow-host HOST]... [--service NAME]",
		Short: "Add a credential (its value is encrypted at once and never shown again)",
		Long: `Add a credential to the vault. The secret is encrypted with AES-256-GCM before it
is stored and is never printed, listed or logged.

Secrets come from a flag, from stdin ("--value -"), or from a prompt without echo
when the flag is missing and stdin is a terminal:

  API_KEY, OAUTH   --value KEY                      sent as Authorization: Bearer KEY
  COOKIE           --value "a=b; c=d"               sent as the Cookie header
  BASIC_AUTH       --username U --password P        sent as Authorization: Basic …
  CUSTOM_HEADER    --header "x-api-key: KEY" ...    each header sent as given
  QUERY_PARAM      --param key --value KEY          added to the URL as ?key=KEY

Every credential has a list of hosts it may be sent to: --allow-host (repeatable;
exact hosts, host:port, or *.example.com), or a built-in preset chosen with
--service or recognised from the name ("Resend Production" → api.resend.com).
The list used is printed.`,
		Example: `  agentkeys credentials add --name "Resend Production" --type API_KEY --value re_123
  agentkeys credentials add --name Stripe --value - < key.txt
  agentkeys credentials add --name Jira --type BASIC_AUTH --allow-host acme.atlassian.net
  agentkeys credentials add --name Anthropic --type CUSTOM_HEADER --header "x-api-key: sk-ant-…"
  agentkeys credentials add --name Maps --type QUERY_PARAM --param key --value AIza… --allow-host maps.googleapis.com
  agentkeys credentials add --name "OpenAI Trial" --value - --expires-in 90d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ValueSet = cmd.Flags().Changed("value")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCredentialsAdd(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Name, "name", "", "name of the credential (unique, case-insensitive)")
	fl.StringVar(&opts.Type, "type", "", agentkeys.CredentialTypeList(" or ")+" (default: inferred, else API_KEY)")
	fl.StringVar(&opts.Value, "value", "", `the secret; "-" reads it from stdin`)
	fl.StringVar(&opts.Username, "username", "", "BASIC_AUTH user name (prompted when missing in a terminal)")
	fl.StringVar(&opts.Password, "password", "", `BASIC_AUTH password; "-" reads it from stdin (prompted when missing in a terminal)`)
	fl.StringArrayVar(&opts.Headers, "header", nil, `CUSTOM_HEADER "Name: value" (repeatable; "Name: -" reads the value from stdin; an empty value takes --value or is prompted for)`)
	fl.StringVar(&opts.Param, "param", "", "QUERY_PARAM name of the query parameter")
	fl.StringArrayVar(&opts.AllowHosts, "allow-host", nil, "host the credential may be sent to (repeatable): api.example.com, host:port, *.example.com")
	fl.StringVar(&opts.Service, "service", "", "use the allowed hosts of a known service: "+strings.Join(agentkeys.PresetNames(), ", "))
	opts.Expiry.register(fl, false)
	fl.BoolVar(&opts.JSON, "json", false, "print the new credential as JSON")
	c.RegisterFlagCompletionFunc("type", completeTypes)
	c.RegisterFlagCompletionFunc("service", completeServices)
	fl.BoolVar(&opts.RawResponses, "raw-responses", false, "pass responses byte for byte: do not replace the value where an upstream echoes it back")
	return c
}

// RunCredentialsAdd validates the options, gathers the secret (stdin or
// prompt), and creates the credential. Nothing is written on any error.
func RunCredentialsAdd(ctx context.Context, opts *CredentialsAddOptions) error {
	in, hostSource, err := opts.input()
	if err != nil {
		return err
	}
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	// A duplicate name is cheap to detect before prompting for a password.
	if _, err := v.FindCredential(ctx, in.Name); err == nil {
		return agentkeys.Errorf(agentkeys.ECONFLICT, "a credential named %q already exists: pick another name or remove it first", in.Name)
	} else if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		return err
	}
	if err := opts.readSecret(in); err != nil {
		return err
	}
	in.Secret.RawResponses = opts.RawResponses
	cred, err := v.CreateCredential(ctx, in)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"credential": cred})
	}
	out := opts.IO.Out
	fmt.Fprintf(out, "%s Added credential %s (%s, %s)\n", opts.IO.Green("✓"), agentkeys.SafeText(cred.Name), cred.Type, cred.ID)
	fmt.Fprintf(out, "Allowed hosts (%s): %s\n", hostSource, strings.Join(cred.AllowedHosts, ", "))
	if cred.ExpiresAt != nil {
		fmt.Fprintf(out, "Expires at %s: the proxy refuses it afterwards.\n", cred.ExpiresAt.Local().Format(time.RFC3339))
	}
	return nil
}

// input checks everything that needs no secret and no vault: name, type,
// which flags fit the type, and the allowlist. It returns the input without
// its secret, and where the allowlist comes from.
func (o *CredentialsAddOptions) input() (*agentkeys.CredentialInput, string, error) {
	name, err := agentkeys.ValidateName("credential", o.Name)
	if err != nil {
		return nil, "", err
	}
	typ := o.Type
	if strings.TrimSpace(typ) == "" {
		typ = string(agentkeys.InferCredentialType(len(o.Headers) > 0, o.Username != "" || o.Password != "", o.Param != ""))
	}
	t, err := agentkeys.ParseCredentialType(typ)
	if err != nil {
		return nil, "", err
	}
	// Flags that the type would silently ignore are mistakes.
	misplaced := func(flag string, given bool, types ...agentkeys.CredentialType) error {
		if !given {
			return nil
		}
		for _, ok := range types {
			if t == ok {
				return nil
			}
		}
		names := make([]string, len(types))
		for i, ok := range types {
			names[i] = string(ok)
		}
		return errInvalid("--%s is for %s credentials, not %s", flag, strings.Join(names, " and "), t)
	}
	for _, e := range []error{
		misplaced("username", o.Username != "", agentkeys.BasicAuth),
		misplaced("password", o.Password != "", agentkeys.BasicAuth),
		misplaced("header", len(o.Headers) > 0, agentkeys.CustomHeader),
		misplaced("param", o.Param != "", agentkeys.QueryParam),
		misplaced("value", o.ValueSet, agentkeys.APIKey, agentkeys.OAuth, agentkeys.Cookie, agentkeys.QueryParam, agentkeys.CustomHeader),
	} {
		if e != nil {
			return nil, "", e
		}
	}
	if o.ValueSet && strings.TrimSpace(o.Value) == "" {
		return nil, "", errInvalid("missing value: --value is empty")
	}
	if o.Value == "-" && o.Password == "-" {
		return nil, "", errInvalid("only one of --value and --password can read stdin")
	}
	if len(o.AllowHosts) > 0 && strings.TrimSpace(o.Service) != "" {
		return nil, "", errInvalid("give either --allow-host or --service, not both")
	}
	hosts, err := agentkeys.ResolveAllowedHosts(o.AllowHosts, o.Service, name)
	if err != nil {
		return nil, "", err
	}
	source := "from --allow-host"
	switch {
	case len(o.AllowHosts) > 0:
	case strings.TrimSpace(o.Service) != "":
		p, _ := agentkeys.LookupPreset(o.Service)
		source = "preset " + p.Service
	default:
		p, _ := agentkeys.RecognisePreset(name)
		source = "preset " + p.Service + ", recognised from the name; change with --allow-host or --service"
	}
	expiresAt, err := o.Expiry.parse(time.Now())
	if err != nil {
		return nil, "", err
	}
	in := &agentkeys.CredentialInput{Name: name, Type: t, AllowedHosts: hosts, ExpiresAt: expiresAt}
	if t == agentkeys.CustomHeader {
		for _, h := range o.Headers {
			hd, err := agentkeys.ParseHeader(h)
			if err != nil {
				return nil, "", err
			}
			in.Secret.Headers = append(in.Secret.Headers, hd)
		}
		if len(in.Secret.Headers) == 0 {
			return nil, "", errInvalid(`a CUSTOM_HEADER credential needs --header "Name: value" (repeatable)`)
		}
	}
	if t == agentkeys.QueryParam {
		if strings.TrimSpace(o.Param) == "" {
			return nil, "", errInvalid("a QUERY_PARAM credential needs --param NAME, the query parameter to set")
		}
		in.Secret.Param = strings.TrimSpace(o.Param)
	}
	return in, source, nil
}

// readSecret fills in.Secret from the flags, stdin ("-") or a no-echo
// prompt. Without a terminal a missing secret is an error, never a hang.
func (o *CredentialsAddOptions) readSecret(in *agentkeys.CredentialInput) error {
	s := &in.Secret
	switch in.Type {
	case agentkeys.BasicAuth:
		var err error
		if s.Username, err = o.fieldOrPrompt(o.Username, "username", "Username: ", "--username"); err != nil {
			return err
		}
		if s.Password, err = o.fieldOrPrompt(o.Password, "password", "Password (input hidden): ", "--password"); err != nil {
			return err
		}
	case agentkeys.CustomHeader:
		// "Name:" takes --value or a prompt; "Name: -" reads stdin, as
		// --value - does (stdin holds one value).
		var empty, stdin []int
		for i, h := range s.Headers {
			switch h.Value {
			case "":
				empty = append(empty, i)
			case "-":
				stdin = append(stdin, i)
			}
		}
		if len(stdin) > 1 || (len(stdin) == 1 && (o.Value == "-" || o.Password == "-")) {
			return errInvalid(`stdin holds one value: read one header from it ("Name: -"), give the others as "Name: value"`)
		}
		for _, i := range stdin {
			val, err := o.fieldOrPrompt("-", "value of header "+s.Headers[i].Name, "", "")
			if err != nil {
				return err
			}
			s.Headers[i].Value = val
		}
		if len(empty) > 1 && o.ValueSet {
			return errInvalid(`--value can fill only one header without a value; give the others as "Name: value"`)
		}
		if len(empty) == 0 && o.ValueSet {
			return errInvalid(`--value is not used: every --header already has a value`)
		}
		for _, i := range empty {
			val, err := o.fieldOrPrompt(o.Value, "value of header "+s.Headers[i].Name,
				fmt.Sprintf("Value of header %s (input hidden): ", s.Headers[i].Name), `--header "Name: value" or --value`)
			if err != nil {
				return err
			}
			s.Headers[i].Value = val
		}
	default:
		val, err := o.fieldOrPrompt(o.Value, "value", "Value (input hidden): ", "--value (or --value - to read stdin)")
		if err != nil {
			return err
		}
		s.Value = val
	}
	return nil
}

// fieldOrPrompt returns the flag's value, stdin for "-", or a prompt's answer.
func (o *CredentialsAddOptions) fieldOrPrompt(flagValue, what, prompt, how string) (string, error) {
	switch flagValue {
	case "-":
		v, err := readSecretLine(o.IO.In)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(v) == "" {
			return "", errInvalid("missing %s: stdin was empty", what)
		}
		return v, nil
	case "":
		if !o.IO.IsStdinTTY() {
			return "", errInvalid("missing %s: give it with %s (no terminal to prompt on)", what, how)
		}
		v, err := o.IO.PromptSecret(prompt)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(v) == "" {
			return "", errInvalid("missing %s: nothing was entered", what)
		}
		return v, nil
	}
	return flagValue, nil
}

// CredentialsListOptions are the parsed flags of `credentials list`.
type CredentialsListOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Now   func() time.Time
	JSON  bool
	// Wide shows every column in full instead of fitting the terminal.
	Wide bool
}

// NewCmdCredentialsList returns `credentials list`.
func NewCmdCredentialsList(f *Factory, runF func(context.Context, *CredentialsListOptions) error) *cobra.Command {
	opts := &CredentialsListOptions{IO: f.IOStreams, Vault: f.Vault, Now: f.Now}
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List credentials (names, types and allowed hosts; never values)",
		Long: `List credentials. In a terminal this is a table; piped, one tab-separated line per
credential (id, name, type, allowed hosts joined by commas, created at); with
--json: {"credentials": [{"id", "name", "type", "allowedHosts", "createdAt",
"updatedAt", "lastUsedAt", "expiresAt"}]}. EXPIRES is when the proxy starts
refusing the credential (piped: RFC 3339, or "-" for never).

In a terminal the table fits its width: ids are shortened to a unique prefix
(which works as an argument) or left out, long names and host lists end in
"…". --wide shows everything.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCredentialsList(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	c.Flags().BoolVar(&opts.Wide, "wide", false, "show every column in full, however wide the terminal")
	return c
}

// RunCredentialsList prints every credential's metadata.
func RunCredentialsList(ctx context.Context, opts *CredentialsListOptions) error {
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	creds, err := v.ListCredentials(ctx)
	if err != nil {
		return err
	}
	if creds == nil {
		creds = []*agentkeys.Credential{}
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"credentials": creds})
	}
	if len(creds) == 0 && opts.IO.IsStdoutTTY() {
		fmt.Fprintln(opts.IO.ErrOut, "No credentials yet. Add one with: agentkeys credentials add --name NAME --value -")
		return nil
	}
	t := newTable(opts.IO, "NAME", "TYPE", "ALLOWED HOSTS", "ID", "CREATED", "EXPIRES")
	t.wide = opts.Wide
	t.cols = []colFit{{flex: true, min: 16}, {}, {flex: true, min: 16}, {id: true, drop: true}, {}, {}}
	now := opts.Now()
	for _, c := range creds {
		if opts.IO.IsStdoutTTY() {
			t.add(c.Name, string(c.Type), strings.Join(c.AllowedHosts, ", "), c.ID, formatTime(opts.IO, now, c.CreatedAt), formatExpiry(opts.IO, now, c.ExpiresAt))
		} else {
			t.add(c.ID, c.Name, string(c.Type), strings.Join(c.AllowedHosts, ","), formatTime(opts.IO, now, c.CreatedAt), formatExpiry(opts.IO, now, c.ExpiresAt))
		}
	}
	return t.render()
}

// CredentialsRemoveOptions are the parsed arguments of `credentials remove`.
type CredentialsRemoveOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)
	Ref   string // id or name
	Yes   bool
	JSON  bool
}

// NewCmdCredentialsRemove returns `credentials remove <id-or-name>`.
func NewCmdCredentialsRemove(f *Factory, runF func(context.Context, *CredentialsRemoveOptions) error) *cobra.Command {
	opts := &CredentialsRemoveOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:     "remove <credential-id-or-name> [--yes]",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a credential; every proxy token for it stops working at once",
		Long: `Remove a credential and every assignment of it: the agents holding it lose
access at once. In a terminal it asks first, naming those agents; without a
terminal it needs --yes. With --json: {"removed": {"id", "name"}, "agents": [...]}.`,
		Args:              exactArgs(1, "one credential id or name"),
		ValidArgsFunction: completeCredentialNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCredentialsRemove(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print what was removed as JSON")
	return c
}

// RunCredentialsRemove deletes the credential named by id or name, after
// confirmation.
func RunCredentialsRemove(ctx context.Context, opts *CredentialsRemoveOptions) error {
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
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = h.AgentName
	}
	var lose []string
	if len(names) > 0 {
		lose = append(lose, fmt.Sprintf("These agents lose access: %s.", strings.Join(names, ", ")))
	} else {
		lose = append(lose, "No agent holds it.")
	}
	if err := confirm(opts.IO, opts.Yes, "agentkeys credentials remove", fmt.Sprintf("Remove credential %s (%s)?", cred.Name, cred.ID), lose...); err != nil {
		return err
	}
	if err := v.DeleteCredential(ctx, cred.ID); err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"removed": map[string]string{"id": cred.ID, "name": cred.Name}, "agents": holders})
	}
	fmt.Fprintf(opts.IO.Out, "%s Removed credential %s (%s); its proxy tokens no longer work\n", opts.IO.Green("✓"), agentkeys.SafeText(cred.Name), cred.ID)
	return nil
}
