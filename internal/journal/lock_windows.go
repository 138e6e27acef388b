//go:build windows

package journal

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tryLock takes an exclusive lock (LockFileEx) on f without waiting. It
// reports false, nil when another handle holds it. Closing f, or the
// process dying, releases it. The locked byte lies far beyond any data
// (Windows locks are mandatory: other processes must still read the file).
func tryLock(f *os.File) (bool, error) {
	ol := windows.Overlapped{OffsetHigh: 0x40000000}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return false, nil
	default:
		return false, err
	}
}

// renameOpenFiles reports whether an open file can be renamed (journals
// are created under a temporary name, locked, then renamed).
const renameOpenFiles = false
