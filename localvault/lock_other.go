//go:build !unix && !windows

package localvault

import (
	"errors"
	"os"
)

// tryLock is not supported here: every journal is treated as belonging to
// a live process (imported, never removed, by other processes).
func tryLock(f *os.File) (bool, error) { return false, errors.ErrUnsupported }

func lockedRename(from, to string) error { return os.Rename(from, to) }

// renameOpenFiles reports whether an open file can be renamed (journals
// are created under a temporary name, locked, then renamed).
const renameOpenFiles = true
