package localvault

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// Key rotation. The root key lives outside the database (environment, key
// file, keychain), so replacing it cannot be one transaction; instead:
//
//  1. one transaction stores, beside the data keys wrapped by the old root,
//     the same data keys wrapped by the new root (meta "pending_root");
//  2. the new root is saved where the old one was (key file renamed into
//     place, keychain entry replaced, or printed for AGENTKEYS_MASTER_KEY);
//  3. one transaction makes the new wrapping the data keys' and drops the
//     pending one.
//
// Open tries the data keys, then the pending wrapping (finishing step 3 when
// that is what opens). A crash at any point leaves a vault that opens with
// the old key (before step 2 completes) or the new one (after), never with
// neither. A new data key, on request, is one transaction of its own before
// step 1: every value re-sealed under it, the old data keys deleted.

const metaPendingRoot = "pending_root"

// rotateHook, when set, is called after each step ("pending", "saved",
// "done"; "resealed" after a new data key): crash tests stop there.
var rotateHook func(step string)

func rotateStep(step string) {
	if rotateHook != nil {
		rotateHook(step)
	}
}

// RotateOptions says what RotateKey changes.
type RotateOptions struct {
	// DataKey also replaces the data key, re-sealing every value.
	DataKey bool
	// NewPassphrase wraps the new root key in the key file of a passphrase
	// vault; required there, ignored elsewhere.
	NewPassphrase string
	// SaveMasterKey is called with the new root key (base64) of a vault
	// whose key comes from AGENTKEYS_MASTER_KEY, before the vault switches
	// to it: the caller shows it once. An error stops the rotation with the
	// old key still in force.
	SaveMasterKey func(newKey string) error
	// NewRootKey is the new root key; zero means a random one (tests set it).
	NewRootKey agentkeys.Key
}

// RotateResult says what RotateKey did.
type RotateResult struct {
	KeySource      string
	DataKeyVersion int // the data key in use afterwards
	Resealed       int // values re-sealed under a new data key
}

// RotateKey replaces the vault's root key (and, with opts.DataKey, its data
// key) as described above, saving the new root key where the current one
// came from. Returns EINVALID for a passphrase vault without
// NewPassphrase (or one shorter than 8 characters), or an environment key
// without SaveMasterKey. Other processes with the vault open keep working
// on the data keys they hold; restart a running `agentkeys up` afterwards.
func (v *Vault) RotateKey(ctx context.Context, opts RotateOptions) (*RotateResult, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	switch v.keySource {
	case SourcePassphrase:
		if len([]rune(opts.NewPassphrase)) < 8 {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "a new passphrase of at least 8 characters is needed: set AGENTKEYS_NEW_PASSPHRASE, or run in a terminal to be asked")
		}
	case SourceEnvironment:
		if opts.SaveMasterKey == nil {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "the new key must be shown to be saved")
		}
	}
	res := &RotateResult{KeySource: v.keySource}
	if opts.DataKey {
		n, err := v.newDataKey(ctx)
		if err != nil {
			return nil, err
		}
		res.Resealed = n
		rotateStep("resealed")
	}
	root := opts.NewRootKey
	if root == (agentkeys.Key{}) {
		var err error
		if root, err = agentkeys.NewKey(); err != nil {
			return nil, err
		}
	}
	defer clear(root[:])

	// Step 1: the data keys wrapped by the new root, pending.
	pending := map[int][]byte{}
	v.keys.mu.RLock()
	for ver, k := range v.keys.keys {
		w, err := agentkeys.WrapKey(root, k, agentkeys.DataKeyAAD(v.wsID, ver))
		if err != nil {
			v.keys.mu.RUnlock()
			return nil, err
		}
		pending[ver] = w
	}
	res.DataKeyVersion = v.keys.current
	v.keys.mu.RUnlock()
	pj, err := json.Marshal(pending)
	if err != nil {
		return nil, err
	}
	if _, err := v.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		metaPendingRoot, string(pj)); err != nil {
		return nil, storeErr("rotate key", err)
	}
	rotateStep("pending")

	// Step 2: save the new root where the old one was.
	switch v.keySource {
	case SourceEnvironment:
		if err := opts.SaveMasterKey(encodeKey(root)); err != nil {
			return nil, err
		}
	case SourcePassphrase:
		if err := replaceKeyFile(filepath.Join(v.home, KeyFileName), opts.NewPassphrase, root); err != nil {
			return nil, err
		}
	case SourceKeychain:
		ks := v.keychain
		if err := ks.Set(KeychainService, keychainUser(v.wsID), encodeKey(root)); err != nil {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the OS keychain did not take the new key (%v): the old key stays in force", err)
		}
		if got, err := ks.Get(KeychainService, keychainUser(v.wsID)); err != nil || got != encodeKey(root) {
			return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the OS keychain did not return the new key it was given: run `agentkeys key rotate` again")
		}
	}
	rotateStep("saved")

	// Step 3: switch.
	if err := v.write(ctx, func(tx *sql.Tx) error { return applyPendingRoot(ctx, tx, v.wsID, pending) }); err != nil {
		return nil, storeErr("rotate key", err)
	}
	v.keys.mu.Lock()
	v.keys.root = root
	v.keys.mu.Unlock()
	rotateStep("done")
	return res, nil
}

