package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/agentkeys/agentkeys"
)

// Config configures a Handler. Zero fields take the defaults documented on
// each.
type Config struct {
	// MaxBodyBytes caps the request body an agent may send (default 10 MiB).
	// The cap is enforced while the body streams, not only by Content-Length:
	// a body that goes over it is cut and the agent gets 413.
	MaxBodyBytes          int64
	DialTimeout           time.Duration // default 10s; used when Transport is nil
	ResponseHeaderTimeout time.Duration // default 60s; no overall timeout (streams may be long)
	TLSHandshakeTimeout   time.Duration // default 10s
	// Transport sends requests upstream. nil: NewTransport with the timeouts
	// above. It must not follow redirects (an http.RoundTripper never does).
	Transport http.RoundTripper
	// Logger gets one line per request (never a header value, body, query
	// string or credential value). nil: discard.
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultMaxBodyBytes is the request body cap when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 10 << 20

// Handler serves the /v1/proxy protocol (ServeHTTP) and its in-process twin
// (Do). It is safe for concurrent use.
type Handler struct {
	backend agentkeys.ProxyBackend
	maxBody int64
	log     *slog.Logger
	now     func() time.Time
	rp      *httputil.ReverseProxy
	oauth   oauthState // OAuth refresh (oauth.go)
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler that authorises, checks, injects and audits through
// b, and forwards through cfg.Transport.
func New(b agentkeys.ProxyBackend, cfg Config) *Handler {
	h := &Handler{backend: b, maxBody: cfg.MaxBodyBytes, log: cfg.Logger, now: cfg.Now}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport(TransportConfig{
			DialTimeout:           cfg.DialTimeout,
			TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
			ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		})
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      tr,
		FlushInterval:  -1,
		BufferPool:     bufferPool{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.upstreamError,
		// ReverseProxy's own log lines can quote errors that hold the
		// outbound URL; they go to a sink that keeps only a fixed message.
		ErrorLog: log.New(scrubbedLog{h.log}, "", 0),
	}
	return h
}

// authority says how a request's route is resolved. It is chosen by the Go
// caller of serve — ServeHTTP always passes tokenAuthority — and is never
// read from the request, so no header can reach the owner path.
type authority int

const (
	tokenAuthority authority = iota // the Authorization header: Backend.Authorize
	ownerAuthority                  // in-process owner (Do with Token ""): Backend.RouteByName
)

// ServeHTTP serves one /v1/proxy request: any method, target in
// X-Target-Url, optional X-Target-Method, Authorization: Bearer pxr_… or
// Bearer ak_ws_… with X-Credential-Name. See the package doc for the steps
// and the errors.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isBaseURL(r) {
		h.serveBaseURL(w, r)
		return
	}
	h.serve(w, r, tokenAuthority)
}

type exchangeKey struct{}

// exchange is the state of one proxied request, shared with the
// ReverseProxy callbacks through the request's context.
type exchange struct {
	h      *Handler
	start  time.Time
	ev     *agentkeys.AuditEvent
	route  *agentkeys.Route
	target *url.URL
	method string
	// rawTarget is X-Target-Url after the IDNA step, for attributing
	// refusals that come before (or from) the destination check.
	rawTarget string
	secret    *agentkeys.Secret
	// oauthSum is the SHA-256 of the OAuth access token injected (oauth.go).
	oauthSum *[32]byte
	// queryParam is the name of the query parameter injected (QUERY_PARAM),
	// to be removed from URLs in the upstream's answer headers.
	queryParam string
	// cookieNames are the cookies injected (COOKIE), whose Set-Cookie
	// lines are removed from the upstream's answer.
	cookieNames []string
	body        *limitedBody
	w           *countingWriter
	begun       bool // BeginAudit succeeded: EndAudit must follow
	// Set by the ReverseProxy callbacks (same goroutine as serve).
	failure   *agentkeys.Error // answer the proxy made after forwarding failed
	streamErr error            // the upstream body broke mid-stream
}

// serve runs one request with the given authority. It returns a non-nil
// error when the response stream broke after its header was written (the
// in-process caller turns it into a body read error).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, auth authority) (streamErr error) {
	return h.serveOrRefuse(w, r, auth, nil)
}

