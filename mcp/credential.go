package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentkeys/agentkeys"
)

func (s *Server) listCredentialsTool() toolDef {
	tool := mcp.NewTool(ToolListCredentials,
		mcp.WithToolTitle("List credentials"),
		mcp.WithDescription("List every credential in the AgentKeys vault: id, name, type, the hosts it may be sent to, and dates. "+
			"Secret values are never returned. Use it to find the credentialName for proxy_request, or the id/name for delete_credential and assign_credential."),
		annotations("List credentials", true, false, true, false),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"credentials": obj{"type": "array", "items": credentialSchema(), "description": "Credentials ordered by name."},
			"count":       obj{"type": "integer", "description": "Number of credentials."},
		}, "credentials", "count"))),
	)
	return toolDef{tool: tool, handler: s.listCredentials}
}

func (s *Server) listCredentials(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct{}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	creds, err := s.vault.ListCredentials(ctx)
	if err != nil {
		return nil, err
	}
	creds = cleanCredentials(creds)
	summary := fmt.Sprintf("%d credential(s).", len(creds))
	if len(creds) == 0 {
		summary = "No credentials yet: create one with create_credential."
	}
	return okResult(summary, obj{"credentials": creds, "count": len(creds)}), nil
}

// cleanCredentials makes nil slices empty so the JSON matches the schema.
func cleanCredentials(creds []*agentkeys.Credential) []*agentkeys.Credential {
	if creds == nil {
		return []*agentkeys.Credential{}
	}
	for _, c := range creds {
		cleanCredential(c)
	}
	return creds
}

func cleanCredential(c *agentkeys.Credential) *agentkeys.Credential {
	if c.AllowedHosts == nil {
		c.AllowedHosts = []string{}
	}
	return c
}

// createCredentialArgs are create_credential's arguments: the CLI's
// `credentials add` flags.
type createCredentialArgs struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	Value        string            `json:"value"`
	Username     string            `json:"username"`
	Password     string            `json:"password"`
	Headers      map[string]string `json:"headers"`
	Param        string            `json:"param"`
	AllowedHosts []string          `json:"allowedHosts"`
	Service      string            `json:"service"`
}

func (s *Server) createCredentialTool() toolDef {
	tool := mcp.NewTool(ToolCreateCredential,
		mcp.WithToolTitle("Create credential"),
		mcp.WithDescription("Store a new credential in the encrypted AgentKeys vault. AgentKeys will inject it into proxied requests to its allowed hosts; the value is never shown again by any tool.\n"+
			"Fields by type: API_KEY and OAUTH need value (sent as Authorization: Bearer <value>); COOKIE needs value as \"name=value; name2=value2\"; "+
			"BASIC_AUTH needs username and password; CUSTOM_HEADER needs headers ({\"X-Api-Key\": \"...\"}); QUERY_PARAM needs param (the query parameter name) and value.\n"+
			"Every credential needs the hosts it may be sent to: give allowedHosts (e.g. [\"api.example.com\", \"*.example.com\"]), or service for a known API ("+
			strings.Join(agentkeys.PresetNames(), ", ")+"), or a name that mentions one (\"Resend Production\" → api.resend.com). The result shows the hosts used."),
		annotations("Create credential", false, false, false, false),
		mcp.WithString("name", mcp.Required(), mcp.MinLength(1), mcp.MaxLength(100),
			mcp.Description("Unique name, e.g. \"Resend Production\". Used as credentialName in proxy_request.")),
		mcp.WithString("type", mcp.Enum(agentkeys.CredentialTypeNames()...),
			mcp.Description("How the credential is injected: "+agentkeys.CredentialTypeList(" or ")+". When omitted: CUSTOM_HEADER with headers, BASIC_AUTH with username/password, QUERY_PARAM with param, else API_KEY.")),
		mcp.WithString("value", mcp.Description("The secret for API_KEY, OAUTH (access token), COOKIE (\"a=b; c=d\") and QUERY_PARAM.")),
		mcp.WithString("username", mcp.Description("BASIC_AUTH user name (may not contain ':').")),
		mcp.WithString("password", mcp.Description("BASIC_AUTH password.")),
		mcp.WithObject("headers", mcp.AdditionalProperties(obj{"type": "string"}),
			mcp.Description("CUSTOM_HEADER headers to inject, header name → value, e.g. {\"X-Api-Key\": \"...\"}.")),
		mcp.WithString("param", mcp.Description("QUERY_PARAM: the name of the query parameter that carries value, e.g. \"api_key\".")),
		mcp.WithArray("allowedHosts", mcp.WithStringItems(),
			mcp.Description("Hosts the credential may be sent to: exact hosts (api.example.com), host:port (127.0.0.1:8080), or *.example.com for subdomains. Plain http is allowed only to loopback hosts listed exactly.")),
		mcp.WithString("service", mcp.Description("A known service whose API hosts become the allowlist when allowedHosts is not given: "+strings.Join(agentkeys.PresetNames(), ", ")+".")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"credential": credentialSchema(),
			"hostsFrom":  str("Where the allowlist came from: \"allowedHosts\", or the service preset used."),
		}, "credential", "hostsFrom"))),
	)
	return toolDef{tool: tool, handler: s.createCredential}
}