// applyPendingRoot makes the pending wrapping the data keys' and drops it.
func applyPendingRoot(ctx context.Context, tx *sql.Tx, wsID string, pending map[int][]byte) error {
	for ver, w := range pending {
		if _, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = ? WHERE workspace_id = ? AND version = ?`, w, wsID, ver); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, metaPendingRoot)
	return err
}

// finishRotation is Open's second try when the root key does not open the
// data keys: a rotation interrupted after its new key was saved. It reports
// whether the pending wrapping opens with r's root, and if so completes the
// rotation and loads the keys.
func finishRotation(ctx context.Context, db *sql.DB, r *keyRing) (bool, error) {
	var pj string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaPendingRoot).Scan(&pj)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, storeErr("read pending key", err)
	}
	var pending map[int][]byte
	if err := json.Unmarshal([]byte(pj), &pending); err != nil || len(pending) == 0 {
		return false, nil
	}
	for ver, w := range pending {
		k, err := agentkeys.UnwrapKey(r.root, w, agentkeys.DataKeyAAD(r.wsID, ver))
		if err != nil {
			return false, nil
		}
		clear(k[:])
	}
	if err := withTx(ctx, db, func(tx *sql.Tx) error { return applyPendingRoot(ctx, tx, r.wsID, pending) }); err != nil {
		return false, storeErr("finish key rotation", err)
	}
	return true, r.load(ctx, db)
}

// newDataKey adds a data key version, re-seals every value under it and
// deletes the older versions, in one transaction. It returns how many
// values were re-sealed.
func (v *Vault) newDataKey(ctx context.Context) (int, error) {
	dk, err := agentkeys.NewKey()
	if err != nil {
		return 0, err
	}
	defer clear(dk[:])
	v.keys.mu.RLock()
	root, cur := v.keys.root, v.keys.current
	v.keys.mu.RUnlock()
	ver := cur + 1
	wrapped, err := agentkeys.WrapKey(root, dk, agentkeys.DataKeyAAD(v.wsID, ver))
	if err != nil {
		return 0, err
	}
	n := 0
	err = v.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO data_keys (workspace_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)`,
			v.wsID, ver, wrapped, v.stamp().UnixMicro()); err != nil {
			return err
		}
		oldKey := func(version int) (agentkeys.Key, bool) {
			v.keys.mu.RLock()
			defer v.keys.mu.RUnlock()
			k, ok := v.keys.keys[version]
			return k, ok
		}
		// A credential's additional data is its id.
		var err error
		if n, err = storesql.Reseal(ctx, tx, v.wsID, oldKey, dk, ver, func(id string) string { return id },
			`SELECT id, sealed, key_version FROM credentials WHERE workspace_id = $1`,
			`UPDATE credentials SET sealed = $1, key_version = $2, `+storesql.SetVersionBump+` WHERE workspace_id = $3 AND id = $4`); err != nil {
			return err
		}
		if err := dialect.ResealOAuthApps(ctx, tx, v.wsID, oldKey, dk, ver); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM data_keys WHERE workspace_id = ? AND version < ?`, v.wsID, ver)
		return err
	})
	if err != nil {
		return 0, storeErr("new data key", err)
	}
	return n, v.keys.load(ctx, v.db)
}

// ChangePassphrase re-wraps the root key of a passphrase vault under a new
// passphrase, replacing the key file atomically (a crash leaves the old file
// or the new one). Returns EINVALID for another kind of vault or a
// passphrase shorter than 8 characters.
func (v *Vault) ChangePassphrase(newPassphrase string) error {
	if err := v.usable(); err != nil {
		return err
	}
	if v.keySource != SourcePassphrase {
		return agentkeys.Errorf(agentkeys.EINVALID, "this vault's key comes from the %s, not a passphrase: see `agentkeys key where`", v.keySource)
	}
	if len([]rune(newPassphrase)) < 8 {
		return agentkeys.Errorf(agentkeys.EINVALID, "the passphrase is shorter than 8 characters")
	}
	v.keys.mu.RLock()
	root := v.keys.root
	v.keys.mu.RUnlock()
	return replaceKeyFile(filepath.Join(v.home, KeyFileName), newPassphrase, root)
}

// replaceKeyFile writes a new key file beside name and renames it over name.
func replaceKeyFile(name, passphrase string, root agentkeys.Key) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tmp := name + ".tmp-" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := writeKeyFile(tmp, passphrase, root); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace key file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		d.Sync() // the rename itself durable
		d.Close()
	}
	return nil
}
