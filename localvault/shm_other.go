//go:build !unix

package localvault

// shmWatch is only implemented on Unix; elsewhere every freshness check
// asks the database.
type shmWatch struct{}

const shmHeaderWords = 24

type shmHeader [shmHeaderWords]uint32

func openShmWatch(dbPath string) *shmWatch { return nil }

func (s *shmWatch) ok() bool { return false }

func (s *shmWatch) read(h *shmHeader) {}

func (s *shmWatch) close() {}
