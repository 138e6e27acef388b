package sync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Limits bound what one workspace can store through sync. Zero fields take
// the defaults documented on each.
type Limits struct {
	MaxRecords  int64 // records per synced vault (default 100,000)
	MaxBytes    int64 // sealed bytes per synced vault (default 256 MiB)
	MaxBatch    int   // records per push (default 1,000)
	MaxDevices  int   // devices per synced vault, revoked ones included (default 100)
	MaxVaults   int   // synced vaults per workspace (default 10)
	PageRecords int   // records per pull page at most (default 1,000)
	PageBytes   int   // sealed bytes per pull page, roughly (default 512 KiB)
}

func (l *Limits) defaults() {
	set := func(p *int64, v int64) {
		if *p <= 0 {
			*p = v
		}
	}
	seti := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&l.MaxRecords, 100_000)
	set(&l.MaxBytes, 256<<20)
	seti(&l.MaxBatch, 1000)
	seti(&l.MaxDevices, 100)
	seti(&l.MaxVaults, 10)
	seti(&l.PageRecords, 1000)
	seti(&l.PageBytes, 512<<10)
}

// Store is the server's blob store: the sync tables of the server database
// (migration 0007 of server/store), over either SQLite or PostgreSQL (the
// SQL is shared; placeholders are $N). Sequence numbers are handed out
// under the vault row's lock inside each push's transaction, so replicas
// sharing a PostgreSQL database never hand out one twice.
type Store struct {
	db     *sql.DB
	limits Limits
	now    func() time.Time
}

// NewStore returns a Store over db with the given limits (zero: defaults)
// and clock (nil: time.Now).
func NewStore(db *sql.DB, limits Limits, now func() time.Time) *Store {
	limits.defaults()
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, limits: limits, now: now}
}

func (s *Store) stamp() int64 { return s.now().UTC().UnixMicro() }

func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("begin", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return dbErr("sync store", err)
	}
	return dbErr("commit", tx.Commit())
}

// dbErr passes *agentkeys.Error and context errors through and wraps the
// rest (reported as an internal error without the driver's text).
func dbErr(what string, err error) error {
	var ae *agentkeys.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Register adds a device to the vault, creating the vault's row first if
// needed. Returns ETOOLARGE when the vault has MaxDevices devices.
func (s *Store) Register(ctx context.Context, wsID, vaultID string, label []byte) (*RegisterResponse, error) {
	if len(label) > 1024 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the device label is over 1024 bytes")
	}
	if label == nil {
		label = []byte{}
	}
	res := &RegisterResponse{DeviceID: agentkeys.NewID("dev"), DeviceToken: DeviceTokenPrefix + agentkeys.NewProxyToken()[len(agentkeys.ProxyTokenPrefix):]}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var vaults, exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN vault_id = $2 THEN 1 END) FROM sync_vaults WHERE workspace_id = $1`,
			wsID, vaultID).Scan(&vaults, &exists); err != nil {
			return err
		}
		if exists == 0 && vaults >= s.limits.MaxVaults {
			return agentkeys.Errorf(agentkeys.ETOOLARGE, "this workspace holds %d synced vaults, the most it may: use another workspace, or rotate-key an old one away", vaults)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sync_vaults (workspace_id, vault_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (workspace_id, vault_id) DO NOTHING`, wsID, vaultID, now); err != nil {
			return err
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `UPDATE sync_vaults SET seq = seq WHERE workspace_id = $1 AND vault_id = $2 RETURNING seq`, wsID, vaultID).Scan(&seq); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_devices WHERE workspace_id = $1 AND vault_id = $2`, wsID, vaultID).Scan(&n); err != nil {
			return err
		}
		if n >= s.limits.MaxDevices {
			return agentkeys.Errorf(agentkeys.ETOOLARGE, "this synced vault has %d devices, the most it may have: remove the vault with `agentkeys sync rotate-key` or use another workspace", n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_devices (id, workspace_id, vault_id, token_hash, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			res.DeviceID, wsID, vaultID, agentkeys.HashToken(res.DeviceToken), label, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Authenticate returns the id of the device holding token in the vault.
// Returns EUNAUTHORIZED for an unknown token and EFORBIDDEN for a revoked
// device.
func (s *Store) Authenticate(ctx context.Context, wsID, vaultID, token string) (string, error) {
	var id string
	var revoked, seen sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, revoked_at, last_seen_at FROM sync_devices WHERE token_hash = $1 AND workspace_id = $2 AND vault_id = $3`,
		agentkeys.HashToken(token), wsID, vaultID).Scan(&id, &revoked, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "this device is not one of the synced vault's devices (removed, or the vault key was rotated): run `agentkeys sync disable`, then `agentkeys sync join` with the current recovery phrase")
	}
	if err != nil {
		return "", dbErr("authenticate device", err)
	}
	if revoked.Valid {
		return "", agentkeys.Errorf(agentkeys.EFORBIDDEN, "this device was revoked from the synced vault: run `agentkeys sync disable`, then `agentkeys sync join` if it should sync again")
	}
	// last_seen_at is kept to the minute, so a pull is not a write.
	now := s.stamp()
	if !seen.Valid || now-seen.Int64 > int64(time.Minute/time.Microsecond) {
		if _, err := s.db.ExecContext(ctx, `UPDATE sync_devices SET last_seen_at = $1 WHERE id = $2`, now, id); err != nil {
			return "", dbErr("authenticate device", err)
		}
	}
	return id, nil
}

