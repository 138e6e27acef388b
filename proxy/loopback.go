package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// LoopbackOnly refuses, with 403 JSON (code FORBIDDEN), requests whose Host
// header is not a loopback name: "localhost", an IPv4 address in
// 127.0.0.0/8 in dotted-quad form, or [::1], each with or without a port.
// A web page the agent's user visits can make the browser send requests to
// 127.0.0.1 through a DNS name it controls (DNS rebinding); such requests
// carry that name in Host and are refused here. `agentkeys up` wraps its
// handler with it. When next is a *Handler, refusals are audited (see
// Handler.Refuse).
func LoopbackOnly(next http.Handler) http.Handler {
	return GuardHost(IsLoopbackHostHeader, errNotLoopback, next)
}

var errNotLoopback = agentkeys.Errorf(agentkeys.EFORBIDDEN,
	"this proxy only answers requests addressed to localhost, 127.0.0.1 or [::1] (the Host header named another host)")

// GuardHost refuses with err (403 unless err's code says otherwise) every
// request whose Host header allowed rejects, and passes the others to next.
// When next is a *Handler the refusal goes through Handler.Refuse, so it has
// an audit row; otherwise it is answered the same way without one.
func GuardHost(allowed func(hostHeader string) bool, err error, next http.Handler) http.Handler {
	refuse := func(w http.ResponseWriter, r *http.Request) {
		e := asError(err)
		w.Header().Set(agentkeys.HeaderRequestID, agentkeys.NewID("req"))
		writeError(w, agentkeys.StatusForCode(e.Code), e.Code, e.Message)
	}
	if h, ok := next.(*Handler); ok {
		refuse = func(w http.ResponseWriter, r *http.Request) { h.Refuse(w, r, err) }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r.Host) {
			refuse(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopbackHostHeader reports whether a Host header names this machine's
// loopback: "localhost", a dotted-quad address in 127.0.0.0/8, or [::1], with
// or without a port.
func IsLoopbackHostHeader(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.Is4() && ip.IsLoopback() || ip == netip.IPv6Loopback()
}