// Refuse answers r with err the way the proxy answers every refusal (JSON
// error, X-Agentkeys-Request-Id) and writes its audit row, decision denied,
// without resolving any token. Guards placed in front of the handler (the
// Host checks of `agentkeys up`) use it, so that what they refuse is in the
// audit log like everything else.
func (h *Handler) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	h.serveOrRefuse(w, r, tokenAuthority, err)
}

// serveOrRefuse is serve, or, with a non-nil refusal, the refusal of the
// request before anything else happens to it.
func (h *Handler) serveOrRefuse(w http.ResponseWriter, r *http.Request, auth authority, refusal error) (streamErr error) {
	start := h.now()
	// One request, one audit event: they share the random part of their ids
	// (one NewID instead of two on the hot path).
	evtID := agentkeys.NewID("evt")
	reqID := "req" + strings.TrimPrefix(evtID, "evt")
	w.Header().Set(agentkeys.HeaderRequestID, reqID)
	// The backend's calls (and their log lines) see the id through ctx.
	r = r.WithContext(agentkeys.WithRequestID(r.Context(), reqID))
	x := &exchange{
		h:     h,
		start: start,
		w:     &countingWriter{ResponseWriter: w},
		ev: &agentkeys.AuditEvent{
			ID:        evtID,
			Time:      start,
			RequestID: reqID,
			Decision:  agentkeys.DecisionPending,
		},
	}
	defer x.finish(r.Context(), &streamErr)

	x.method = r.Header.Get(agentkeys.HeaderTargetMethod)
	if x.method == "" {
		x.method = r.Method
	}
	x.ev.Method = x.method
	rawTarget, nerr := normalizeTarget(r.Header.Get(agentkeys.HeaderTargetURL))
	x.rawTarget = rawTarget
	if refusal != nil {
		x.refuse(r.Context(), refusal, agentkeys.DecisionDenied)
		return
	}

	route, err := h.resolve(r, auth)
	if err != nil {
		x.refuse(r.Context(), err, agentkeys.DecisionDenied)
		return
	}
	x.route = route
	x.ev.WorkspaceID = route.WorkspaceID
	x.ev.AgentID, x.ev.AgentName = route.AgentID, route.AgentName
	x.ev.CredentialID, x.ev.CredentialName = route.Credential.ID, route.Credential.Name
	if agentkeys.GrantExpired(route.ExpiresAt, start) {
		x.refuse(r.Context(), errExpired(route.ExpiresAt), agentkeys.DecisionDenied)
		return
	}

	if err := checkMethod(x.method); err != nil {
		x.refuse(r.Context(), err, agentkeys.DecisionDenied)
		return
	}
	if nerr != nil {
		x.refuse(r.Context(), nerr, agentkeys.DecisionDenied)
		return
	}
	for _, name := range []string{agentkeys.HeaderTargetURL, agentkeys.HeaderTargetMethod, agentkeys.HeaderCredentialName} {
		if len(r.Header.Values(name)) > 1 {
			x.refuse(r.Context(), agentkeys.Errorf(agentkeys.EINVALID, "send exactly one %s header", name), agentkeys.DecisionDenied)
			return
		}
	}
	if err := checkHeaders(r.Header); err != nil {
		x.refuse(r.Context(), err, agentkeys.DecisionDenied)
		return
	}
	// The destination is checked before anything is decrypted or dialled.
	target, err := agentkeys.CheckTarget(rawTarget, route.Credential.AllowedHosts)
	if err != nil {
		err = allowlistHint(err, rawTarget, route.Credential.Name)
		x.refuse(r.Context(), err, agentkeys.DecisionDenied)
		return
	}
	x.target = target
	x.ev.Host, x.ev.Path = target.Host, auditPath(target)
	if r.ContentLength > h.maxBody {
		x.refuse(r.Context(), tooLarge(h.maxBody), agentkeys.DecisionDenied)
		return
	}

	// Fail closed: nothing is forwarded unless the row is durable.
	if err := h.backend.BeginAudit(r.Context(), x.ev); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "proxy: audit write failed; request refused",
			slog.String("request_id", reqID), slog.String("error", err.Error())) // an audit event holds no secret
		x.refuse(r.Context(), agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"the audit log cannot be written, so the request was not forwarded: check the vault's disk and try again"),
			agentkeys.DecisionDenied)
		return
	}
	x.begun = true

	secret, err := h.backend.OpenSecret(r.Context(), route)
	if err == nil {
		secret, err = h.freshSecret(r.Context(), x, route, secret)
	}
	if err != nil {
		x.refuse(r.Context(), err, agentkeys.DecisionDenied)
		return
	}
	x.secret = secret

	out := r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	if r.Body != nil && r.Body != http.NoBody {
		x.body = &limitedBody{rc: r.Body, max: h.maxBody}
		out.Body = x.body
		// Full duplex: otherwise Go's HTTP/1 server closes the agent's body
		// once the answer's header is written, and the transport, still
		// finishing the body, drops the upstream connection mid-answer
		// (TestProxy_FastUpstreamAnswerToBody). Not every writer supports it
		// (Do's recorder); those never close the body early.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	h.rp.ServeHTTP(x.w, out)
	return
}

