package proxy

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
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
	// AuditEveryRefusal writes an audit row for every refused request, even
	// one without a valid token. By default those are sampled (sample.go):
	// the first of each kind per minute gets a row, the rest are counted in
	// the log, so requests from anyone who can reach the port cannot grow
	// the audit log without limit.
	AuditEveryRefusal bool
}

// DefaultMaxBodyBytes is the request body cap when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 10 << 20

// Handler serves the /v1/proxy protocol (ServeHTTP) and its in-process twin
// (Do). It is safe for concurrent use.
type Handler struct {
	backend agentkeys.ProxyBackend
	limiter agentkeys.RequestLimiter // the backend's request limit, if it has one
	maxBody int64
	log     *slog.Logger
	now     func() time.Time
	rp      *httputil.ReverseProxy
	sample  *refusalSampler // nil: every refusal gets its row
	oauth   oauthState      // OAuth refresh (oauth.go)
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler that authorises, checks, injects and audits through
// b, and forwards through cfg.Transport.
func New(b agentkeys.ProxyBackend, cfg Config) *Handler {
	h := &Handler{backend: b, maxBody: cfg.MaxBodyBytes, log: cfg.Logger, now: cfg.Now}
	h.limiter, _ = b.(agentkeys.RequestLimiter)
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if !cfg.AuditEveryRefusal {
		h.sample = &refusalSampler{log: h.log}
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
	// redact replaces echoes of the secret in the response (nil: the
	// credential asked for byte-exact responses).
	redact *redactor
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
	owner       bool // in-process owner authority: every refusal keeps its row
	// Set by the ReverseProxy callbacks (same goroutine as serve).
	failure   *agentkeys.Error // answer the proxy made after forwarding failed
	streamErr error            // the upstream body broke mid-stream
}

// serve runs one request with the given authority. It returns a non-nil
// error when the response stream broke after its header was written (the
// in-process caller turns it into a body read error).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, auth authority) (streamErr error) {
	return h.serveOrRefuse(w, r, auth, nil, "")
}

// Refuse answers r with err the way the proxy answers every refusal (JSON
// error, X-Agentkeys-Request-Id) and writes its audit row, decision denied,
// without resolving any token. Guards placed in front of the handler (the
// Host checks of `agentkeys up`) use it, so that what they refuse is in the
// audit log like everything else.
func (h *Handler) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	h.serveOrRefuse(w, r, tokenAuthority, err, "")
}

// serveOrRefuse is serve, or, with a non-nil refusal, the refusal of the
// request before anything else happens to it. The target URL is pathTarget
// when set (base-URL mode: it came from the path, and the agent's own
// X-Target-* headers are removed), else X-Target-Url.
func (h *Handler) serveOrRefuse(w http.ResponseWriter, r *http.Request, auth authority, refusal error, pathTarget string) (streamErr error) {
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
	x.owner = auth == ownerAuthority

	x.method = r.Header.Get(agentkeys.HeaderTargetMethod)
	if x.method == "" {
		x.method = r.Method
	}
	x.ev.Method = x.method
	if pathTarget == "" {
		pathTarget = r.Header.Get(agentkeys.HeaderTargetURL)
	}
	rawTarget, nerr := normalizeTarget(pathTarget)
	x.rawTarget = rawTarget
	if refusal != nil {
		x.refuse(r.Context(), refusal, agentkeys.DecisionDenied)
		return
	}

	route, err := h.resolve(r, auth)
	if err != nil {
		var rt *agentkeys.RevokedToken
		if errors.As(err, &rt) { // who the revoked token was issued to
			x.ev.AgentID, x.ev.AgentName = rt.AgentID, rt.AgentName
			x.ev.CredentialID, x.ev.CredentialName = rt.CredentialID, rt.CredentialName
		}
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
	if c := route.Credential; c.Expired(start) {
		x.refuse(r.Context(), agentkeys.ErrCredentialExpired(c.Name, *c.ExpiresAt), agentkeys.DecisionDenied)
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

	if h.limiter != nil {
		if err := h.limiter.AdmitRequest(r.Context(), route); err != nil {
			x.refuse(r.Context(), err, agentkeys.DecisionDenied)
			return
		}
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
	x.redact = newRedactor(route.Credential.Type, secret)

	ctx := context.WithValue(r.Context(), exchangeKey{}, x)
	if target.Scheme == "http" {
		ctx = withPlainHTTP(ctx) // the dialer lets it reach loopback addresses only
	}
	out := r.WithContext(ctx)
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
		token, present, berr := agentkeys.BearerToken(r.Header) // the one Authorization parser (bearer.go)
		if !present {
			return nil, agentkeys.Errorf(agentkeys.EUNAUTHORIZED,
				"missing proxy token: send Authorization: Bearer pxr_… (or Bearer ak_ws_… with X-Credential-Name)")
		}
		if berr != nil {
			return nil, berr
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
	if !x.begun && x.route == nil && !x.owner && x.h.sample != nil && !x.h.sample.keep(e.Code, x.start) {
		// No valid token: counted, not written (sample.go).
	} else if !x.begun {
		if aerr := x.h.backend.BeginAudit(ctx, x.ev); aerr != nil {
			x.h.log.LogAttrs(ctx, slog.LevelError, "proxy: audit write failed for a refused request",
				slog.String("request_id", x.ev.RequestID), slog.String("error", aerr.Error()))
		} else {
			x.begun = true
		}
	}
	var ule *agentkeys.UsageLimitError
	if errors.As(err, &ule) {
		x.w.Header().Set("Retry-After", ule.RetryAfterSeconds())
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
	if x.redact != nil {
		prepareRedaction(out)
	}
	switch x.route.Credential.Type {
	case agentkeys.QueryParam:
		x.queryParam = x.secret.Param
	case agentkeys.Cookie:
		x.cookieNames = agentkeys.CookieNames(x.secret.Value)
	}
	x.secret = nil
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
	case errors.Is(err, errUninspectable):
		e = agentkeys.Errorf(agentkeys.EUPSTREAM, "%s; nothing of the response was passed on (to receive responses byte for byte, turn off echo redaction for this credential: credentials add --raw-responses)", err.Error())
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
	if x.body != nil && !x.body.eof.Load() && !x.body.tooLarge.Load() {
		w.Header().Set("Connection", "close") // see modifyResponse: the rest of the body is of no use
	}
	writeError(w, agentkeys.StatusForCode(e.Code), e.Code, e.Message)
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
