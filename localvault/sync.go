package localvault

// What the sync package needs of a local vault (see the sync package doc):
// its settings, the change log kept by the triggers of migration 0007, the
// objects as agentkeys.SyncDoc, and one transaction that applies a sync
// round. Secrets stay sealed at rest: a credential's doc carries its secret
// opened from the local data key, and an applied doc is sealed again under
// this vault's data key, bound to this vault's workspace id, so two devices
// never need to share a workspace id or a data key.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// syncSecrets is the sealed part of sync_settings.
type syncSecrets struct {
	APIKey      string `json:"apiKey"`
	DeviceToken string `json:"deviceToken"`
	VaultKey    []byte `json:"vaultKey"`
}

func (v *Vault) syncSettingsAAD() []byte {
	return []byte("agentkeys/sync-settings/v1\x00" + v.wsID)
}

// SyncSettings returns this device's sync settings, the secrets opened
// with the root key. Returns ENOTFOUND when sync is off.
func (v *Vault) SyncSettings(ctx context.Context) (*agentkeys.SyncSettings, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	var s agentkeys.SyncSettings
	var sealed []byte
	var last int64
	err := v.db.QueryRowContext(ctx, `SELECT server, vault_id, device_id, sealed, cursor, last_sync FROM sync_settings WHERE id = 1`).
		Scan(&s.Server, &s.VaultID, &s.DeviceID, &sealed, &s.Cursor, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "sync is not enabled on this device: run `agentkeys sync enable` (first device) or `agentkeys sync join` (another device)")
	}
	if err != nil {
		return nil, storeErr("read sync settings", err)
	}
	v.keys.mu.RLock()
	root := v.keys.root
	v.keys.mu.RUnlock()
	plain, err := agentkeys.Open(root, sealed, v.syncSettingsAAD())
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var sec syncSecrets
	if err := json.Unmarshal(plain, &sec); err != nil || len(sec.VaultKey) != agentkeys.KeySize {
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the sync settings of this vault are damaged: run `agentkeys sync disable` and join again")
	}
	s.APIKey, s.DeviceToken = sec.APIKey, sec.DeviceToken
	copy(s.VaultKey[:], sec.VaultKey)
	clear(sec.VaultKey)
	if last > 0 {
		s.LastSync = storesql.FromMicros(last)
	}
	return &s, nil
}

// EnableSync stores s as this device's sync settings (secrets sealed under
// the root key), forgets what it knew of any earlier synced vault and marks
// every credential, agent and grant as a local change, so the first sync
// pushes (or merges) the whole vault. Returns ECONFLICT when sync is
// already on.
func (v *Vault) EnableSync(ctx context.Context, s *agentkeys.SyncSettings) error {
	if err := v.usable(); err != nil {
		return err
	}
	sec, err := json.Marshal(syncSecrets{APIKey: s.APIKey, DeviceToken: s.DeviceToken, VaultKey: s.VaultKey[:]})
	if err != nil {
		return err
	}
	defer clear(sec)
	v.keys.mu.RLock()
	root := v.keys.root
	v.keys.mu.RUnlock()
	sealed, err := agentkeys.Seal(root, sec, v.syncSettingsAAD())
	if err != nil {
		return err
	}
	now := v.stamp()
	err = v.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_settings (id, server, vault_id, device_id, sealed, cursor, last_sync, enabled_at)
			VALUES (1, ?, ?, ?, ?, 0, 0, ?)`, s.Server, s.VaultID, s.DeviceID, sealed, now.UnixMicro())
		if storesql.IsUnique(err) {
			return agentkeys.Errorf(agentkeys.ECONFLICT, "sync is already enabled on this device: run `agentkeys sync disable` first")
		}
		if err != nil {
			return err
		}
		ms := now.UnixMilli()
		for _, q := range []string{
			`DELETE FROM sync_known`, `DELETE FROM sync_dirty`, `DELETE FROM sync_conflicts`,
			`INSERT INTO sync_dirty (kind, id, changed_ms, gen) SELECT 'agent', id, ?1, 1 FROM agents`,
			`INSERT INTO sync_dirty (kind, id, changed_ms, gen) SELECT 'credential', id, ?1, 1 FROM credentials`,
			`INSERT INTO sync_dirty (kind, id, changed_ms, gen) SELECT 'grant', agent_id || '/' || credential_id, ?1, 1 FROM grants`,
		} {
			if _, err := tx.ExecContext(ctx, q, ms); err != nil {
				return err
			}
		}
		return nil
	})
	return storeErr("enable sync", err)
}

// DisableSync turns sync off on this device: its settings, change log and
// bookkeeping go; the vault itself stays as it is. Returns ENOTFOUND when
// sync is off.
func (v *Vault) DisableSync(ctx context.Context) error {
	if err := v.usable(); err != nil {
		return err
	}
	err := v.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sync_settings`)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "sync is not enabled on this device")
		}
		for _, q := range []string{`DELETE FROM sync_known`, `DELETE FROM sync_dirty`, `DELETE FROM sync_conflicts`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	return storeErr("disable sync", err)
}