func (s *Server) createCredential(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args createCredentialArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if strings.TrimSpace(args.Name) == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing name: give the credential a unique name, e.g. \"Resend Production\"")
	}
	typ, err := credentialType(&args)
	if err != nil {
		return nil, err
	}
	if err := checkFieldsForType(typ, &args); err != nil {
		return nil, err
	}
	in := &agentkeys.CredentialInput{
		Name:         args.Name,
		Type:         typ,
		AllowedHosts: args.AllowedHosts,
		Service:      args.Service,
		Secret: agentkeys.Secret{
			Value:    args.Value,
			Username: args.Username,
			Password: args.Password,
			Param:    args.Param,
		},
	}
	names := make([]string, 0, len(args.Headers))
	for n := range args.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		in.Secret.Headers = append(in.Secret.Headers, agentkeys.Header{Name: n, Value: args.Headers[n]})
	}
	hostsFrom := hostsSource(args.AllowedHosts, args.Service, args.Name)
	if hostsFrom == "none" {
		// The root message names the CLI's flags; say it in this tool's terms.
		return nil, agentkeys.Errorf(agentkeys.EINVALID,
			"credential %q has no allowed hosts: give allowedHosts, the hosts it may be sent to (e.g. [\"api.example.com\"], or \"*.example.com\" for subdomains), or service, a known API (one of %s)",
			strings.TrimSpace(args.Name), strings.Join(agentkeys.PresetNames(), ", "))
	}
	cred, err := s.vault.CreateCredential(ctx, in)
	if err != nil {
		return nil, err
	}
	cleanCredential(cred)
	summary := fmt.Sprintf("Created %s credential %q (%s). It may be sent only to: %s (from %s). Use proxy_request with credentialName %q, or assign_credential to give an agent a proxy token.",
		cred.Type, cred.Name, cred.ID, strings.Join(cred.AllowedHosts, ", "), hostsFrom, cred.Name)
	return okResult(summary, obj{"credential": cred, "hostsFrom": hostsFrom}), nil
}

// credentialType parses the type, or infers it from the fields given as the
// CLI does (agentkeys.InferCredentialType).
func credentialType(a *createCredentialArgs) (agentkeys.CredentialType, error) {
	if strings.TrimSpace(a.Type) != "" {
		return agentkeys.ParseCredentialType(a.Type)
	}
	return agentkeys.InferCredentialType(len(a.Headers) > 0, a.Username != "" || a.Password != "", a.Param != ""), nil
}

// checkFieldsForType refuses secret fields the type does not use, so a value
// put in the wrong field is not silently dropped. Messages name fields only.
func checkFieldsForType(t agentkeys.CredentialType, a *createCredentialArgs) error {
	given := map[string]bool{
		"value":    a.Value != "",
		"username": a.Username != "",
		"password": a.Password != "",
		"headers":  len(a.Headers) > 0,
		"param":    a.Param != "",
	}
	uses := map[agentkeys.CredentialType][]string{
		agentkeys.APIKey:       {"value"},
		agentkeys.OAuth:        {"value"},
		agentkeys.Cookie:       {"value"},
		agentkeys.BasicAuth:    {"username", "password"},
		agentkeys.CustomHeader: {"headers"},
		agentkeys.QueryParam:   {"value", "param"},
	}[t]
	for _, f := range []string{"value", "username", "password", "headers", "param"} {
		if given[f] && !contains(uses, f) {
			return agentkeys.Errorf(agentkeys.EINVALID, "%s is not used by %s credentials (they take %s): remove it, or pick the type that uses it",
				f, t, strings.Join(uses, " and "))
		}
	}
	for _, f := range uses {
		if !given[f] {
			return agentkeys.Errorf(agentkeys.EINVALID, "missing %s: %s credentials need %s (%s)", f, t, strings.Join(uses, " and "), fieldHelp[t])
		}
	}
	return nil
}

