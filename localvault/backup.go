package localvault

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agentkeys/agentkeys"
)

// metaBackupKeyFile is the meta row of a backup that carries the vault's
// passphrase-wrapped key file (vault.key), so a passphrase vault's backup is
// one file. The key file is useless without the passphrase.
const metaBackupKeyFile = "backup_key_file"

// Backup writes a consistent copy of the vault to dest (SQLite's VACUUM
// INTO), mode 0600, after importing the audit journals. The copy stays sealed: its values open only with this
// vault's key (a passphrase vault's key file, itself wrapped by the
// passphrase, travels inside it). Returns ECONFLICT when dest exists and
// EINVALID when its directory does not; nothing is left behind on error.
func (v *Vault) Backup(ctx context.Context, dest string) (err error) {
	if err := v.usable(); err != nil {
		return err
	}
	dest, err = filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := createFile(dest); err != nil {
		switch {
		case errors.Is(err, os.ErrExist):
			return agentkeys.Errorf(agentkeys.ECONFLICT, "%s exists: choose another file name, or remove it first", dest)
		case errors.Is(err, os.ErrNotExist):
			return agentkeys.Errorf(agentkeys.EINVALID, "cannot create %s: its directory does not exist", dest)
		}
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(dest + suffix)
			}
		}
	}()
	v.flushAudit(ctx, true) // journaled audit lines, this process's and others', go in too
	if _, err := v.db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		return storeErr("backup", err)
	}
	kf, err := os.ReadFile(filepath.Join(v.home, KeyFileName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup: read key file: %w", err)
	}
	db, err := openDB(dest)
	if err != nil {
		return err
	}
	defer db.Close()
	// A vault restored from a backup still has the row; only this vault's
	// key file, as it is now, may travel.
	if _, err := db.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, metaBackupKeyFile); err != nil {
		return storeErr("backup", err)
	}
	if kf != nil {
		_, err = db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, metaBackupKeyFile, base64.StdEncoding.EncodeToString(kf))
		if err != nil {
			return storeErr("backup", err)
		}
	}
	return db.Close()
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Path        string // the restored vault.db
	WorkspaceID string
	KeySource   string // the key that opened the backup
	Replaced    bool   // a vault was there before
}

// Restore replaces the vault in cfg.Home with the backup src, after checking
// that cfg's key (AGENTKEYS_MASTER_KEY, the passphrase for the key file the
// backup carries, or the OS keychain entry of the backup's workspace) opens
// it. Returns EUNAVAILABLE when it does not, ECONFLICT when a vault exists
// and force is false, ENOTFOUND when src does not exist — and changes
// nothing then. No process may have the vault open while it is replaced
// (stop `agentkeys up` first).
func Restore(ctx context.Context, cfg Config, src string, force bool) (*RestoreResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if ok, err := fileExists(src); err != nil || !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no backup at %s", src)
	}
	dbPath := filepath.Join(cfg.Home, DBFileName)
	if same, _ := sameFile(src, dbPath); same {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "%s is the vault itself, not a backup of it", src)
	}
	res := &RestoreResult{Path: dbPath}
	var keyFile []byte
	err = func() error {
		db, err := openDB(src)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := checkSchema(ctx, db, src); err != nil {
			if agentkeys.ErrorCode(err) == agentkeys.EINTERNAL {
				return agentkeys.Errorf(agentkeys.EINVALID, "%s is not an agentkeys backup (%v)", src, err)
			}
			return err
		}
		var initSource, kfB64 string
		err = db.QueryRowContext(ctx, `SELECT id,
			COALESCE((SELECT value FROM meta WHERE key = 'key_source'), ''),
			COALESCE((SELECT value FROM meta WHERE key = ?), '') FROM workspaces LIMIT 1`, metaBackupKeyFile).
			Scan(&res.WorkspaceID, &initSource, &kfB64)
		if errors.Is(err, sql.ErrNoRows) {
			return agentkeys.Errorf(agentkeys.EINVALID, "%s holds no workspace: it is not an agentkeys backup", src)
		}
		if err != nil {
			return agentkeys.Errorf(agentkeys.EINVALID, "%s is not an agentkeys backup (%v)", src, err)
		}
		// The key is checked against the backup as it would be against
		// the restored vault: the key file it carries stands in Home's.
		keyHome, err := os.MkdirTemp("", "agentkeys-restore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(keyHome)
		if kfB64 != "" {
			if keyFile, err = base64.StdEncoding.DecodeString(kfB64); err != nil {
				return agentkeys.Errorf(agentkeys.EINVALID, "%s carries a damaged key file", src)
			}
			if err := os.WriteFile(filepath.Join(keyHome, KeyFileName), keyFile, 0o600); err != nil {
				return err
			}
		}
		root, source, err := openRootKey(cfg, cfg.Keychain, keyHome, res.WorkspaceID, initSource)
		if err != nil {
			return err
		}
		res.KeySource = source
		ring := &keyRing{root: root, wsID: res.WorkspaceID, keys: map[int]agentkeys.Key{}}
		defer ring.wipe()
		if err := ring.load(ctx, db); err != nil {
			if errors.Is(err, agentkeys.ErrDecrypt) {
				return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the %s key does not open the backup %s (was it made from another vault?): nothing was restored", source, src)
			}
			return err
		}
		return db.Close() // checkpoints, so the file alone is the whole backup
	}()
	if err != nil {
		return nil, err
	}
	if ok, err := fileExists(dbPath); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	} else if ok {
		if !force {
			return nil, agentkeys.Errorf(agentkeys.ECONFLICT, "a vault exists at %s: restoring replaces it and everything in it; give --force if that is what you want (back it up first)", dbPath)
		}
		res.Replaced = true
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Home, err)
	}
	// Copy beside the vault, then rename: a crash leaves the old vault or
	// the new one. The old vault's -wal and -shm must go first, or SQLite
	// would replay the old log into the new file.
	tmp := dbPath + ".restore"
	if err := copyFile(src, tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("restore: %w", err)
	}
	kfPath := filepath.Join(cfg.Home, KeyFileName)
	if keyFile != nil {
		if err := os.WriteFile(kfPath+".restore", keyFile, 0o600); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.Remove(tmp)
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("restore: %w", err)
	}
	if keyFile != nil {
		if err := os.Rename(kfPath+".restore", kfPath); err != nil {
			return nil, fmt.Errorf("restore: the vault is restored, but its key file is not: %w", err)
		}
	} else if err := os.Remove(kfPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		// The replaced vault's key file would shadow the restored vault's key.
		return nil, fmt.Errorf("restore: remove the old key file: %w", err)
	}
	return res, nil
}

// copyFile copies src to a new file dst (0600) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
