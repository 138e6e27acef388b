package cmd

import (
	"os"
	"runtime/debug"
)

// ServeGCPercent is the garbage collector's target in the commands that
// serve requests for a long time (up, serve, mcp, run) unless GOGC says
// otherwise: they keep a live heap of a few MiB and allocate per request,
// so Go's default of 100 runs a collection every few thousand requests;
// 400 lets the heap grow to about five times the live data (tens of MiB)
// for 5–8% less CPU per proxied request (go run ./bench). One-shot commands
// keep Go's default: a larger heap there only means more fresh pages for
// the kernel to fault in (about a fifth more time for `credentials list`
// over 10,000 credentials, go run ./bench/cli).
const ServeGCPercent = 400

// serving raises the garbage collector's target to ServeGCPercent for a
// command that serves requests, unless GOGC is set.
func serving() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ServeGCPercent)
	}
}