// resolve finds the route the request may use.
func (h *Handler) resolve(r *http.Request, auth authority) (*agentkeys.Route, error) {
	ctx := r.Context()
	name := strings.TrimSpace(r.Header.Get(agentkeys.HeaderCredentialName))
	var (
		route *agentkeys.Route
		err   error
	)
	switch auth {
	case ownerAuthority:
		if name == "" {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing credential name: say which credential to use")
		}
		route, err = h.backend.RouteByName(ctx, name)
	default:
		vals := r.Header.Values("Authorization")
		if len(vals) == 0 {
			return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED,
				"missing proxy token: send Authorization: Bearer pxr_… (or Bearer ak_ws_… with X-Credential-Name)")
		}
		if len(vals) > 1 {
			return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "send exactly one Authorization header")
		}
		scheme, token, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "the Authorization header must be \"Bearer pxr_…\" or \"Bearer ak_ws_…\"")
		}
		switch {
		case agentkeys.IsProxyToken(token):
		case agentkeys.IsWorkspaceKey(token):
			if name == "" {
				return nil, agentkeys.Errorf(agentkeys.EINVALID,
					"a workspace key (ak_ws_…) needs the X-Credential-Name header naming the credential to use")
			}
		default:
			return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "not a proxy token (pxr_…) or workspace key (ak_ws_…)")
		}
		route, err = h.backend.Authorize(ctx, token, name)
	}
	if err != nil {
		return nil, err
	}
	if route == nil || route.Credential == nil {
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "internal error: the vault returned no credential")
	}
	return route, nil
}

// checkMethod refuses methods that are not HTTP tokens, and TRACE/TRACK
// (the upstream would echo the injected credential back to the agent) and
// CONNECT (a tunnel, not a request).
func checkMethod(m string) error {
	if m == "" || strings.IndexFunc(m, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return agentkeys.Errorf(agentkeys.EINVALID, "X-Target-Method is not a valid HTTP method")
	}
	switch strings.ToUpper(m) {
	case "TRACE", "TRACK":
		return agentkeys.Errorf(agentkeys.EINVALID, "method %s is not allowed through the proxy: the upstream would echo the injected credential back", strings.ToUpper(m))
	case "CONNECT":
		return agentkeys.Errorf(agentkeys.EINVALID, "method CONNECT is not allowed through the proxy")
	}
	return nil
}

// checkHeaders refuses header names and values that cannot be sent (only
// Do can meet them: an HTTP server has refused them already), so the caller
// gets a usage error instead of a failed upstream request. A value is never
// quoted: it may be a secret of the caller's.
func checkHeaders(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return agentkeys.Errorf(agentkeys.EINVALID, "header name %q is not a valid HTTP header name", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return agentkeys.Errorf(agentkeys.EINVALID, "the value of header %s contains a line break or another control character", k)
			}
		}
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

func tooLarge(limit int64) *agentkeys.Error {
	return agentkeys.Errorf(agentkeys.ETOOLARGE, "request body is larger than the proxy's limit of %d bytes", limit)
}

