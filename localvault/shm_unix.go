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
type shmWatch struct {
	mem []byte
}

const shmHeaderWords = 24 // 2 × 48 bytes

type shmHeader [shmHeaderWords]uint32

// openShmWatch maps dbPath-shm; nil when it cannot (the caller then checks
// the database on every call). The vault's own connections keep the file
// open, so SQLite never truncates it while the mapping exists.
func openShmWatch(dbPath string) *shmWatch {
	f, err := os.Open(dbPath + "-shm")
	if err != nil {
		return nil
	}
	defer f.Close()
	const size = 4096
	if fi, err := f.Stat(); err != nil || fi.Size() < size {
		return nil
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return &shmWatch{mem: mem}
}

// read copies the header words with atomic loads. A read torn by a
// concurrent commit differs from the old header, or equals it only while
// that commit has not yet returned.
func (s *shmWatch) read(h *shmHeader) {
	for i := range h {
		h[i] = atomic.LoadUint32((*uint32)(unsafe.Pointer(&s.mem[4*i])))
	}
}

func (s *shmWatch) close() {
	if s != nil && s.mem != nil {
		syscall.Munmap(s.mem)
		s.mem = nil
	}
}
