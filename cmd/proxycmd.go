package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/version"
)

// maxCLIBody caps a --data body read from a file or stdin; the proxy applies
// its own limit too.
const maxCLIBody = 100 << 20

// ProxyOptions are the parsed arguments of `proxy`.
type ProxyOptions struct {
	IO    *IOStreams
	Vault func(context.Context) (agentkeys.Vault, error)

	// Token is a pxr_ proxy token, an ak_ws_ workspace key (with
	// Credential), or "" to act as the vault's owner (with Credential).
	Token      string
	URL        string
	Credential string
	Method     string
	Data       string // literal, @file, or - (stdin)
	DataSet    bool
	Headers    []string
	Fail       bool
	Include    bool
	JSON       bool
}

// NewCmdProxy returns `proxy <token> <url>`.
func NewCmdProxy(f *Factory, runF func(context.Context, *ProxyOptions) error) *cobra.Command {
	opts := &ProxyOptions{IO: f.IOStreams, Vault: f.Vault}
	c := &cobra.Command{
		Use:   "proxy <proxy-token> <url> | proxy --credential NAME <url>",
		Short: "Make one proxied request in-process (no running proxy needed)",
		Long: `Make one request through the proxy, in this process, against the local vault:
the token is checked, the URL is checked against the credential's allowed hosts,
the credential is injected, the request is sent and audited. The response body
goes to stdout; proxy errors (bad token, destination not allowed, upstream
unreachable) go to stderr with a non-zero exit code.

Instead of a pxr_ token you can give the workspace key (ak_ws_…) or nothing at
all (you own the local vault) together with --credential NAME.

The method is GET, or POST when --data is given, unless --method says otherwise.
A --data body starting with { or [ is sent as application/json unless you give
a Content-Type with -H. Like curl, a non-2xx answer exits 0 unless --fail.`,
		Example: `  agentkeys proxy pxr_… https://api.github.com/user/repos
  agentkeys proxy pxr_… https://api.resend.com/emails --method POST --data '{"to":"…"}'
  agentkeys proxy pxr_… https://api.resend.com/emails --data @email.json -H "Idempotency-Key: 42" --fail
  agentkeys proxy --credential "Resend Production" https://api.resend.com/domains`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch len(args) {
			case 1, 2:
				return nil
			}
			return errInvalid("proxy takes a proxy token and a URL (or --credential NAME and a URL): run `agentkeys proxy --help`")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.Token, opts.URL = args[0], args[1]
			} else {
				opts.URL = args[0]
			}
			opts.DataSet = cmd.Flags().Changed("data")
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunProxy(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&opts.Method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	fl.StringVarP(&opts.Data, "data", "d", "", `request body: text, @FILE, or - for stdin`)
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, `request header "Name: value" (repeatable)`)
	fl.StringVar(&opts.Credential, "credential", "", "credential name (with an ak_ws_ key, or without a token as the vault's owner)")
	fl.BoolVar(&opts.Fail, "fail", false, "exit with code 8 when the upstream answers with a status outside 2xx")
	fl.BoolVarP(&opts.Include, "include", "i", false, "print the response status line and headers before the body")
	fl.BoolVar(&opts.JSON, "json", false, `print {"status", "headers", "body"} as JSON ("bodyBase64" when the body is not UTF-8)`)
	c.MarkFlagsMutuallyExclusive("json", "include")
	c.RegisterFlagCompletionFunc("credential", completeFlagNames(f, credentialNames))
	return c
}

func (o *ProxyOptions) validate() error {
	switch {
	case o.Token == "" && strings.TrimSpace(o.Credential) == "":
		return errInvalid("give a proxy token (agentkeys proxy pxr_… URL) or a credential (agentkeys proxy --credential NAME URL)")
	case o.Token != "" && !strings.HasPrefix(o.Token, agentkeys.ProxyTokenPrefix) && !strings.HasPrefix(o.Token, agentkeys.WorkspaceKeyPrefix):
		return errInvalid("the first argument must be a proxy token (pxr_…) or the workspace key (ak_ws_…)")
	case strings.HasPrefix(o.Token, agentkeys.WorkspaceKeyPrefix) && strings.TrimSpace(o.Credential) == "":
		return errInvalid("with the workspace key, name the credential to use with --credential NAME")
	case strings.HasPrefix(o.Token, agentkeys.ProxyTokenPrefix) && o.Credential != "":
		return errInvalid("--credential is not used with a proxy token: the token already names its credential")
	}
	if _, err := agentkeys.ParseTarget(o.URL); err != nil {
		return err
	}
	if o.Method != "" && !validMethod(o.Method) {
		return errInvalid("--method %q is not an HTTP method", o.Method)
	}
	for _, h := range o.Headers {
		hd, err := agentkeys.ParseHeader(h)
		if err != nil {
			return err
		}
		if strings.ContainsAny(hd.Value, "\r\n\x00") {
			return errInvalid("header %s contains a line break or NUL byte", hd.Name)
		}
	}
	return nil
}

