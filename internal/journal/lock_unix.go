//go:build unix

package journal

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive advisory lock (flock) on f without waiting. It
// reports false, nil when another open file description holds it. The lock
// goes with the file description: closing f, or the process dying,
// releases it.
func tryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

// renameOpenFiles reports whether an open file can be renamed (journals
// are created under a temporary name, locked, then renamed).
const renameOpenFiles = true
