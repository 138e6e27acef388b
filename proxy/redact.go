package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Echo redaction: an upstream may send back the credential it was given
// (debugging endpoints reflect every header; some APIs repeat the key in an
// error). Unless the credential asks for byte-exact responses
// (Secret.RawResponses), every form of the injected value an upstream could
// echo is replaced with agentkeys.RedactedEcho in every response header and
// trailer and in the body, as it streams: nothing is buffered beyond the
// few bytes that could be the start of a value, so server-sent events pass
// at once. The proxy asks for an unencoded body and decodes gzip and
// deflate itself; a body it cannot decode (br, zstd…) or a connection
// upgrade is refused rather than passed on unchecked.

// minRedactLen is the shortest form redacted: shorter strings are too
// likely to be ordinary text, and replacing them would garble responses
// while hiding little.
const minRedactLen = 6

// minTailRedact is the shortest start of a value redacted where a body
// ends (or breaks off) in the middle of one.
const minTailRedact = 4

// redactor holds the forms of one request's secret to look for, longest
// first (so a form that contains another is replaced whole).
type redactor struct {
	needles [][]byte
	strs    []string
}

// newRedactor returns the redactor for a credential's secret, or nil when
// the credential opted out or has nothing long enough to look for.
func newRedactor(t agentkeys.CredentialType, s *agentkeys.Secret) *redactor {
	if s == nil || s.RawResponses {
		return nil
	}
	strs := make([]string, 0, 16)
	add := func(v string) {
		if len(v) >= minRedactLen && !slices.Contains(strs, v) {
			strs = append(strs, v)
		}
	}
	// forms adds v and the spellings it can come back in: URL query and
	// path escaping (upper- and lower-case hex, '+' or %20 for spaces), and
	// escaped once more (a URL echoed inside another URL's query); JSON
	// string escaping; base64, at each of the three alignments it can take
	// inside a longer encoded text.
	forms := func(v string) {
		if len(v) < minRedactLen {
			return
		}
		add(v)
		if strings.IndexFunc(v, needsEscape) >= 0 {
			for _, e := range []string{url.QueryEscape(v), url.PathEscape(v), strings.ReplaceAll(url.QueryEscape(v), "+", "%20")} {
				add(e)
				add(lowerHex(e))
				add(url.QueryEscape(e))
			}
			if j, err := json.Marshal(v); err == nil {
				add(string(j[1 : len(j)-1]))
			}
			add(strings.ReplaceAll(v, "/", `\/`)) // JSON encoders that escape the slash
		}
		add(base64.StdEncoding.EncodeToString([]byte(v)))
		for shift := 0; shift < 3; shift++ {
			w := v[shift:]
			w = w[:len(w)/3*3]
			add(base64.RawStdEncoding.EncodeToString([]byte(w)))
			add(base64.RawURLEncoding.EncodeToString([]byte(w)))
		}
	}
	switch t {
	case agentkeys.BasicAuth:
		forms(s.Password)
		basic := s.Username + ":" + s.Password
		forms(basic)
		add(base64.RawStdEncoding.EncodeToString([]byte(basic)))
	case agentkeys.Cookie:
		forms(s.Value)
		for _, kv := range parseCookies(s.Value) {
			forms(kv)
		}
	case agentkeys.CustomHeader:
		for _, h := range s.Headers {
			forms(h.Value)
		}
	default: // API_KEY, OAUTH, QUERY_PARAM
		forms(s.Value)
		forms(s.RefreshToken)
	}
	if len(strs) == 0 {
		return nil
	}
	slices.SortFunc(strs, func(a, b string) int { return len(b) - len(a) })
	// One backing array for every form's bytes: this runs per request.
	n := 0
	for _, v := range strs {
		n += len(v)
	}
	all := make([]byte, 0, n)
	r := &redactor{strs: strs, needles: make([][]byte, len(strs))}
	for i, v := range strs {
		all = append(all, v...)
		r.needles[i] = all[len(all)-len(v) : len(all) : len(all)]
	}
	return r
}

// needsEscape reports whether r is escaped by URL or JSON encoding (it
// is not an unreserved URL character).
func needsEscape(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '~')
}

// parseCookies returns each value of a "a=b; c=d" cookie string.
func parseCookies(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ";") {
		if _, val, ok := strings.Cut(part, "="); ok {
			out = append(out, strings.Trim(strings.TrimSpace(val), `"`))
		}
	}
	return out
}

