package main

import "testing"

// TestFloorImports fails when bench/cli/floor no longer links exactly the
// third-party packages agentkeys imports: the floor would then stop being
// what the CLI's figures are measured against.
func TestFloorImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over agentkeys' dependencies; skipped with -short")
	}
	if err := checkFloorImports(); err != nil {
		t.Fatal(err)
	}
}
