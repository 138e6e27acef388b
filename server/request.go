package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// decode reads one JSON object into v. Unknown fields — which include the
// fields a caller may not set, such as id, workspaceId and createdAt — are
// refused with EINVALID, as are a missing body, bad JSON and trailing data;
// a body over the limit is ETOOLARGE.
func decode(r *http.Request, v any) error {
	body, err := strictJSON(r.Body, v) // decode.go: duplicate members, field names in the wrong case
	var ae *agentkeys.Error
	if errors.As(err, &ae) {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if err == nil && dec.More() {
		err = errTrailing
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
		}
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &pe):
		return agentkeys.Errorf(agentkeys.EINVALID, "a time is not in RFC 3339 form: give one such as 2026-06-01T00:00:00Z")
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return agentkeys.Errorf(agentkeys.EINVALID, "the request body arrived too slowly: send it at once")
	case errors.Is(err, io.EOF):
		return agentkeys.Errorf(agentkeys.EINVALID, "missing JSON body")
	case errors.As(err, &te):
		return agentkeys.Errorf(agentkeys.EINVALID, "field %q has the wrong type (want %s)", te.Field, te.Type)
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTrailing):
		return agentkeys.Errorf(agentkeys.EINVALID, "the body is not one valid JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return agentkeys.Errorf(agentkeys.EINVALID, "field %s is unknown or may not be set", field)
	}
	return agentkeys.Errorf(agentkeys.EINVALID, "the body is not valid JSON for this endpoint")
}

var errTrailing = errors.New("trailing data after the JSON object")

// query reads the allowed query parameters; any other is EINVALID.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q := r.URL.Query()
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "unknown query parameter %q", k)
		}
	}
	return q, nil
}

// noQuery refuses query parameters on endpoints that take none.
func noQuery(r *http.Request) error {
	_, err := query(r)
	return err
}

func intParam(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, agentkeys.Errorf(agentkeys.EINVALID, "query parameter %s must be a non-negative integer", name)
	}
	return n, nil
}
