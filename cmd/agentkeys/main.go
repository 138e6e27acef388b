// Command agentkeys keeps API credentials in an encrypted vault and lets AI
// agents use them through an injecting proxy without ever seeing them.
// Exit codes are documented on cmd.ExitCode and in README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/agentkeys/agentkeys/cmd"
)

// gcPercent is the garbage collector's target unless GOGC says otherwise:
// the proxies (`up`, `serve`) keep a live heap of a few MiB and allocate
// per request, so Go's default of 100 runs a collection every few thousand
// requests; 400 lets the heap grow to about five times the live data (tens
// of MiB) for 5–8% less CPU per proxied request (go run ./bench).
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.Execute(ctx)
	stop()
	os.Exit(cmd.ExitCode(err))
}
