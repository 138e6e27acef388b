package localvault

import (
	"context"
	"sync"

	"github.com/agentkeys/agentkeys"
)

// keyRing holds the root key and the workspace's unwrapped data keys, by
// version, each with its Sealer (the cipher set up once, not per request).
// The newest version seals new values; older ones still open the values
// sealed under them (rotation re-wraps, it never rewrites).
type keyRing struct {
	mu      sync.RWMutex
	root    agentkeys.Key
	wsID    string
	keys    map[int]agentkeys.Key
	sealers map[int]*agentkeys.Sealer
	current int
}

// load (re)reads and unwraps every data key. An unwrap failure is
// agentkeys.ErrDecrypt: the root key is wrong.
func (r *keyRing) load(ctx context.Context, q querier) error {
	rows, err := q.QueryContext(ctx, `SELECT version, wrapped FROM data_keys WHERE workspace_id = ? ORDER BY version`, r.wsID)
	if err != nil {
		return storeErr("read data keys", err)
	}
	defer rows.Close()
	keys := map[int]agentkeys.Key{}
	sealers := map[int]*agentkeys.Sealer{}
	current := 0
	for rows.Next() {
		var ver int
		var wrapped []byte
		if err := rows.Scan(&ver, &wrapped); err != nil {
			return storeErr("read data keys", err)
		}
		k, err := agentkeys.UnwrapKey(r.root, wrapped, agentkeys.DataKeyAAD(r.wsID, ver))
		if err != nil {
			return err
		}
		if sealers[ver], err = agentkeys.NewSealer(k); err != nil {
			return err
		}
		keys[ver] = k
		current = max(current, ver)
	}
	if err := rows.Err(); err != nil {
		return storeErr("read data keys", err)
	}
	if current == 0 {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the vault has no data key: it is damaged")
	}
	r.mu.Lock()
	r.keys, r.sealers, r.current = keys, sealers, current
	r.mu.Unlock()
	return nil
}

// sealing returns the current data key and its version.
func (r *keyRing) sealing() (agentkeys.Key, int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[r.current], r.current
}

// opener returns the Sealer of a data key version, reloading once if this
// process has not seen it yet (another process rotated the key).
func (r *keyRing) opener(ctx context.Context, q querier, version int) (*agentkeys.Sealer, error) {
	r.mu.RLock()
	s, ok := r.sealers[version]
	r.mu.RUnlock()
	if ok {
		return s, nil
	}
	if err := r.load(ctx, q); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s, ok := r.sealers[version]; ok {
		return s, nil
	}
	return nil, agentkeys.ErrDecrypt
}

func (r *keyRing) wipe() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.root[:])
	for v := range r.keys {
		r.keys[v] = agentkeys.Key{} // overwrite the map's copy before dropping it
	}
	r.keys = nil
	r.sealers = nil // their key schedules cannot be wiped; they go with the GC
}