// auditPath is the URL's path without the query string.
func auditPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// refuse answers with a proxy-made error and records it for the audit row.
// The row is written (BeginAudit) before the answer goes out.
func (x *exchange) refuse(ctx context.Context, err error, decision string) {
	e := asError(err)
	status := agentkeys.StatusForCode(e.Code)
	x.ev.Status, x.ev.Decision, x.ev.Code = status, decision, e.Code
	if x.target == nil {
		// Best effort, so requests refused before the destination check
		// (or by it) still name the host and path they were aimed at.
		if u, err := agentkeys.ParseTarget(x.rawTarget); err == nil {
			x.ev.Host, x.ev.Path = u.Host, auditPath(u)
		}
	}
	if !x.begun {
		if aerr := x.h.backend.BeginAudit(ctx, x.ev); aerr != nil {
			x.h.log.LogAttrs(ctx, slog.LevelError, "proxy: audit write failed for a refused request",
				slog.String("request_id", x.ev.RequestID), slog.String("error", aerr.Error()))
		} else {
			x.begun = true
		}
	}
	writeError(x.w, status, e.Code, e.Message)
}

// asError returns err as an *agentkeys.Error; other errors become EINTERNAL
// with a generic message (their text may carry internals).
func asError(err error) *agentkeys.Error {
	var e *agentkeys.Error
	if errors.As(err, &e) {
		return e
	}
	return &agentkeys.Error{Code: agentkeys.EINTERNAL, Message: "internal error"}
}

// finish completes the audit row and logs the request. It runs deferred, so
// it also sees the http.ErrAbortHandler panic ReverseProxy raises when a
// stream breaks under an http.Server; it records that and re-panics.
func (x *exchange) finish(ctx context.Context, streamErr *error) {
	p := recover()
	ev := x.ev
	ev.Duration = x.h.now().Sub(x.start)
	ev.DurationMs = float64(ev.Duration.Microseconds()) / 1000
	if x.body != nil {
		ev.BytesIn = min(x.body.n.Load(), x.body.max) // what was forwarded
	}
	ev.BytesOut = x.w.n
	if ev.Decision == agentkeys.DecisionPending {
		ev.Status = x.w.status
		ev.Decision = agentkeys.DecisionAllowed
		switch {
		case x.failure != nil:
			ev.Decision, ev.Code = agentkeys.DecisionError, x.failure.Code
			if x.failure.Code == agentkeys.EDESTINATION {
				ev.Decision = agentkeys.DecisionDenied
			}
		case (x.w.err != nil || ctx.Err() != nil) && (p == nil || p == http.ErrAbortHandler):
			// The agent stopped reading (it closed the connection, or a
			// caller of Do closed the body early): the upstream answered and
			// nothing failed on its side — an upstream read that broke off
			// here broke because the agent's going cancelled it. BytesOut
			// says how much the agent took.
			*streamErr = errStreamBroken
		case p != nil, x.streamErr != nil, x.w.err != nil:
			ev.Decision, ev.Code = agentkeys.DecisionError, agentkeys.EUPSTREAM
			*streamErr = errStreamBroken
		}
		if ev.Status == 0 {
			ev.Status = http.StatusOK
		}
	}
	if x.begun {
		x.h.backend.EndAudit(context.WithoutCancel(ctx), ev)
	}
	level := slog.LevelInfo
	if ev.Decision == agentkeys.DecisionError || ev.Status >= 500 {
		level = slog.LevelWarn
	}
	// The record goes to the handler directly: Logger.LogAttrs would also
	// take the caller's program counter (runtime.Callers, about 1 µs), which
	// no handler of ours prints.
	if h := x.h.log.Handler(); h.Enabled(ctx, level) {
		r := slog.NewRecord(x.start.Add(ev.Duration), level, "proxy request", 0)
		r.AddAttrs(
			slog.String("request_id", ev.RequestID),
			slog.String("agent_id", ev.AgentID),
			slog.String("credential_id", ev.CredentialID),
			slog.String("method", ev.Method),
			slog.String("host", ev.Host),
			slog.String("path", ev.Path),
			slog.Int("status", ev.Status),
			slog.String("decision", ev.Decision),
			slog.String("code", ev.Code),
			slog.Float64("duration_ms", ev.DurationMs),
			slog.Int64("bytes_in", ev.BytesIn),
			slog.Int64("bytes_out", ev.BytesOut))
		_ = h.Handle(ctx, r) // a log line that cannot be written is not the request's failure
	}
	if p != nil {
		panic(p)
	}
}

var errStreamBroken = errors.New("proxy: the upstream response broke off mid-stream")

