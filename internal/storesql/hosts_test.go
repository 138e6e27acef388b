package storesql_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/agentkeys/agentkeys/internal/storesql"
)

// hostCases are arrays that take the direct path and arrays that must fall
// back to encoding/json (escapes, spaces, non-ASCII, not arrays at all).
var hostCases = []string{
	`[]`, `[""]`, `["api.example.com"]`, `["api.example.com","*.example.org","127.0.0.1:8080"]`,
	`["a","",""]`, `["a\"b"]`, `["a", "b"]`, `[ "a" ]`, `["\u003chost\u003e"]`, `["é.example"]`,
	`["a","b`, `["a"],"b"]`, `null`, `{}`, `[1]`, `["a\\"]`, `"a"`, ``, `[`, `["]`, `["a""b"]`,
}

func TestDecodeHosts_AsJSON(t *testing.T) {
	for _, s := range hostCases {
		checkDecodeHosts(t, s)
	}
}

// FuzzDecodeHosts checks that DecodeHosts agrees with json.Unmarshal on any
// input: the same hosts (nil and empty told apart) and an error exactly
// when it fails.
func FuzzDecodeHosts(f *testing.F) {
	for _, s := range hostCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkDecodeHosts(t, s) })
}

func checkDecodeHosts(t *testing.T, s string) {
	t.Helper()
	var want []string
	wantErr := json.Unmarshal([]byte(s), &want)
	got, err := storesql.DecodeHosts(s)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("DecodeHosts(%q): error %v, json.Unmarshal's %v", s, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeHosts(%q) = %#v, json.Unmarshal gives %#v", s, got, want)
	}
}
