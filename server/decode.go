package server

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// strictJSON reads a whole request body (already capped by the caller) and
// refuses what encoding/json would silently accept: a member given twice
// in one object (the last would win) and a field name that matches the
// endpoint's only when case is ignored ("Name", "TYPE"). It returns the
// body for the decoder. Bodies that are not JSON at all pass through, for
// the decoder to describe.
func strictJSON(body io.Reader, v any) ([]byte, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := checkMembers(dec, reflect.TypeOf(v), ""); err != nil {
		if ae, ok := err.(*agentkeys.Error); ok {
			return nil, ae
		}
	}
	return b, nil
}

// checkMembers walks one JSON value, with t the Go type it will decode into
// (nil when unknown), and returns EINVALID for a duplicate member or a
// field name in the wrong case. Syntax errors are returned as they are.
func checkMembers(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		fields := map[string]reflect.Type{}
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			name := path + key
			if seen[key] {
				return agentkeys.Errorf(agentkeys.EINVALID, "field %q is given twice: give each field once", name)
			}
			seen[key] = true
			ft := elem
			if t != nil && t.Kind() == reflect.Struct {
				var ok bool
				if ft, ok = fields[key]; !ok {
					for want := range fields {
						if strings.EqualFold(want, key) {
							return agentkeys.Errorf(agentkeys.EINVALID, "field %q is unknown: field names are case-sensitive (did you mean %q?)", name, path+want)
						}
					}
				}
			}
			if err := checkMembers(dec, ft, name+"."); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkMembers(dec, elem, strings.TrimSuffix(path, ".")+"[]."); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields (as encoding/json
// names them, embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