// Devices lists the vault's devices, oldest first.
func (s *Store) Devices(ctx context.Context, wsID, vaultID string) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, label, created_at, last_seen_at, revoked_at FROM sync_devices
		WHERE workspace_id = $1 AND vault_id = $2 ORDER BY created_at, id`, wsID, vaultID)
	if err != nil {
		return nil, dbErr("list devices", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var created int64
		var seen, revoked sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Label, &created, &seen, &revoked); err != nil {
			return nil, dbErr("list devices", err)
		}
		d.CreatedAt = time.UnixMicro(created).UTC()
		d.LastSeenAt, d.RevokedAt = optTime(seen), optTime(revoked)
		out = append(out, d)
	}
	return out, dbErr("list devices", rows.Err())
}

func optTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.UnixMicro(n.Int64).UTC()
	return &t
}

// Revoke revokes a device of the vault: its next call is refused.
// Returns ENOTFOUND for an unknown device id.
func (s *Store) Revoke(ctx context.Context, wsID, vaultID, deviceID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sync_devices SET revoked_at = COALESCE(revoked_at, $1) WHERE workspace_id = $2 AND vault_id = $3 AND id = $4`,
		s.stamp(), wsID, vaultID, deviceID)
	if err != nil {
		return dbErr("revoke device", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return agentkeys.Errorf(agentkeys.ENOTFOUND, "no device %q in this synced vault: see `agentkeys sync devices`", deviceID)
	}
	return nil
}

// DeleteVault removes a synced vault: its records and devices.
func (s *Store) DeleteVault(ctx context.Context, wsID, vaultID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM sync_records WHERE workspace_id = $1 AND vault_id = $2`,
			`DELETE FROM sync_devices WHERE workspace_id = $1 AND vault_id = $2`,
			`DELETE FROM sync_vaults WHERE workspace_id = $1 AND vault_id = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, wsID, vaultID); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pull returns the records changed after since, in sequence order: at
// most limit records (capped by PageRecords) and about PageBytes of blobs.
func (s *Store) Pull(ctx context.Context, wsID, vaultID string, since int64, limit int) (*PullResponse, error) {
	if limit <= 0 || limit > s.limits.PageRecords {
		limit = s.limits.PageRecords
	}
	rows, err := s.db.QueryContext(ctx, `SELECT record_id, version, seq, blob, device_id FROM sync_records
		WHERE workspace_id = $1 AND vault_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`, wsID, vaultID, since, limit+1)
	if err != nil {
		return nil, dbErr("pull", err)
	}
	defer rows.Close()
	out := &PullResponse{Records: []Record{}, Next: since}
	size := 0
	for rows.Next() {
		if len(out.Records) == limit || size >= s.limits.PageBytes {
			out.More = true
			break
		}
		var r Record
		if err := rows.Scan(&r.ID, &r.Version, &r.Seq, &r.Blob, &r.Device); err != nil {
			return nil, dbErr("pull", err)
		}
		size += len(r.Blob)
		out.Records = append(out.Records, r)
		out.Next = r.Seq
	}
	return out, dbErr("pull", rows.Err())
}