// protocolHeader reports whether an inbound header must not reach the
// upstream: agentkeys' own, the agent's Authorization, Host, Proxy-* and
// forwarding headers. (ReverseProxy has already removed hop-by-hop headers
// and those named in Connection, before Rewrite runs.)
func protocolHeader(name string) bool {
	for _, h := range [...]string{"authorization", "host", "forwarded", "x-target-url", "x-target-method", "x-credential-name"} {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return hasPrefixFold(name, "x-forwarded-") || hasPrefixFold(name, "proxy-") || hasPrefixFold(name, "x-agentkeys-")
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case (header names are
// ASCII), without the copy strings.ToLower makes of a canonical name.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// rewrite turns the inbound /v1/proxy request into the upstream request:
// target URL and method, protocol headers removed, the secret injected.
// It runs after ReverseProxy stripped hop-by-hop headers, so `Connection:
// Authorization` cannot remove what is injected here.
func rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	out := pr.Out
	u := *x.target
	out.URL = &u
	out.Host = "" // the Host header is the target's
	out.Method = x.method
	for k := range out.Header {
		if protocolHeader(k) {
			delete(out.Header, k)
		}
	}
	// Request trailers are dropped: a trailing "Authorization" would give
	// the upstream a second value beside the injected one.
	out.Trailer = nil
	x.secret.Inject(x.route.Credential.Type, out)
	switch x.route.Credential.Type {
	case agentkeys.QueryParam:
		x.queryParam = x.secret.Param
	case agentkeys.Cookie:
		x.cookieNames = agentkeys.CookieNames(x.secret.Value)
	}
	x.secret = nil
}

// modifyResponse drops agentkeys' own headers from the upstream's answer
// (so a proxy error cannot be faked) and watches the body for a broken
// stream.
func modifyResponse(res *http.Response) error {
	for k := range res.Header {
		if hasPrefixFold(k, "x-agentkeys-") {
			delete(res.Header, k)
		}
	}
	x := res.Request.Context().Value(exchangeKey{}).(*exchange)
	x.noteUpstreamStatus(res.StatusCode)
	if x.queryParam != "" {
		// A redirect that keeps the query string (trailing slash, http→https)
		// would hand the injected secret to the agent. Drop the parameter: a
		// request to that URL through the proxy gets it injected again.
		for _, name := range []string{"Location", "Content-Location"} {
			for i, v := range res.Header[name] {
				res.Header[name][i] = dropQueryParam(v, x.queryParam)
			}
		}
		// Pagination links (RFC 8288) often repeat the query string too.
		for i, v := range res.Header["Link"] {
			res.Header["Link"][i] = dropQueryParamInLinks(v, x.queryParam)
		}
	}
	if len(x.cookieNames) > 0 {
		// A session refresh would hand the agent the injected cookie (or its
		// rotated successor): drop Set-Cookie for the names the proxy sets.
		res.Header["Set-Cookie"] = slices.DeleteFunc(res.Header["Set-Cookie"], func(line string) bool {
			name, _, _ := strings.Cut(line, "=")
			return slices.Contains(x.cookieNames, strings.TrimSpace(name))
		})
		if len(res.Header["Set-Cookie"]) == 0 {
			delete(res.Header, "Set-Cookie")
		}
	}
	// ReverseProxy clears the agent's response header after passing on a
	// 1xx (100 Continue, 103 Early Hints), request id included: set it again.
	x.w.Header().Set(agentkeys.HeaderRequestID, x.ev.RequestID)
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil // the body is the upgraded connection; leave it as is
	}
	res.Body = &watchedBody{ReadCloser: res.Body, x: x}
	return nil
}

// dropQueryParam removes every occurrence of the query parameter name from
// the URL reference ref (absolute or relative), matching names as
// Secret.Inject does (raw or unescaped); the rest is kept as it was.
func dropQueryParam(ref, name string) string {
	base, query, ok := strings.Cut(ref, "?")
	if !ok {
		return ref
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	var kept []string
	for _, part := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == name || k == name {
			continue
		}
		kept = append(kept, part)
	}
	out := base
	if len(kept) > 0 {
		out += "?" + strings.Join(kept, "&")
	}
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// dropQueryParamInLinks applies dropQueryParam to every <URI-reference> of
// a Link header value.
func dropQueryParamInLinks(v, name string) string {
	var b strings.Builder
	for {
		start := strings.IndexByte(v, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(v[start:], '>')
		if end < 0 {
			break
		}
		end += start
		b.WriteString(v[:start+1])
		b.WriteString(dropQueryParam(v[start+1:end], name))
		b.WriteByte('>')
		v = v[end+1:]
	}
	b.WriteString(v)
	return b.String()
}

// upstreamError answers when the upstream could not be reached or did not
// answer in time. The error is classified, never quoted: a *url.Error or a
// transport error may hold the outbound URL, query-parameter secret included.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		writeError(w, http.StatusBadGateway, agentkeys.EUPSTREAM, "upstream unreachable")
		return
	}
	host := x.target.Host
	var e *agentkeys.Error
	var addrErr *AddressError
	switch {
	case x.body != nil && x.body.tooLarge.Load():
		e = tooLarge(h.maxBody)
	case errors.Is(err, errTokenInBody):
		e = agentkeys.Errorf(agentkeys.EINVALID, "the request body holds the proxy token: it was not sent on (send the token only where the client sends its API key)")
	case errors.As(err, &addrErr):
		e = agentkeys.Errorf(agentkeys.EDESTINATION, "destination %s refused: %s", host, addrErr.Error())
	case r.Context().Err() == context.Canceled:
		// The agent went away (or Do's context was cancelled): nobody reads
		// this answer, but the audit row says what happened.
		e = agentkeys.Errorf(agentkeys.EUPSTREAM, "request cancelled by the client before %s answered", host)
	case isTimeout(err):
		e = agentkeys.Errorf(agentkeys.ETIMEOUT, "upstream %s did not answer in time (%s)", host, describe(err))
	default:
		e = agentkeys.Errorf(agentkeys.EUPSTREAM, "upstream %s unreachable: %s", host, describe(err))
	}
	x.failure = e
	w.Header().Set(agentkeys.HeaderRequestID, x.ev.RequestID) // cleared if a 1xx was passed on
	writeError(w, agentkeys.StatusForCode(e.Code), e.Code, e.Message)
}

// limitedBody counts the agent's request body and cuts it one byte past the
// limit. It is read by the transport's goroutine, hence the atomics.
type limitedBody struct {
	rc       io.ReadCloser
	max      int64
	n        atomic.Int64
	tooLarge atomic.Bool
}

var errBodyTooLarge = errors.New("proxy: request body over the limit")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLarge.Load() {
		return 0, errBodyTooLarge
	}
	if rem := b.max - b.n.Load() + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := b.rc.Read(p)
	if n := b.n.Add(int64(k)); n > b.max {
		b.tooLarge.Store(true)
		return k - int(n-b.max), errBodyTooLarge
	}
	return k, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// watchedBody records a read error of the upstream body other than EOF.
type watchedBody struct {
	io.ReadCloser
	x *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.x.streamErr == nil {
		b.x.streamErr = errStreamBroken
	}
	return n, err
}

// countingWriter counts the body bytes sent to the agent and remembers the
// status. Unwrap and FlushError keep http.ResponseController working
// (flushes for streams, hijacking for upgrades).
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	err    error
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *countingWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool hands ReverseProxy 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// scrubbedLog receives ReverseProxy's own log lines. They may quote an error
// holding the outbound URL, so only a fixed message is kept.
type scrubbedLog struct{ log *slog.Logger }

func (s scrubbedLog) Write(p []byte) (int, error) {
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "proxy: reverse proxy reported an error (details withheld: they may hold the outbound URL)")
	return len(p), nil
}

// allowlistHint adds to a refusal for a host off the allowlist the command
// that allows it, so the person reading it knows the next step.
func allowlistHint(err error, rawTarget, credential string) error {
	var ae *agentkeys.Error
	if !errors.As(err, &ae) || ae.Code != agentkeys.EDESTINATION || !strings.Contains(ae.Message, "is not on this credential's allowed hosts") {
		return err
	}
	u, perr := url.Parse(rawTarget)
	if perr != nil || u.Host == "" {
		return err
	}
	return agentkeys.Errorf(agentkeys.EDESTINATION, "%s; to allow it: agentkeys credentials update %q --add-host %s",
		ae.Message, credential, strings.ToLower(u.Host))
}