func validMethod(m string) bool {
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return m != ""
}

// RunProxy sends the request and streams the response body to stdout.
func RunProxy(ctx context.Context, opts *ProxyOptions) error {
	header := http.Header{}
	for _, h := range opts.Headers {
		hd, _ := agentkeys.ParseHeader(h) // validated
		header.Add(hd.Name, hd.Value)
	}
	if _, given := header["User-Agent"]; !given { // as curl does; -H "User-Agent:" sends none
		header.Set("User-Agent", proxyUserAgent())
	}
	var body io.Reader
	method := strings.ToUpper(opts.Method)
	if opts.DataSet {
		b, err := opts.readData()
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		if method == "" {
			method = http.MethodPost
		}
		if header.Get("Content-Type") == "" {
			if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
				header.Set("Content-Type", "application/json")
			}
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	v, err := opts.Vault(ctx)
	if err != nil {
		return err
	}
	resp, err := v.Proxy(ctx, &agentkeys.ProxyRequest{
		Token:          opts.Token,
		CredentialName: strings.TrimSpace(opts.Credential),
		Method:         method,
		URL:            opts.URL,
		Header:         header,
		Body:           body,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if opts.JSON {
		return writeProxyJSON(ctx, opts, resp)
	}
	out := bufio.NewWriterSize(opts.IO.Out, 32<<10)
	if opts.Include {
		fmt.Fprintf(out, "%s %s\r\n", resp.Proto, resp.Status)
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, val := range resp.Header[k] {
				fmt.Fprintf(out, "%s: %s\r\n", k, agentkeys.SafeText(val)) // an upstream's header may hold terminal controls
			}
		}
		fmt.Fprint(out, "\r\n")
	}
	if _, err := io.Copy(flushWriter{out}, resp.Body); err != nil {
		out.Flush()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return agentkeys.Errorf(agentkeys.EUPSTREAM, "the upstream's response broke off before it was complete")
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if opts.Fail && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return &statusError{status: resp.StatusCode}
	}
	return nil
}

// proxyUserAgent is the User-Agent one-off `agentkeys proxy` requests send
// unless -H gives one: agentkeys/<version>. (The proxy itself never adds
// one to agents' requests.)
func proxyUserAgent() string { return version.UserAgent() }

// writeProxyJSON prints the whole answer as one JSON document: status,
// headers, and the body as text when it is UTF-8, else as base64.
func writeProxyJSON(ctx context.Context, opts *ProxyOptions, resp *http.Response) error {
	b, err := readAllLimited(resp.Body, maxCLIBody, "response body")
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if agentkeys.ErrorCode(err) == agentkeys.ETOOLARGE {
			return err
		}
		return agentkeys.Errorf(agentkeys.EUPSTREAM, "the upstream's response broke off before it was complete")
	}
	doc := map[string]any{"status": resp.StatusCode, "headers": resp.Header}
	if utf8.Valid(b) {
		doc["body"] = string(b)
	} else {
		doc["bodyBase64"] = base64.StdEncoding.EncodeToString(b)
	}
	if err := writeJSON(opts.IO.Out, doc); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if opts.Fail && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return &statusError{status: resp.StatusCode}
	}
	return nil
}

// flushWriter flushes after every write so a stream (SSE) reaches the
// terminal as it arrives.
type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func (o *ProxyOptions) readData() ([]byte, error) {
	switch {
	case o.Data == "-":
		return readAllLimited(o.IO.In, maxCLIBody, "request body from stdin")
	case strings.HasPrefix(o.Data, "@"):
		name := o.Data[1:]
		fh, err := os.Open(name)
		if err != nil {
			return nil, errInvalid("cannot read --data file %s: %v", name, unwrapPathError(err))
		}
		defer fh.Close()
		return readAllLimited(fh, maxCLIBody, "request body file "+name)
	}
	return []byte(o.Data), nil
}

// unwrapPathError keeps "no such file or directory" without repeating the path.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
