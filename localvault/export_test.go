package localvault

import (
	"context"
	"os"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/journal"
)

// DropCache empties the proxy-path cache, so benchmarks can measure the
// uncached path (tests only).
func DropCache(v *Vault) { v.cache.invalidate() }

// AuditDirName is the journals' directory in Home.
const AuditDirName = auditDirName

// SetImportIntervals changes how often the importer runs and looks for
// dead processes' journals (tests and helper processes only; call before
// Open).
func SetImportIntervals(importEvery, scanEvery time.Duration) {
	importInterval, deadScanInterval = importEvery, scanEvery
}

// SwapJournalFile makes the vault's journal write to f and returns the file
// it wrote to (tests only: f may be /dev/full to make writes fail).
func SwapJournalFile(v *Vault, f *os.File) *os.File { return v.audit.j.SwapFile(f) }

// JournalLine encodes one journal line (kind 'B' or 'E').
func JournalLine(kind byte, e *agentkeys.AuditEvent) []byte { return journal.Line(kind == 'E', e) }

// InitAtSchema is Init creating schema version (an older vault, for tests
// of the upgrade Open makes).
func InitAtSchema(ctx context.Context, cfg Config, version int) (*InitResult, error) {
	migrateLimit = version
	defer func() { migrateLimit = 0 }()
	return Init(ctx, cfg, InitOptions{})
}

// SetRotateHook sets the function RotateKey calls after each step (tests and
// helper processes only).
func SetRotateHook(fn func(step string)) { rotateHook = fn }
