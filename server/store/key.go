package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/agentkeys/agentkeys"
)

// ParseServerKey decodes AGENTKEYS_SERVER_KEY (or the contents of
// --server-key-file): standard or URL-safe base64, padded or not, of exactly
// 32 bytes, surrounding whitespace ignored. Returns EINVALID otherwise; the
// message never quotes the input.
func ParseServerKey(s string) (agentkeys.Key, error) {
	return agentkeys.ParseKey("the server key", s)
}

// derive returns HMAC-SHA256(root, label): a subkey for one purpose.
func derive(root agentkeys.Key, label string) []byte {
	m := hmac.New(sha256.New, root[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}

// hashToken is how workspace keys and proxy tokens are stored and looked up:
// hex HMAC-SHA256 under the pepper derived from the server key.
func (s *Store) hashToken(token string) string {
	m, _ := s.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.pepper)
	}
	m.Write([]byte(token))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(m.Sum(sum[:0]))
	m.Reset()
	s.macs.Put(m)
	return out
}

// keyCheckLabel is what the stored key check value is an HMAC of.
const keyCheckLabel = "agentkeys server key check v1"

// checkKey compares the server key with the check value stored in meta on
// first start. With create false it only reads (and passes when the
// database has no schema yet); with create true it stores the value when
// absent. A mismatch is EUNAVAILABLE and nothing is written.
func (s *Store) checkKey(ctx context.Context, create bool) error {
	want := hex.EncodeToString(derive(s.root, keyCheckLabel))
	var got string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&got)
	switch {
	case err == nil:
	case errors.Is(err, sql.ErrNoRows) && create:
		if _, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING`, want); err != nil {
			return s.storeErr("store key check", err)
		}
		return s.checkKey(ctx, false)
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case !create:
		return nil // no meta table yet: a new database
	default:
		return s.storeErr("read key check", err)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE,
			"the server key does not match the one this database (%s) was created with: start with the original AGENTKEYS_SERVER_KEY or --server-key-file", s.location)
	}
	return nil
}

type dataKeyID struct {
	workspace string
	version   int
}

// dataKey returns a workspace's data key of the given version, unwrapped
// once and then kept in memory (a version never changes).
func (s *Store) dataKey(ctx context.Context, q querier, wsID string, version int) (agentkeys.Key, error) {
	id := dataKeyID{wsID, version}
	s.keysMu.RLock()
	k, ok := s.keys[id]
	s.keysMu.RUnlock()
	if ok {
		return k, nil
	}
	var wrapped []byte
	err := q.QueryRowContext(ctx, `SELECT wrapped FROM data_keys WHERE workspace_id = $1 AND version = $2`, wsID, version).Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return agentkeys.Key{}, fmt.Errorf("workspace %s has no data key version %d", wsID, version)
	}
	if err != nil {
		return agentkeys.Key{}, s.storeErr("read data key", err)
	}
	k, err = agentkeys.UnwrapKey(s.root, wrapped, agentkeys.DataKeyAAD(wsID, version))
	if err != nil {
		s.log.ErrorContext(ctx, "a workspace data key does not unwrap", "workspace", wsID, "version", version)
		return agentkeys.Key{}, fmt.Errorf("workspace %s data key %d: %w", wsID, version, err)
	}
	s.keysMu.Lock()
	s.keys[id] = k
	s.keysMu.Unlock()
	return k, nil
}

// sealer returns the Sealer of a workspace's data key version, set up once
// per version and kept (data keys are immutable per version).
func (s *Store) sealer(ctx context.Context, q querier, wsID string, version int) (*agentkeys.Sealer, error) {
	id := dataKeyID{wsID, version}
	s.keysMu.RLock()
	sl := s.sealers[id]
	s.keysMu.RUnlock()
	if sl != nil {
		return sl, nil
	}
	k, err := s.dataKey(ctx, q, wsID, version)
	if err != nil {
		return nil, err
	}
	if sl, err = agentkeys.NewSealer(k); err != nil {
		return nil, err
	}
	s.keysMu.Lock()
	s.sealers[id] = sl
	s.keysMu.Unlock()
	return sl, nil
}

// sealingKey returns the newest data key of a workspace and its version.
func (s *Store) sealingKey(ctx context.Context, q querier, wsID string) (agentkeys.Key, int, error) {
	var ver int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM data_keys WHERE workspace_id = $1`, wsID).Scan(&ver)
	if err != nil {
		return agentkeys.Key{}, 0, s.storeErr("read data key", err)
	}
	if ver == 0 {
		return agentkeys.Key{}, 0, fmt.Errorf("workspace %s has no data key", wsID)
	}
	k, err := s.dataKey(ctx, q, wsID, ver)
	return k, ver, err
}
