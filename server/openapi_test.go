package server_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

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
