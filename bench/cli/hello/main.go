// Command hello is the smallest cobra program: the baseline `go run
// ./bench/cli` compares `agentkeys --version` with.
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "hello", Version: "1.0.0", Run: func(*cobra.Command, []string) {}}
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