// Push stores a batch all or nothing (see PushResponse). Returns EINVALID
// for a malformed batch and ETOOLARGE, naming the limit, for a blob, batch
// or vault over its limit; nothing is stored then.
func (s *Store) Push(ctx context.Context, wsID, vaultID, deviceID string, req *PushRequest) (*PushResponse, error) {
	if len(req.Records) == 0 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "the push has no records")
	}
	if len(req.Records) > s.limits.MaxBatch {
		return nil, agentkeys.Errorf(agentkeys.ETOOLARGE, "the push has %d records, over the limit of %d per request: send smaller batches", len(req.Records), s.limits.MaxBatch)
	}
	seen := map[string]bool{}
	for i, r := range req.Records {
		switch {
		case r.ID == "" || len(r.ID) > 64:
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "record %d of the push has no id or one over 64 characters", i+1)
		case seen[r.ID]:
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "record %s appears twice in the push", r.ID)
		case r.Expected < 0:
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "record %s: expected version is negative", r.ID)
		case len(r.Blob) == 0:
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "record %s has an empty blob", r.ID)
		case len(r.Blob) > MaxBlobBytes:
			return nil, agentkeys.Errorf(agentkeys.ETOOLARGE, "record %s is %d bytes, over the limit of %d per record", r.ID, len(r.Blob), MaxBlobBytes)
		}
		seen[r.ID] = true
	}
	out := &PushResponse{}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Lock the vault row first: pushes to one vault run one at a time.
		var records, bytes int64
		err := tx.QueryRowContext(ctx, `UPDATE sync_vaults SET seq = seq WHERE workspace_id = $1 AND vault_id = $2 RETURNING seq, records, bytes`,
			wsID, vaultID).Scan(&out.Before, &records, &bytes)
		if errors.Is(err, sql.ErrNoRows) {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "no such synced vault on this server: run `agentkeys sync enable` or `join`")
		}
		if err != nil {
			return err
		}
		type cur struct {
			version int64
			size    int64
		}
		have := make(map[string]cur, len(req.Records))
		for _, r := range req.Records {
			var c cur
			err := tx.QueryRowContext(ctx, `SELECT version, LENGTH(blob) FROM sync_records WHERE workspace_id = $1 AND vault_id = $2 AND record_id = $3`,
				wsID, vaultID, r.ID).Scan(&c.version, &c.size)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			have[r.ID] = c
			if c.version != r.Expected {
				st := Record{ID: r.ID, Version: c.version}
				if c.version > 0 {
					if err := tx.QueryRowContext(ctx, `SELECT seq, blob, device_id FROM sync_records WHERE workspace_id = $1 AND vault_id = $2 AND record_id = $3`,
						wsID, vaultID, r.ID).Scan(&st.Seq, &st.Blob, &st.Device); err != nil {
						return err
					}
				}
				out.Stale = append(out.Stale, st)
			}
		}
		if len(out.Stale) > 0 {
			out.Head = out.Before
			return nil
		}
		for _, r := range req.Records {
			c := have[r.ID]
			if c.version == 0 {
				records++
			}
			bytes += int64(len(r.Blob)) - c.size
		}
		if records > s.limits.MaxRecords {
			return agentkeys.Errorf(agentkeys.ETOOLARGE, "the synced vault would hold %d records, over its limit of %d: delete credentials or agents you no longer need", records, s.limits.MaxRecords)
		}
		if bytes > s.limits.MaxBytes {
			return agentkeys.Errorf(agentkeys.ETOOLARGE, "the synced vault would hold %d bytes, over its limit of %d: delete credentials you no longer need", bytes, s.limits.MaxBytes)
		}
		seq := out.Before
		for _, r := range req.Records {
			seq++
			_, err := tx.ExecContext(ctx, `INSERT INTO sync_records (workspace_id, vault_id, record_id, version, seq, blob, device_id, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (workspace_id, vault_id, record_id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
					blob = excluded.blob, device_id = excluded.device_id, updated_at = excluded.updated_at`,
				wsID, vaultID, r.ID, r.Expected+1, seq, r.Blob, deviceID, now)
			if err != nil {
				return err
			}
			out.Accepted = append(out.Accepted, Record{ID: r.ID, Version: r.Expected + 1, Seq: seq})
		}
		out.Head = seq
		_, err = tx.ExecContext(ctx, `UPDATE sync_vaults SET seq = $1, records = $2, bytes = $3 WHERE workspace_id = $4 AND vault_id = $5`,
			seq, records, bytes, wsID, vaultID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
