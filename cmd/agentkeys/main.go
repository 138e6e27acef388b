// Command agentkeys keeps API credentials in an encrypted vault and lets AI
// agents use them through an injecting proxy without ever seeing them.
// Exit codes are documented on cmd.ExitCode and in README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentkeys/agentkeys/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.Execute(ctx)
	stop()
	os.Exit(cmd.ExitCode(err))
}
