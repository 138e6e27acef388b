package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/agentkeys/agentkeys"
)

// Do runs one request through the very same code as ServeHTTP, in process:
// it builds the /v1/proxy request (X-Target-Url, X-Target-Method,
// X-Credential-Name, and Authorization: Bearer <Token> when a token is given)
// and serves it into an in-memory writer. A request with Token "" is made
// with the authority of whoever opened the backend (Backend.RouteByName on
// CredentialName); that path exists only here, never over HTTP.
//
// Do returns as soon as the response header is known; the body streams (the
// caller closes it; closing early or cancelling ctx stops the upstream
// request). Errors the proxy makes itself come back as *agentkeys.Error with
// the protocol's codes (EUNAUTHORIZED, EINVALID, ENOTFOUND, EDESTINATION,
// ETOOLARGE, EUPSTREAM, ETIMEOUT, EUNAVAILABLE); any upstream answer, whatever
// its status, comes back as the *http.Response. When ctx ends before the
// header is known, Do returns ctx.Err() once the request's audit outcome has
// been handed to Backend.EndAudit. A stream that breaks off later
// makes a Body read fail instead of ending cleanly. Once Body has been read
// to its end or closed, the request is over: its audit outcome has been
// handed to Backend.EndAudit.
func (h *Handler) Do(ctx context.Context, req *agentkeys.ProxyRequest) (*http.Response, error) {
	if req == nil {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "no request given")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	ctx, cancel := context.WithCancel(ctx)
	// The inbound method is fixed; the real one travels in X-Target-Method,
	// where the handler validates it like any agent's.
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/v1/proxy", req.Body)
	if err != nil {
		cancel()
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "build in-process request")
	}
	if req.Body != nil && r.GetBody == nil {
		r.ContentLength = -1 // unknown length: stream it
	}
	r.RemoteAddr = "in-process"
	for k, vv := range req.Header {
		ck := http.CanonicalHeaderKey(k)
		r.Header[ck] = append(r.Header[ck], vv...)
	}
	r.Header.Del("Authorization")
	r.Header.Del(agentkeys.HeaderCredentialName)
	r.Header.Set(agentkeys.HeaderTargetURL, req.URL)
	r.Header.Set(agentkeys.HeaderTargetMethod, method)
	if req.CredentialName != "" {
		r.Header.Set(agentkeys.HeaderCredentialName, req.CredentialName)
	}
	auth := ownerAuthority
	if req.Token != "" {
		auth = tokenAuthority
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}

	pw := newPipeWriter(cancel)
	go func() {
		var streamErr error
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("proxy: in-process request panicked", "panic", fmt.Sprint(p))
				streamErr = errStreamBroken
				select {
				case <-pw.ready:
				default: // nothing answered yet: answer with an error, not an empty 200
					writeError(pw, http.StatusInternalServerError, agentkeys.EINTERNAL, "internal error")
					streamErr = nil
				}
			}
			pw.finish(streamErr)
			close(pw.done)
		}()
		streamErr = h.serve(pw, r, auth)
	}()

	select {
	case <-pw.ready:
	case <-ctx.Done():
		select {
		case <-pw.ready:
			// Answered: the handler cancels ctx itself once it has finished
			// (a short answer), so both cases can be ready; the answer wins.
			return doResponse(pw)
		default:
		}
		pw.abandon(ctx.Err())
		cancel()
		// The handler returns at once now (its writes fail, its upstream
		// request is cancelled); wait for it, so the audit outcome has been
		// handed to EndAudit before the caller goes on (and closes the vault).
		<-pw.done
		return nil, ctx.Err()
	}
	return doResponse(pw)
}

// doResponse is Do's result once pw has its response: proxy-made errors
// become *agentkeys.Error, anything else is the upstream's answer.
func doResponse(pw *pipeWriter) (*http.Response, error) {
	resp := pw.resp
	if code := resp.Header.Get(agentkeys.HeaderError); code != "" {
		defer resp.Body.Close()
		var body agentkeys.ErrorBody
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Error == "" {
			body.Error = http.StatusText(resp.StatusCode)
		}
		return nil, &agentkeys.Error{Code: code, Message: body.Error}
	}
	return resp, nil
}

// pipeWriter is an http.ResponseWriter whose body is read, as it is
// written, from the *http.Response Do returns: a write blocks until the
// caller has read it, so nothing is buffered whole.
type pipeWriter struct {
	header http.Header
	pr     *io.PipeReader
	pw     *io.PipeWriter
	cancel context.CancelFunc
	ready  chan struct{}
	done   chan struct{} // closed when serve has returned (and ended the audit)
	once   sync.Once
	resp   *http.Response
}

func newPipeWriter(cancel context.CancelFunc) *pipeWriter {
	pr, pw := io.Pipe()
	return &pipeWriter{header: http.Header{}, pr: pr, pw: pw, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
}

func (p *pipeWriter) Header() http.Header { return p.header }

// WriteHeader publishes the response. 1xx answers are not passed on.
func (p *pipeWriter) WriteHeader(code int) {
	if code < 200 {
		return
	}
	p.once.Do(func() {
		h := p.header.Clone()
		cl := int64(-1)
		if v := h.Get("Content-Length"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				cl = n
			}
		}
		p.resp = &http.Response{
			Status:        strconv.Itoa(code) + " " + http.StatusText(code),
			StatusCode:    code,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        h,
			Body:          &pipeBody{pr: p.pr, cancel: p.cancel, done: p.done},
			ContentLength: cl,
		}
		close(p.ready)
	})
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// FlushError is a no-op: every Write already waits for its reader.
func (p *pipeWriter) FlushError() error { return nil }

// finish ends the body: cleanly, or with err so the reader sees the break.
func (p *pipeWriter) finish(err error) {
	p.WriteHeader(http.StatusOK)
	if err != nil {
		p.pw.CloseWithError(io.ErrUnexpectedEOF)
	} else {
		p.pw.Close()
	}
	p.cancel()
}

// abandon makes every later write fail at once: Do has returned and nobody
// will read.
func (p *pipeWriter) abandon(err error) { p.pr.CloseWithError(err) }

// pipeBody is the response body Do returns. Close stops the request and
// waits until the handler has returned, so its audit outcome is recorded
// before the caller goes on (and, say, closes the vault).
type pipeBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   <-chan struct{}
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *pipeBody) Close() error {
	b.pr.Close()
	b.cancel()
	<-b.done
	return nil
}