// fieldHelp says what a type's fields hold.
var fieldHelp = map[agentkeys.CredentialType]string{
	agentkeys.APIKey:       "value is the API key, sent as Authorization: Bearer <value>",
	agentkeys.OAuth:        "value is the access token, sent as Authorization: Bearer <value>",
	agentkeys.Cookie:       "value is the Cookie header, \"name=value; name2=value2\"",
	agentkeys.BasicAuth:    "the user name and password for HTTP Basic auth",
	agentkeys.CustomHeader: "headers maps header names to values, e.g. {\"X-Api-Key\": \"...\"}",
	agentkeys.QueryParam:   "param is the query parameter's name, value its value",
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hostsSource says where ResolveAllowedHosts will take the allowlist from.
func hostsSource(explicit []string, service, name string) string {
	if len(explicit) > 0 {
		return "allowedHosts"
	}
	if strings.TrimSpace(service) != "" {
		if p, ok := agentkeys.LookupPreset(service); ok {
			return "service preset " + p.Service
		}
		return "service " + service
	}
	if p, ok := agentkeys.RecognisePreset(name); ok {
		return "service preset " + p.Service + " (recognised from the name)"
	}
	return "none"
}

func (s *Server) deleteCredentialTool() toolDef {
	tool := mcp.NewTool(ToolDeleteCredential,
		mcp.WithToolTitle("Delete credential"),
		mcp.WithDescription("Permanently delete a credential from the vault, by id or name. Every agent's assignment of it is removed too: their proxy tokens stop working at once. This cannot be undone."),
		annotations("Delete credential", false, true, true, false),
		mcp.WithString("credential", mcp.Required(), mcp.MinLength(1),
			mcp.Description("The credential's id (cred_…) or its name (case-insensitive), as shown by list_credentials.")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"deleted": obj{"type": "boolean"},
			"id":      str("Id of the deleted credential."),
			"name":    str("Name of the deleted credential."),
		}, "deleted", "id", "name"))),
	)
	return toolDef{tool: tool, handler: s.deleteCredential}
}

