//go:build unix

package localvault

import (
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// shmWatch maps the first page of the vault's WAL-index (vault.db-shm)
// read-only. Its first 96 bytes are the two copies of the WAL-index header
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"), which
// every commit rewrites — iChange is incremented with each transaction —
// before the commit returns, whatever process makes it. An unchanged header
// therefore proves that nothing was committed since it was last read.
//
// The file descriptor it was mapped through stays open until close, which
// the vault calls only after its database is closed: closing any descriptor
// of a file releases every POSIX (fcntl) lock the process holds on that
// file, and SQLite's locks on vault.db-shm are such locks — dropping them
// would let another process reinitialise the WAL-index under us.
type shmWatch struct {
	f   *os.File
	mem []byte // nil when the mapping failed: every check asks the database
}

const shmHeaderWords = 24 // 2 × 48 bytes

type shmHeader [shmHeaderWords]uint32

// openShmWatch maps dbPath-shm; nil when the file cannot be opened. The
// vault's own connections keep the file open, so SQLite never truncates it
// while the mapping exists.
func openShmWatch(dbPath string) *shmWatch {
	f, err := os.Open(dbPath + "-shm")
	if err != nil {
		return nil
	}
	s := &shmWatch{f: f} // f is never closed before the database: see above
	const size = 4096
	if fi, err := f.Stat(); err != nil || fi.Size() < size {
		return s
	}
	if mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
		s.mem = mem
	}
	return s
}

// ok reports whether the header can be read.
func (s *shmWatch) ok() bool { return s != nil && s.mem != nil }

// read copies the header words with atomic loads. A read torn by a
// concurrent commit differs from the old header, or equals it only while
// that commit has not yet returned.
func (s *shmWatch) read(h *shmHeader) {
	for i := range h {
		h[i] = atomic.LoadUint32((*uint32)(unsafe.Pointer(&s.mem[4*i])))
	}
}

// close unmaps the header and closes the file: call it only after the
// database is closed.
func (s *shmWatch) close() {
	if s == nil {
		return
	}
	if s.mem != nil {
		syscall.Munmap(s.mem)
		s.mem = nil
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
