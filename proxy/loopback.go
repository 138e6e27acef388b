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
// handler with it.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHostHeader(r.Host) {
			w.Header().Set(agentkeys.HeaderRequestID, agentkeys.NewID("req"))
			writeError(w, http.StatusForbidden, agentkeys.EFORBIDDEN,
				"this proxy only answers requests addressed to localhost, 127.0.0.1 or [::1] (the Host header named another host)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHostHeader(hostport string) bool {
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
