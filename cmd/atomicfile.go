package cmd

import (
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to a temporary file beside path (same
// directory, so the rename is atomic) with the given mode, syncs it, and
// renames it over path: a reader or a crash sees the old file or the new
// one, never half of either. It is the one way cmd writes a file it may be
// rewriting (config.json, MCP client configs).
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
