package server_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server"
)

// anyMethod is what the document must list for a route that takes every
// method (the proxy).
var anyMethod = []string{"get", "post", "put", "patch", "delete", "head", "options"}

// TestOpenAPI_MatchesRouter: every route the router has is in the
// document with its method, and the document has nothing else.
func TestOpenAPI_MatchesRouter(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	a := s.do("GET", "/api/v1/openapi.json", "", nil)
	a.want(t, 200, "")
	if string(a.body) != string(server.OpenAPI()) {
		t.Fatal("the served document differs from server.OpenAPI()")
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	a.decode(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				inDoc[m+" "+path] = true
			}
		}
	}
	inRouter := map[string]bool{}
	for _, rt := range s.srv.Routes() {
		methods := []string{strings.ToLower(rt.Method)}
		if rt.Method == "" {
			methods = anyMethod
		}
		for _, m := range methods {
			inRouter[m+" "+rt.Path] = true
		}
	}
	var missing, extra []string
	for k := range inRouter {
		if !inDoc[k] {
			missing = append(missing, k)
		}
	}
	for k := range inDoc {
		if !inRouter[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("OpenAPI document and router differ:\n  routes missing from the document: %q\n  documented but not routed: %q", missing, extra)
	}
}

// TestOpenAPI_RefsResolve: every $ref points at a component that exists.
func TestOpenAPI_RefsResolve(t *testing.T) {
	doc := server.OpenAPI()
	var m struct {
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/components/([^/"]+)/([^"]+)"`).FindAllStringSubmatch(string(doc), -1) {
		if _, ok := m.Components[ref[1]][ref[2]]; !ok {
			t.Errorf("$ref %s/%s does not resolve", ref[1], ref[2])
		}
	}
}

// TestOpenAPI_CredentialSchema: the Credential schema documents exactly
// the JSON fields of agentkeys.Credential (the header and parameter names
// GET /api/v1/credentials/{id} adds included), and none of them is a value.
func TestOpenAPI_CredentialSchema(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(server.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var inDoc []string
	for name := range doc.Components.Schemas["Credential"].Properties {
		inDoc = append(inDoc, name)
	}
	var inType []string
	typ := reflect.TypeOf(agentkeys.Credential{})
	for i := 0; i < typ.NumField(); i++ {
		if name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			inType = append(inType, name)
		}
	}
	sort.Strings(inDoc)
	sort.Strings(inType)
	if strings.Join(inDoc, ",") != strings.Join(inType, ",") {
		t.Fatalf("Credential schema properties %q, agentkeys.Credential fields %q", inDoc, inType)
	}
	for _, name := range inDoc {
		if strings.Contains(strings.ToLower(name), "value") || name == "headers" || name == "param" {
			t.Errorf("Credential schema has %q, which reads like a value", name)
		}
	}
}