// SyncPendingCount is the number of local changes not yet pushed.
func (v *Vault) SyncPendingCount(ctx context.Context) (int, error) {
	if err := v.usable(); err != nil {
		return 0, err
	}
	var n int
	err := v.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_dirty`).Scan(&n)
	return n, storeErr("count pending changes", err)
}

// SyncChangeMark changes whenever a local change is logged or cleared: a
// cheap way for a background syncer to notice new changes without
// retrying the ones that stay pending.
func (v *Vault) SyncChangeMark(ctx context.Context) (string, error) {
	if err := v.usable(); err != nil {
		return "", err
	}
	var n, gen int64
	err := v.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(gen), 0) FROM sync_dirty`).Scan(&n, &gen)
	return fmt.Sprintf("%d/%d", n, gen), storeErr("read the change log", err)
}

// SyncPending returns the local changes not yet pushed, each with the
// object's current state (Deleted when it no longer exists).
func (v *Vault) SyncPending(ctx context.Context) ([]agentkeys.SyncPending, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	var out []agentkeys.SyncPending
	err := withReadTx(ctx, v.db, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT kind, id, changed_ms, gen FROM sync_dirty ORDER BY gen`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p agentkeys.SyncPending
			if err := rows.Scan(&p.Doc.Kind, &p.Doc.ID, &p.Changed, &p.Gen); err != nil {
				rows.Close()
				return err
			}
			out = append(out, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			doc, err := v.syncDoc(ctx, tx, out[i].Doc.Kind, out[i].Doc.ID)
			if err != nil {
				return err
			}
			out[i].Doc = *doc
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("read pending changes", err)
	}
	return out, nil
}

// syncDoc reads one object as a SyncDoc; a missing one is a tombstone.
func (v *Vault) syncDoc(ctx context.Context, q querier, kind, id string) (*agentkeys.SyncDoc, error) {
	d := &agentkeys.SyncDoc{Kind: kind, ID: id}
	var err error
	switch kind {
	case agentkeys.SyncKindCredential:
		var hosts string
		var sealed []byte
		var ver int
		var expires sql.NullInt64
		err = q.QueryRowContext(ctx, `SELECT name, type, allowed_hosts, sealed, key_version, created_at, updated_at, expires_at
			FROM credentials WHERE workspace_id = ? AND id = ?`, v.wsID, id).
			Scan(&d.Name, &d.Type, &hosts, &sealed, &ver, &d.CreatedAt, &d.UpdatedAt, &expires)
		d.ExpiresAt = expires.Int64
		if err == nil {
			if d.AllowedHosts, err = storesql.DecodeHosts(hosts); err != nil {
				return nil, fmt.Errorf("credential %s: allowed hosts: %w", id, err)
			}
			sl, oerr := v.keys.opener(ctx, q, ver)
			if oerr != nil {
				return nil, oerr
			}
			if d.Secret, err = sl.Open(sealed, agentkeys.CredentialAAD(v.wsID, id, ver)); err != nil {
				return nil, err
			}
		}
	case agentkeys.SyncKindAgent:
		err = q.QueryRowContext(ctx, `SELECT name, created_at FROM agents WHERE workspace_id = ? AND id = ?`, v.wsID, id).
			Scan(&d.Name, &d.CreatedAt)
	case agentkeys.SyncKindGrant:
		agentID, credID, _ := strings.Cut(id, "/")
		var expires sql.NullInt64
		err = q.QueryRowContext(ctx, `SELECT token_hash, created_at, expires_at FROM grants WHERE agent_id = ? AND credential_id = ?`, agentID, credID).
			Scan(&d.TokenHash, &d.CreatedAt, &expires)
		d.ExpiresAt = expires.Int64
	default:
		return nil, fmt.Errorf("unknown sync kind %q", kind)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &agentkeys.SyncDoc{Kind: kind, ID: id, Deleted: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SyncKnown returns the server version each object was last pushed or
// applied at.
func (v *Vault) SyncKnown(ctx context.Context) ([]agentkeys.SyncKnown, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, `SELECT kind, id, version, stamp FROM sync_known`)
	if err != nil {
		return nil, storeErr("read sync state", err)
	}
	defer rows.Close()
	var out []agentkeys.SyncKnown
	for rows.Next() {
		var k agentkeys.SyncKnown
		if err := rows.Scan(&k.Kind, &k.ID, &k.Version, &k.Stamp); err != nil {
			return nil, storeErr("read sync state", err)
		}
		out = append(out, k)
	}
	return out, storeErr("read sync state", rows.Err())
}

// SyncConflicts returns the conflicts sync resolved on this device, oldest
// first.
func (v *Vault) SyncConflicts(ctx context.Context) ([]agentkeys.SyncConflict, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, `SELECT time, message FROM sync_conflicts ORDER BY seq`)
	if err != nil {
		return nil, storeErr("read sync conflicts", err)
	}
	defer rows.Close()
	out := []agentkeys.SyncConflict{}
	for rows.Next() {
		var t int64
		var c agentkeys.SyncConflict
		if err := rows.Scan(&t, &c.Message); err != nil {
			return nil, storeErr("read sync conflicts", err)
		}
		c.Time = storesql.FromMicros(t)
		out = append(out, c)
	}
	return out, storeErr("read sync conflicts", rows.Err())
}

// ApplySync writes one sync round in one transaction (see
// agentkeys.SyncBatch). Remote docs are applied in an order the foreign
// keys accept (agents, credentials, grants; deletes the other way round).
// A remote name that a different local object holds renames the local one
// to "NAME (conflict)" (a local change, so it syncs too); a grant whose
// agent or credential is missing is skipped. Both are recorded as
// conflicts. Each of b.Copies (the losing side of a conflict, with a new
// id and the name it lost) is created under "NAME (conflict)" ("NAME
// (conflict N)" when taken) as a local change, so it syncs too. Returns
// the conflicts recorded by this call, b.Conflicts excluded.
func (v *Vault) ApplySync(ctx context.Context, b *agentkeys.SyncBatch) ([]string, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	notes := append([]string(nil), b.Conflicts...)
	key, ver := v.keys.sealing()
	sl, err := agentkeys.NewSealer(key)
	if err != nil {
		return nil, err
	}
	err = v.write(ctx, func(tx *sql.Tx) error {
		notes = notes[:len(b.Conflicts)]
		if _, err := tx.ExecContext(ctx, `INSERT INTO sync_applying (id) VALUES (1)`); err != nil {
			return err
		}
		order := map[string]int{agentkeys.SyncKindAgent: 0, agentkeys.SyncKindCredential: 1, agentkeys.SyncKindGrant: 2}
		for pass := 0; pass < 3; pass++ { // upserts by kind
			for i := range b.Apply {
				d := &b.Apply[i]
				if d.Deleted || order[d.Kind] != pass {
					continue
				}
				n, err := v.applyDoc(ctx, tx, sl, ver, d)
				if err != nil {
					return fmt.Errorf("apply %s: %w", d, err)
				}
				notes = append(notes, n...)
			}
		}
		for pass := 2; pass >= 0; pass-- { // deletes, grants first
			for i := range b.Apply {
				d := &b.Apply[i]
				if !d.Deleted || order[d.Kind] != pass {
					continue
				}
				if err := v.deleteDoc(ctx, tx, d); err != nil {
					return fmt.Errorf("apply %s: %w", d, err)
				}
			}
		}
		for i := range b.Copies {
			d := b.Copies[i] // named here: "NAME (conflict)", or "NAME (conflict N)" when taken
			table := "credentials"
			if d.Kind == agentkeys.SyncKindAgent {
				table = "agents"
			}
			var err error
			if d.Name, err = freeName(ctx, tx, table, v.wsID, d.Name); err != nil {
				return err
			}
			n, err := v.applyDoc(ctx, tx, sl, ver, &d)
			if err != nil {
				return fmt.Errorf("keep conflict copy %s: %w", &d, err)
			}
			notes = append(notes, n...)
			if err := markDirty(ctx, tx, d.Kind, d.ID, v.now().UnixMilli()); err != nil {
				return err
			}
			notes = append(notes, fmt.Sprintf("the losing version of %s %q is kept as %q", d.Kind, b.Copies[i].Name, d.Name))
		}
		for _, k := range b.Known {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sync_known (kind, id, version, stamp) VALUES (?, ?, ?, ?)
				ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, stamp = excluded.stamp`,
				k.Kind, k.ID, k.Version, k.Stamp); err != nil {
				return err
			}
		}
		for _, p := range b.Clean {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sync_dirty WHERE kind = ? AND id = ? AND gen = ?`, p.Doc.Kind, p.Doc.ID, p.Gen); err != nil {
				return err
			}
		}
		now := v.stamp().UnixMicro()
		for _, n := range notes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sync_conflicts (time, message) VALUES (?, ?)`, now, n); err != nil {
				return err
			}
		}
		if b.Cursor >= 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE sync_settings SET cursor = ? WHERE id = 1`, b.Cursor); err != nil {
				return err
			}
		}
		if !b.LastSync.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE sync_settings SET last_sync = ? WHERE id = 1`, b.LastSync.UTC().UnixMicro()); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sync_applying`)
		return err
	})
	if err != nil {
		return nil, storeErr("apply sync", err)
	}
	return notes[len(b.Conflicts):], nil
}

func markDirty(ctx context.Context, tx *sql.Tx, kind, id string, ms int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sync_dirty (kind, id, changed_ms, gen)
		VALUES (?, ?, ?, (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
		ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen`, kind, id, ms)
	return err
}