// lowerHex lowercases the hex digits of %XX escapes.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// string replaces every form in s; it returns s itself when there is none.
func (r *redactor) string(s string) string {
	for _, v := range r.strs {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, agentkeys.RedactedEcho)
		}
	}
	return s
}

// header redacts every value of h in place. Header names are left alone:
// Go's server would refuse to send a name with a value's characters anyway.
func (r *redactor) header(h http.Header) {
	for _, vv := range h {
		for i, v := range vv {
			vv[i] = r.string(v)
		}
	}
}

// process appends to dst the redacted form of buf and returns it, with the
// end of buf that could be the start of a form (held back until more data
// shows whether it is). With final, nothing is held: a dangling start of a
// form of at least minTailRedact bytes is replaced too.
func (r *redactor) process(dst, buf []byte, final bool) (out, held []byte) {
	next := make([]int, len(r.needles)) // the next match of each form; -2: not searched
	for i := range next {
		next[i] = -2
	}
	pos := 0
	for {
		best, bestLen := -1, 0
		for i, n := range r.needles {
			if next[i] == -2 || next[i] >= 0 && next[i] < pos {
				if k := bytes.Index(buf[pos:], n); k >= 0 {
					next[i] = pos + k
				} else {
					next[i] = -1
				}
			}
			if next[i] >= 0 && (best < 0 || next[i] < best || next[i] == best && len(n) > bestLen) {
				best, bestLen = next[i], len(n)
			}
		}
		if best < 0 {
			break
		}
		dst = append(dst, buf[pos:best]...)
		dst = append(dst, agentkeys.RedactedEcho...)
		pos = best + bestLen
	}
	rest := buf[pos:]
	k := r.partialSuffix(rest)
	if final {
		if k >= minTailRedact {
			return append(append(dst, rest[:len(rest)-k]...), agentkeys.RedactedEcho...), nil
		}
		return append(dst, rest...), nil
	}
	return append(dst, rest[:len(rest)-k]...), rest[len(rest)-k:]
}

// clean reports whether b holds no form and does not end with the start
// of one.
func (r *redactor) clean(b []byte) bool {
	for _, n := range r.needles {
		if bytes.Contains(b, n) {
			return false
		}
	}
	return r.partialSuffix(b) == 0
}

// partialSuffix is the length of the longest end of b that is a proper
// start of some form.
func (r *redactor) partialSuffix(b []byte) int {
	best := 0
	for _, n := range r.needles {
		// Only positions holding the form's first byte can start it.
		lo := max(len(b)-len(n)+1, 0)
		for i := len(b) - best - 1; i >= lo; i-- { // only ends longer than best

			if b[i] == n[0] && bytes.HasPrefix(n, b[i:]) {
				best = len(b) - i
			}
		}
	}
	return best
}

// redactingBody redacts an upstream body as it is read. It never returns
// more than it has checked, and holds back only what could be the start of
// a form.
type redactingBody struct {
	src     io.Reader // the body, decoded when it was gzip or deflate
	closer  io.Closer
	r       *redactor
	res     *http.Response // for its trailers, redacted at the end
	held    []byte
	out     []byte
	off     int
	err     error
	decoder func() (io.Reader, error) // opens the decoder on the first read
}

