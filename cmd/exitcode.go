package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentkeys/agentkeys"
)

// Exit codes of the agentkeys command. ExitCode is the one place errors are
// mapped to them; README.md carries the same table.
//
//	0    success
//	1    generic failure (internal error, I/O error)
//	2    usage or bad input (unknown flag or command, missing or invalid value, body too large)
//	3    not found (unknown credential, agent, assignment or vault)
//	4    conflict (duplicate name, vault already exists)
//	5    unauthorized, forbidden, or destination not allowed (bad/revoked token, host not on the allowlist)
//	6    vault locked or unavailable (no key, wrong key, keychain unreachable)
//	7    upstream failure (unreachable, TLS failure, timeout) or rate limited
//	8    `proxy --fail` and the upstream answered with a status outside 2xx
//	130  interrupted (Ctrl-C) before the command finished
const (
	ExitOK           = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitNotFound     = 3
	ExitConflict     = 4
	ExitUnauthorized = 5
	ExitUnavailable  = 6
	ExitUpstream     = 7
	ExitHTTPStatus   = 8
	ExitInterrupted  = 130
)

// ExitCode maps an error returned by Run to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var se *statusError
	if errors.As(err, &se) {
		return ExitHTTPStatus
	}
	var ce *childExitError
	if errors.As(err, &ce) {
		return ce.code // `run`: the program's exit status
	}
	var ae *agentkeys.Error
	if !errors.As(err, &ae) && errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	switch agentkeys.ErrorCode(err) {
	case agentkeys.EINVALID, agentkeys.ETOOLARGE:
		return ExitUsage
	case agentkeys.ENOTFOUND:
		return ExitNotFound
	case agentkeys.ECONFLICT:
		return ExitConflict
	case agentkeys.EUNAUTHORIZED, agentkeys.ECREDEXPIRED, agentkeys.EFORBIDDEN, agentkeys.EDESTINATION:
		return ExitUnauthorized
	case agentkeys.EUNAVAILABLE:
		return ExitUnavailable
	case agentkeys.EUPSTREAM, agentkeys.ETIMEOUT, agentkeys.ERATELIMIT:
		return ExitUpstream
	}
	return ExitError
}

// statusError is `proxy --fail` meeting a non-2xx answer; the body has
// already been written.
type statusError struct{ status int }

func (e *statusError) Error() string {
	return fmt.Sprintf("the upstream answered with HTTP %d", e.status)
}

// errInvalid is a usage error: exit code 2.
func errInvalid(format string, args ...any) error {
	return agentkeys.Errorf(agentkeys.EINVALID, format, args...)
}

// errorLine is the one line printed on stderr for err: "error: ...".
// Multi-line messages are folded so scripts can rely on one line.
func errorLine(err error) string {
	var ae *agentkeys.Error
	if !errors.As(err, &ae) && errors.Is(err, context.Canceled) {
		return "error: interrupted"
	}
	return "error: " + agentkeys.SafeText(strings.Join(strings.Fields(err.Error()), " "))
}