func (s *Server) deleteCredential(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args struct {
		Credential string `json:"credential"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	cred, err := s.findCredential(ctx, args.Credential)
	if err != nil {
		return nil, err
	}
	if err := s.vault.DeleteCredential(ctx, cred.ID); err != nil {
		return nil, err
	}
	return okResult(fmt.Sprintf("Deleted credential %q (%s); its proxy tokens no longer work.", cred.Name, cred.ID),
		obj{"deleted": true, "id": cred.ID, "name": cred.Name}), nil
}

// findCredential resolves an id or name, with a message that says what to do.
func (s *Server) findCredential(ctx context.Context, ref string) (*agentkeys.Credential, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential: give its id (cred_…) or name; list_credentials shows them")
	}
	c, err := s.vault.FindCredential(ctx, ref)
	if agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no credential with id or name %q: call list_credentials to see the credentials there are", ref)
	}
	return c, err
}

// updateCredentialArgs are update_credential's arguments: the CLI's
// `credentials update` flags. Secret fields are write-only: no tool returns
// them.
type updateCredentialArgs struct {
	Credential   string            `json:"credential"`
	Name         *string           `json:"name"`
	Value        string            `json:"value"`
	Username     string            `json:"username"`
	Password     string            `json:"password"`
	Headers      map[string]string `json:"headers"`
	Param        string            `json:"param"`
	AllowedHosts []string          `json:"allowedHosts"`
}

func (a *updateCredentialArgs) secretGiven() bool {
	return a.Value != "" || a.Username != "" || a.Password != "" || len(a.Headers) > 0 || a.Param != ""
}

func (s *Server) updateCredentialTool() toolDef {
	tool := mcp.NewTool(ToolUpdateCredential,
		mcp.WithToolTitle("Update credential"),
		mcp.WithDescription("Change a credential in place, by id or name: its name, its allowed hosts, or its value (write-only: the new value is stored encrypted and never returned). "+
			"Agents assigned to it keep their proxy tokens; the next proxied request uses the change. A new value replaces the old one whole and must have the fields the credential's type needs "+
			"(API_KEY, OAUTH, COOKIE: value; BASIC_AUTH: username and password; CUSTOM_HEADER: headers; QUERY_PARAM: param and value). The type cannot change."),
		annotations("Update credential", false, true, true, false),
		mcp.WithString("credential", mcp.Required(), mcp.MinLength(1),
			mcp.Description("The credential's id (cred_…) or its name (case-insensitive), as shown by list_credentials.")),
		mcp.WithString("name", mcp.MinLength(1), mcp.MaxLength(100), mcp.Description("New unique name.")),
		mcp.WithString("value", mcp.Description("New secret for API_KEY, OAUTH, COOKIE and QUERY_PARAM (write-only).")),
		mcp.WithString("username", mcp.Description("BASIC_AUTH: new user name (with password).")),
		mcp.WithString("password", mcp.Description("BASIC_AUTH: new password (with username; write-only).")),
		mcp.WithObject("headers", mcp.AdditionalProperties(obj{"type": "string"}),
			mcp.Description("CUSTOM_HEADER: every header to inject, name → value (replaces them all; write-only).")),
		mcp.WithString("param", mcp.Description("QUERY_PARAM: the query parameter's name (with value).")),
		mcp.WithArray("allowedHosts", mcp.WithStringItems(),
			mcp.Description("The whole new list of hosts the credential may be sent to (exact hosts, host:port, or *.example.com).")),
		mcp.WithRawOutputSchema(rawSchema(object(obj{
			"credential": credentialSchema(),
			"changed":    obj{"type": "array", "items": obj{"type": "string", "enum": []string{"name", "allowedHosts", "value"}}, "description": "What changed."},
		}, "credential", "changed"))),
	)
	return toolDef{tool: tool, handler: s.updateCredential}
}

func (s *Server) updateCredential(ctx context.Context, raw json.RawMessage) (*mcp.CallToolResult, error) {
	var args updateCredentialArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if args.Name == nil && args.AllowedHosts == nil && !args.secretGiven() {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "nothing to update: give name, allowedHosts, or a new value (value, username and password, headers, or param and value)")
	}
	cred, err := s.findCredential(ctx, args.Credential)
	if err != nil {
		return nil, err
	}
	upd := &agentkeys.CredentialUpdate{Name: args.Name, AllowedHosts: args.AllowedHosts}
	changed := []string{}
	if args.Name != nil {
		changed = append(changed, "name")
	}
	if args.AllowedHosts != nil {
		changed = append(changed, "allowedHosts")
	}
	if args.secretGiven() {
		ca := &createCredentialArgs{Value: args.Value, Username: args.Username, Password: args.Password, Headers: args.Headers, Param: args.Param}
		if err := checkFieldsForType(cred.Type, ca); err != nil {
			return nil, err
		}
		sec := &agentkeys.Secret{Value: args.Value, Username: args.Username, Password: args.Password, Param: args.Param}
		names := make([]string, 0, len(args.Headers))
		for n := range args.Headers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			sec.Headers = append(sec.Headers, agentkeys.Header{Name: n, Value: args.Headers[n]})
		}
		upd.Secret = sec
		changed = append(changed, "value")
	}
	out, err := s.vault.UpdateCredential(ctx, cred.ID, upd)
	if err != nil {
		return nil, err
	}
	cleanCredential(out)
	return okResult(fmt.Sprintf("Updated credential %q (%s): %s changed. It may be sent only to: %s. Agents keep their proxy tokens.",
		out.Name, out.ID, strings.Join(changed, ", "), strings.Join(out.AllowedHosts, ", ")),
		obj{"credential": out, "changed": changed}), nil
}
