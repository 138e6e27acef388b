//go:build !unix && !windows

package journal

import (
	"errors"
	"os"
)

// tryLock is not supported here: every journal is treated as belonging to
// a live process (imported, never removed, by other processes).
func tryLock(f *os.File) (bool, error) { return false, errors.ErrUnsupported }

// renameOpenFiles reports whether an open file can be renamed (journals
// are created under a temporary name, locked, then renamed).
const renameOpenFiles = true
