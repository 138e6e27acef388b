// Package proxy is agentkeys' injecting forwarder: the http.Handler behind
// /v1/proxy (served on loopback by `agentkeys up`, and later by the hosted
// server) and the in-process path used by `agentkeys proxy` and the MCP
// server (Handler.Do).
//
// One request goes: authorise the token (Backend.Authorize) → check the target
// URL against the credential's allowlist (IDNA-normalised, before anything is
// decrypted) → write the audit row (fail closed) → open the secret in memory →
// inject it with Secret.Inject → forward with httputil.ReverseProxy (Rewrite,
// FlushInterval -1, pooled 32 KiB buffers, a tuned keep-alive transport that
// never follows redirects and never uses an inherited HTTP(S)_PROXY) → stream
// the answer back → complete the audit row with status, bytes and duration.
//
// Audit: every request, allowed or refused, is recorded (requests without a
// valid token are sampled: the first of each kind per minute, see sample.go). A forwarded request's
// row is written with Backend.BeginAudit (decision "pending") before anything
// is decrypted or forwarded — if that fails the agent gets 503 UNAVAILABLE and
// nothing is sent — and completed with Backend.EndAudit (status, bytes in and
// out, duration, decision allowed/error and code) when the response stream
// ends. A refused request's row is written with its final status before the
// refusal is sent. Rows hold the method, host and path (never the query
// string), never a header value or body.
//
// Every answer carries X-Agentkeys-Request-Id (the audit row's RequestID); answers the proxy made itself
// also carry X-Agentkeys-Error and a JSON body {"error","code","status"}. No
// response, log line or audit row ever holds a credential value: transport
// errors are classified, never printed (a *url.Error prints the outbound URL,
// which carries a QUERY_PARAM secret). The common ways an upstream repeats
// what was injected are closed: the injected query parameter is removed from
// Location and Content-Location (a redirect that keeps the query string) and
// from Link (pagination), and Set-Cookie lines for injected cookie names are
// dropped (a session refresh). Every other echo — any response header,
// trailer or the body repeating the value in any of its usual encodings — is
// replaced with agentkeys.RedactedEcho as the response streams, unless the
// credential has Secret.RawResponses (redact.go).
//
// Plain http goes only to connections whose dialled address is loopback
// (checked just before connecting); "localhost" and names under .localhost
// are dialled as 127.0.0.1 or ::1 without DNS.
//
// For the hosted mode, NewTransport can dial through SafeDialer, which
// refuses loopback, private, link-local, CGNAT and other special addresses at
// connect time, so DNS rebinding and odd IP spellings are caught too.
package proxy