func (b *redactingBody) Read(p []byte) (int, error) {
	if b.decoder != nil {
		d, err := b.decoder()
		b.decoder = nil
		if err != nil {
			b.err = errBadEncoding
			return 0, b.err
		}
		b.src = d
	}
	for {
		if b.off < len(b.out) {
			n := copy(p, b.out[b.off:])
			b.off += n
			return n, nil
		}
		if b.err != nil {
			return 0, b.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		// Read straight into the caller's buffer: a chunk with no form and
		// no possible start of one (nearly every chunk) is returned as is.
		n, err := b.src.Read(p)
		if len(b.held) == 0 && err == nil && b.r.clean(p[:n]) {
			return n, nil
		}
		buf := append(b.held, p[:n]...) // held is ours; what it aliases is spent
		b.out, b.held = b.r.process(b.out[:0], buf, err != nil)
		b.off = 0
		if err != nil {
			b.err = err
			if err == io.EOF && b.res != nil {
				b.r.header(b.res.Trailer) // filled in now, copied after EOF
			}
		}
	}
}

func (b *redactingBody) Close() error { return b.closer.Close() }

var (
	errBadEncoding = errors.New("proxy: the upstream body is not valid for its Content-Encoding")
	// errUninspectable refuses a response whose body the proxy cannot read
	// for echoed credentials.
	errUninspectable = errors.New("proxy: response body cannot be inspected for echoed credentials")
)

// uninspectableError says which response could not be checked.
type uninspectableError struct{ what string }

func (e *uninspectableError) Error() string   { return e.what }
func (e *uninspectableError) Is(t error) bool { return t == errUninspectable }

// prepareRedaction readies the outbound request: the body must come back
// whole (no Range, which would let an echo be read in pieces) and
// unencoded, or in an encoding the proxy decodes.
func prepareRedaction(out *http.Request) {
	out.Header.Set("Accept-Encoding", "gzip")
	out.Header.Del("Range")
	out.Header.Del("If-Range")
}

// redactResponse redacts res's headers and wraps its body. It returns an
// uninspectableError for a body in an encoding the proxy cannot decode and
// for a protocol upgrade.
func redactResponse(r *redactor, res *http.Response) error {
	r.header(res.Header)
	if res.StatusCode == http.StatusSwitchingProtocols {
		return &uninspectableError{"the upstream switched protocols (" + agentkeys.SafeText(res.Header.Get("Upgrade")) + "): the proxy cannot check the connection for an echoed credential"}
	}
	if res.Body == nil || res.Body == http.NoBody {
		return nil
	}
	raw := res.Body
	body := &redactingBody{src: raw, closer: raw, r: r, res: res}
	switch enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		body.decoder = func() (io.Reader, error) { return gzip.NewReader(raw) }
	case "deflate":
		// "deflate" is zlib (RFC 9110), though some servers send raw deflate.
		br := &peekReader{r: raw}
		body.decoder = func() (io.Reader, error) {
			if br.zlibHeader() {
				return zlib.NewReader(br)
			}
			return flate.NewReader(br), nil
		}
	default:
		return &uninspectableError{"the upstream sent a body encoded as " + agentkeys.SafeText(enc) + ", which the proxy cannot check for an echoed credential"}
	}
	if body.decoder == nil && res.ContentLength >= 0 && res.ContentLength <= maxWholeBody {
		return redactWhole(r, res, raw)
	}
	if body.decoder != nil {
		res.Header.Del("Content-Encoding")
		res.Header.Del("Content-Length")
		res.ContentLength = -1
		res.Uncompressed = true
	}
	// The length changes wherever a value is replaced.
	if res.Request == nil || res.Request.Method != http.MethodHead {
		res.Header.Del("Content-Length")
		res.ContentLength = -1
	}
	res.Body = body
	return nil
}

// maxWholeBody is the largest body of announced length that is read whole
// and redacted at once, keeping a Content-Length (with the new length) for
// the agent: typical API answers. Longer or unannounced bodies stream.
const maxWholeBody = 64 << 10

// redactWhole reads a small body of known length, redacts it and puts it
// back with its new length.
func redactWhole(r *redactor, res *http.Response, raw io.ReadCloser) error {
	if res.Request != nil && res.Request.Method == http.MethodHead || res.ContentLength == 0 {
		return nil
	}
	buf := make([]byte, res.ContentLength)
	n, err := io.ReadFull(raw, buf)
	raw.Close()
	if err != nil {
		// The upstream broke off: pass on what came (redacted), then the
		// break, as a streamed body would.
		out, _ := r.process(nil, buf[:n], true)
		res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(out), errReader{io.ErrUnexpectedEOF}))
		res.ContentLength = -1
		res.Header.Del("Content-Length")
		return nil
	}
	out := buf
	if !r.clean(buf) {
		out, _ = r.process(make([]byte, 0, len(buf)+len(agentkeys.RedactedEcho)), buf, true)
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	if res.Trailer != nil {
		r.header(res.Trailer)
	}
	return nil
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// peekReader lets the deflate decoder look at the first two bytes.
type peekReader struct {
	r    io.Reader
	head []byte
}

func (p *peekReader) zlibHeader() bool {
	b := make([]byte, 2)
	n, _ := io.ReadFull(p.r, b)
	p.head = b[:n]
	// RFC 1950: CM 8, and CMF*256+FLG a multiple of 31.
	return n == 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}
