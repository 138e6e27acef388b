package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/proxy"
)

// RequestID returns the request id the server (or, on /v1/proxy, the proxy)
// gave ctx's request ("" when none).
func RequestID(ctx context.Context) string { return agentkeys.RequestID(ctx) }

// ridHandler adds request_id to every record logged with a request's
// context, unless the record already names one (the proxy's lines do).
type ridHandler struct{ slog.Handler }

// WithRequestID wraps h so every record logged with the context of a
// request this server serves carries that request's request_id. Give the
// store a logger built on it too, so its lines carry the id as well.
func WithRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(ridHandler); ok {
		return h
	}
	return ridHandler{h}
}

func (h ridHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h ridHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ridHandler{h.Handler.WithAttrs(as)}
}
func (h ridHandler) WithGroup(name string) slog.Handler { return ridHandler{h.Handler.WithGroup(name)} }

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives every request an id (X-Agentkeys-Request-Id, and
// request_id on its log lines), turns panics into 500s and logs one access
// line per API request: method, path without query, status, duration. The
// proxy makes its own id and logs its own line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/proxy" || strings.HasPrefix(r.URL.Path, proxy.BaseURLPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		id := agentkeys.NewID("req")
		r = r.WithContext(agentkeys.WithRequestID(r.Context(), id))
		w.Header().Set(agentkeys.HeaderRequestID, id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "panic", firstLine(p), "stack", string(debug.Stack()))
				if sw.status == 0 {
					s.writeError(sw, r, errors.New("panic"), 0)
				}
			}
			level := slog.LevelInfo
			if sw.status >= 500 {
				level = slog.LevelWarn
			}
			s.log.LogAttrs(r.Context(), level, "api request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		}()
		next.ServeHTTP(sw, r)
	})
}

func firstLine(p any) string {
	s, _ := p.(string)
	if e, ok := p.(error); ok {
		s = e.Error()
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// errorBody is the seed's error format.
type errorBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Status int    `json:"status"`
}

// writeError answers with {"error","code","status"} and X-Agentkeys-Error.
// The status is the code's (agentkeys.StatusForCode) unless status is
// non-zero. Errors that are not *agentkeys.Error are logged and answered
// with a generic 500: their text may hold internals.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, status int) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = agentkeys.Errorf(agentkeys.ETOOLARGE, "request body is larger than %d bytes", mbe.Limit)
	}
	code := agentkeys.ErrorCode(err)
	if status == 0 {
		status = agentkeys.StatusForCode(code)
	}
	if code == agentkeys.EINTERNAL {
		s.log.ErrorContext(r.Context(), "internal error", "error", err.Error())
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentkeys"`)
	}
	w.Header().Set(agentkeys.HeaderError, code)
	writeJSON(w, status, errorBody{Error: agentkeys.ErrorMessage(err), Code: code, Status: status})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","code":"INTERNAL","status":500}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