// applyDoc inserts or updates one object from a doc.
func (v *Vault) applyDoc(ctx context.Context, tx *sql.Tx, sl *agentkeys.Sealer, ver int, d *agentkeys.SyncDoc) ([]string, error) {
	var notes []string
	switch d.Kind {
	case agentkeys.SyncKindCredential, agentkeys.SyncKindAgent:
		table := "credentials"
		if d.Kind == agentkeys.SyncKindAgent {
			table = "agents"
		}
		// A different local object with the name gives way.
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM `+table+` WHERE workspace_id = ? AND name_key = ? AND id <> ?`,
			v.wsID, storesql.NameKey(d.Name), d.ID).Scan(&other)
		if err == nil {
			renamed, err := freeName(ctx, tx, table, v.wsID, d.Name)
			if err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET name = ?, name_key = ? WHERE id = ?`, renamed, storesql.NameKey(renamed), other); err != nil {
				return nil, err
			}
			if err := markDirty(ctx, tx, d.Kind, other, v.now().UnixMilli()); err != nil {
				return nil, err
			}
			notes = append(notes, fmt.Sprintf("%s %q was created on two devices: the one made here is now %q", d.Kind, d.Name, renamed))
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if d.Kind == agentkeys.SyncKindAgent {
			_, err = tx.ExecContext(ctx, `INSERT INTO agents (id, workspace_id, name, name_key, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key`,
				d.ID, v.wsID, d.Name, storesql.NameKey(d.Name), d.CreatedAt)
			return notes, err
		}
		// The rules every writer goes through (storesql): a record sealed
		// by another device of this vault is still checked like any input.
		if _, err := agentkeys.ParseCredentialType(d.Type); err != nil {
			return []string{fmt.Sprintf("credential %q from another device was not applied: %s", d.Name, agentkeys.ErrorMessage(err))}, nil
		}
		name := d.Name
		if _, err := storesql.CheckCredentialUpdate(&agentkeys.CredentialUpdate{Name: &name, AllowedHosts: d.AllowedHosts}); err != nil {
			return []string{fmt.Sprintf("credential %q from another device was not applied: %s", d.Name, agentkeys.ErrorMessage(err))}, nil
		}
		hosts, err := json.Marshal(d.AllowedHosts)
		if err != nil {
			return nil, err
		}
		sealed, err := sl.Seal(d.Secret, agentkeys.CredentialAAD(v.wsID, d.ID, ver))
		if err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO credentials
			(id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version, created_at, updated_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, type = excluded.type,
				allowed_hosts = excluded.allowed_hosts, sealed = excluded.sealed, key_version = excluded.key_version,
				updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
			d.ID, v.wsID, d.Name, storesql.NameKey(d.Name), d.Type, string(hosts), sealed, ver, d.CreatedAt, d.UpdatedAt, nullMicros(d.ExpiresAt))
		return notes, err
	case agentkeys.SyncKindGrant:
		agentID, credID, _ := strings.Cut(d.ID, "/")
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM agents WHERE id = ?) + (SELECT COUNT(*) FROM credentials WHERE id = ?)`,
			agentID, credID).Scan(&n); err != nil {
			return nil, err
		}
		if n != 2 {
			return []string{fmt.Sprintf("an assignment of credential %s to agent %s arrived after one of them was deleted here: not applied", credID, agentID)}, nil
		}
		// A token hash is unique: an older grant holding it gives way.
		if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE token_hash = ? AND NOT (agent_id = ? AND credential_id = ?)`, d.TokenHash, agentID, credID); err != nil {
			return nil, err
		}
		// A new token for the assignment replaces the old one, which is
		// remembered as a reassignment made here would.
		if err := v.keepRevoked(ctx, tx, `g.agent_id = $3 AND g.credential_id = $4 AND g.token_hash <> $5`, agentID, credID, d.TokenHash); err != nil {
			return nil, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO grants (agent_id, credential_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (agent_id, credential_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at,
				expires_at = excluded.expires_at`,
			agentID, credID, d.TokenHash, d.CreatedAt, nullMicros(d.ExpiresAt))
		return nil, err
	}
	return nil, fmt.Errorf("unknown sync kind %q", d.Kind)
}

// deleteDoc applies a deletion pulled from another device. The tokens of
// the grants it removes are remembered (keepRevoked), as for a deletion
// made here, so audit rows of requests still presenting them name whom
// they were issued to.
func (v *Vault) deleteDoc(ctx context.Context, tx *sql.Tx, d *agentkeys.SyncDoc) error {
	var err error
	switch d.Kind {
	case agentkeys.SyncKindCredential:
		if err = v.keepRevoked(ctx, tx, `g.credential_id = $3`, d.ID); err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM credentials WHERE workspace_id = ? AND id = ?`, v.wsID, d.ID)
		}
	case agentkeys.SyncKindAgent:
		if err = v.keepRevoked(ctx, tx, `g.agent_id = $3`, d.ID); err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM agents WHERE workspace_id = ? AND id = ?`, v.wsID, d.ID)
		}
	case agentkeys.SyncKindGrant:
		agentID, credID, _ := strings.Cut(d.ID, "/")
		if err = v.keepRevoked(ctx, tx, `g.agent_id = $3 AND g.credential_id = $4`, agentID, credID); err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM grants WHERE agent_id = ? AND credential_id = ?`, agentID, credID)
		}
	default:
		err = fmt.Errorf("unknown sync kind %q", d.Kind)
	}
	return err
}

// freeName is "NAME (conflict)", or "NAME (conflict N)" when that is taken.
func freeName(ctx context.Context, tx *sql.Tx, table, wsID, name string) (string, error) {
	for i := 1; ; i++ {
		cand := name + " (conflict)"
		if i > 1 {
			cand = name + " (conflict " + strconv.Itoa(i) + ")"
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE workspace_id = ? AND name_key = ?`, wsID, storesql.NameKey(cand)).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return cand, nil
		}
	}
}

// withReadTx runs fn in a transaction that is always rolled back: one
// consistent snapshot for several reads.
func withReadTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// nullMicros is a SyncDoc time (Unix microseconds, 0: none) as a column value.
func nullMicros(us int64) sql.NullInt64 { return sql.NullInt64{Int64: us, Valid: us != 0} }
