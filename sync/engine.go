package sync

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Local is what sync needs of a device's vault; *localvault.Vault
// implements it.
type Local interface {
	SyncSettings(ctx context.Context) (*agentkeys.SyncSettings, error)
	EnableSync(ctx context.Context, s *agentkeys.SyncSettings) error
	SyncPending(ctx context.Context) ([]agentkeys.SyncPending, error)
	SyncKnown(ctx context.Context) ([]agentkeys.SyncKnown, error)
	ApplySync(ctx context.Context, b *agentkeys.SyncBatch) ([]string, error)
}

// Options are what Enable, Join and Run share.
type Options struct {
	Server string // enable, join
	APIKey string // enable, join
	Label  string // enable, join: this device's name (default: the host name)
	// HTTPClient nil: NewClient's default.
	HTTPClient *http.Client
	Now        func() time.Time
}

// Result is what one sync did.
type Result struct {
	Pulled    int      // records received
	Applied   int      // remote changes written to this vault
	Pushed    int      // local changes the server accepted
	Conflicts []string // conflicts resolved (recorded for `sync status`), and records too big to sync
	Refused   []string // records refused as tampered (also recorded)
	Requests  int64    // HTTP requests made
}

// Enable starts syncing this vault as the first device of a new synced
// vault: a fresh 256-bit vault key, this device registered on the server,
// the settings stored (every object marked to push), and the recovery
// phrase returned — the only copy; it is never stored. The first Run
// pushes the vault.
func Enable(ctx context.Context, local Local, opts Options) (phrase string, err error) {
	key, err := agentkeys.NewKey()
	if err != nil {
		return "", err
	}
	if err := register(ctx, local, opts, key); err != nil {
		return "", err
	}
	return EncodePhrase(key)
}

// Join adds this device to the synced vault the recovery phrase names; the
// first Run pulls it (and pushes whatever this vault held already).
// Returns EINVALID for a bad phrase (naming the word's position), before
// anything is sent.
func Join(ctx context.Context, local Local, opts Options, phrase string) error {
	key, err := DecodePhrase(phrase)
	if err != nil {
		return err
	}
	return register(ctx, local, opts, key)
}

func register(ctx context.Context, local Local, opts Options, key agentkeys.Key) error {
	if _, err := local.SyncSettings(ctx); err == nil {
		return agentkeys.Errorf(agentkeys.ECONFLICT, "sync is already enabled on this device: run `agentkeys sync disable` first")
	} else if agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		return err
	}
	if opts.APIKey == "" {
		return agentkeys.Errorf(agentkeys.EINVALID, "sync needs an API key of a workspace on the server: give --api-key KEY (or --api-key - to read it from stdin)")
	}
	keys, err := DeriveKeys(key)
	if err != nil {
		return err
	}
	cl, err := NewClient(opts.Server, opts.APIKey, keys.VaultID, "", opts.HTTPClient)
	if err != nil {
		return err
	}
	label := opts.Label
	if label == "" {
		label, _ = os.Hostname()
	}
	sealed, err := keys.sealLabel(label)
	if err != nil {
		return err
	}
	dev, err := cl.Register(ctx, sealed)
	if err != nil {
		return err
	}
	return local.EnableSync(ctx, &agentkeys.SyncSettings{
		Server: cl.base, APIKey: opts.APIKey, VaultID: keys.VaultID,
		DeviceID: dev.DeviceID, DeviceToken: dev.DeviceToken, VaultKey: key,
	})
}

// client returns the settings, keys and client of an enabled device.
func client(ctx context.Context, local Local, opts Options) (*agentkeys.SyncSettings, *Keys, *Client, error) {
	set, err := local.SyncSettings(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := DeriveKeys(set.VaultKey)
	if err != nil {
		return nil, nil, nil, err
	}
	if keys.VaultID != set.VaultID {
		return nil, nil, nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the sync settings of this vault are damaged: run `agentkeys sync disable` and join again")
	}
	cl, err := NewClient(set.Server, set.APIKey, set.VaultID, set.DeviceToken, opts.HTTPClient)
	if err != nil {
		return nil, nil, nil, err
	}
	return set, keys, cl, nil
}

// DeviceInfo is a device of the synced vault with its label opened.
type DeviceInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Current    bool       `json:"current"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastSeenAt *time.Time `json:"lastSeenAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

// Devices lists the synced vault's devices.
func Devices(ctx context.Context, local Local, opts Options) ([]DeviceInfo, error) {
	set, keys, cl, err := client(ctx, local, opts)
	if err != nil {
		return nil, err
	}
	ds, err := cl.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeviceInfo{ID: d.ID, Name: keys.openLabel(d.Label), Current: d.ID == set.DeviceID,
			CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt, RevokedAt: d.RevokedAt})
	}
	return out, nil
}

// Revoke revokes a device of the synced vault: its next sync call is
// refused. Returns EINVALID for this device itself (use `sync disable`).
func Revoke(ctx context.Context, local Local, opts Options, deviceID string) error {
	set, _, cl, err := client(ctx, local, opts)
	if err != nil {
		return err
	}
	if deviceID == set.DeviceID {
		return agentkeys.Errorf(agentkeys.EINVALID, "%s is this device: to stop syncing here run `agentkeys sync disable`", deviceID)
	}
	return cl.Revoke(ctx, deviceID)
}

// Disable removes this device from the synced vault on the server (it is
// revoked there); a server that cannot be reached does not stop it. The
// caller then turns sync off locally.
func Disable(ctx context.Context, local Local, opts Options) error {
	set, _, cl, err := client(ctx, local, opts)
	if err != nil {
		return err
	}
	return cl.Revoke(ctx, set.DeviceID)
}

// maxPushBody keeps a push request under the server's 1 MiB body limit
// (blobs travel as base64).
const maxPushBody = 640 << 10

// maxPushRecords is the records per push request.
const maxPushRecords = 500

// Run syncs once: pull every change since the cursor, merge it with the
// local changes (last writer wins by clock stamp; the losing credential
// kept as "NAME (conflict)"; a delete racing an edit keeps the edit), write
// the result in one local transaction, then push the local changes with
// the versions they were made on (compare-and-swap). A stale push pulls
// and merges again, a few rounds at most. With nothing to pull and nothing
// pending, a sync is one request.
func Run(ctx context.Context, local Local, opts Options) (*Result, error) {
	set, keys, cl, err := client(ctx, local, opts)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	res := &Result{}
	defer func() { res.Requests = cl.Requests() }()
	cursor := set.Cursor
	for round := 0; round < 8; round++ {
		var pulled []Record
		upto := cursor
		for {
			page, err := cl.Pull(ctx, upto, 0)
			if err != nil {
				return res, err
			}
			pulled = append(pulled, page.Records...)
			upto = page.Next
			if !page.More {
				break
			}
		}
		pending, err := local.SyncPending(ctx)
		if err != nil {
			return res, err
		}
		if len(pulled) == 0 && len(pending) == 0 {
			_, err := local.ApplySync(ctx, &agentkeys.SyncBatch{Cursor: -1, LastSync: now()})
			return res, err
		}
		knownList, err := local.SyncKnown(ctx)
		if err != nil {
			return res, err
		}
		m := newMerge(keys, set.DeviceID, knownList, pending)
		batch := m.merge(pulled)
		batch.Cursor = upto
		res.Pulled += len(pulled)
		res.Applied += len(batch.Apply)
		res.Refused = append(res.Refused, m.refused...)
		notes, err := local.ApplySync(ctx, batch)
		if err != nil {
			return res, err
		}
		res.Conflicts = append(res.Conflicts, batch.Conflicts...)
		res.Conflicts = append(res.Conflicts, notes...)
		cursor = upto

		// Push what is still pending, as it is now (the merge may have
		// changed it), on the versions now known.
		if pending, err = local.SyncPending(ctx); err != nil {
			return res, err
		}
		if knownList, err = local.SyncKnown(ctx); err != nil {
			return res, err
		}
		m = newMerge(keys, set.DeviceID, knownList, pending)
		stale := false
		for start := 0; start < len(pending); {
			req := &PushRequest{}
			var sent []agentkeys.SyncPending
			var known []agentkeys.SyncKnown
			size := 0
			for ; start < len(pending) && len(req.Records) < maxPushRecords && size < maxPushBody; start++ {
				p := pending[start]
				k, isKnown := m.known[key(p.Doc.Kind, p.Doc.ID)]
				if p.Doc.Deleted && !isKnown {
					sent = append(sent, p) // made and deleted here between syncs: nothing to tell
					continue
				}
				st := next(m.stamp(k), p.Changed, set.DeviceID)
				id, blob, err := keys.Seal(&p.Doc, st, k.Version+1)
				if agentkeys.ErrorCode(err) == agentkeys.ETOOLARGE {
					// Too big to sync: it stays here, pending, and is
					// reported each time; the rest goes on.
					res.Conflicts = append(res.Conflicts, "not synced: "+agentkeys.ErrorMessage(err))
					continue
				}
				if err != nil {
					return res, err
				}
				req.Records = append(req.Records, PushRecord{ID: id, Expected: k.Version, Blob: blob})
				sent = append(sent, p)
				known = append(known, agentkeys.SyncKnown{Kind: p.Doc.Kind, ID: p.Doc.ID, Version: k.Version + 1, Stamp: st.String()})
				size += len(blob)*4/3 + 128
			}
			if len(req.Records) == 0 {
				if _, err := local.ApplySync(ctx, &agentkeys.SyncBatch{Clean: sent, Cursor: -1}); err != nil {
					return res, err
				}
				continue
			}
			pr, err := cl.Push(ctx, req)
			if err != nil {
				return res, err
			}
			if len(pr.Stale) > 0 {
				stale = true
				break
			}
			b := &agentkeys.SyncBatch{Known: known, Clean: sent, Cursor: -1}
			if pr.Before == cursor {
				cursor = pr.Head
				b.Cursor = cursor
			}
			if _, err := local.ApplySync(ctx, b); err != nil {
				return res, err
			}
			res.Pushed += len(req.Records)
		}
		if !stale {
			_, err := local.ApplySync(ctx, &agentkeys.SyncBatch{Cursor: -1, LastSync: now()})
			return res, err
		}
	}
	return res, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "other devices kept changing the synced vault while this one pushed: run `agentkeys sync` again")
}

func key(kind, id string) string { return kind + "\x00" + id }

// merge resolves one round's pulled records against the local changes.
type merge struct {
	keys    *Keys
	device  string
	known   map[string]agentkeys.SyncKnown // by key(kind, id)
	byRec   map[string]string              // record id -> key(kind, id), for what this device knows
	pending map[string]*agentkeys.SyncPending
	refused []string
}

func newMerge(keys *Keys, device string, known []agentkeys.SyncKnown, pending []agentkeys.SyncPending) *merge {
	m := &merge{keys: keys, device: device, known: map[string]agentkeys.SyncKnown{}, byRec: map[string]string{}, pending: map[string]*agentkeys.SyncPending{}}
	for _, k := range known {
		m.known[key(k.Kind, k.ID)] = k
	}
	for i := range pending {
		p := &pending[i]
		m.pending[key(p.Doc.Kind, p.Doc.ID)] = p
	}
	return m
}

func (m *merge) stamp(k agentkeys.SyncKnown) Stamp {
	st, err := ParseStamp(k.Stamp)
	if err != nil {
		return Stamp{}
	}
	return st
}

// what names a record by the object this device knows it as.
func (m *merge) what(recordID string) string {
	if len(m.byRec) == 0 {
		for _, k := range m.known {
			m.byRec[m.keys.RecordID(k.Kind, k.ID)] = k.Kind + " " + k.ID
		}
	}
	return m.byRec[recordID]
}

func (m *merge) merge(pulled []Record) *agentkeys.SyncBatch {
	b := &agentkeys.SyncBatch{}
	for _, r := range pulled {
		doc, st, err := m.keys.Open(r.ID, r.Version, r.Blob)
		if err != nil {
			te := err.(*TamperError)
			te.What = m.what(r.ID)
			m.refused = append(m.refused, te.Error())
			b.Conflicts = append(b.Conflicts, te.Error())
			continue
		}
		if why := malformed(doc); why != "" {
			te := &TamperError{RecordID: r.ID, Version: r.Version, What: m.what(r.ID), Reason: "its content cannot be applied: " + why}
			m.refused = append(m.refused, te.Error())
			b.Conflicts = append(b.Conflicts, te.Error())
			continue
		}
		k, isKnown := m.known[key(doc.Kind, doc.ID)]
		if isKnown && r.Version < k.Version {
			te := &TamperError{RecordID: r.ID, Version: r.Version, What: doc.String(),
				Reason: fmt.Sprintf("this device already has version %d (an old version replayed)", k.Version)}
			m.refused = append(m.refused, te.Error())
			b.Conflicts = append(b.Conflicts, te.Error())
			continue
		}
		if isKnown && r.Version == k.Version {
			continue // this device's own change, or one it already applied
		}
		nk := agentkeys.SyncKnown{Kind: doc.Kind, ID: doc.ID, Version: r.Version, Stamp: st.String()}
		p := m.pending[key(doc.Kind, doc.ID)]
		if p == nil {
			b.Apply = append(b.Apply, *doc)
			b.Known = append(b.Known, nk)
			continue
		}
		mine := next(m.stamp(k), p.Changed, m.device)
		local := &p.Doc
		switch {
		case st == mine: // this device's push whose answer was lost
			b.Known = append(b.Known, nk)
			b.Clean = append(b.Clean, *p)
		case st.Device == m.device:
			// An earlier push of this device whose answer was lost, made
			// before the local change still pending: no conflict, the
			// pending change goes on top of it.
			b.Known = append(b.Known, nk)
			if doc.Deleted == local.Deleted && (doc.Deleted || sameContent(doc, local)) {
				b.Clean = append(b.Clean, *p)
			}
		case doc.Deleted && local.Deleted:
			b.Known = append(b.Known, nk)
			b.Clean = append(b.Clean, *p)
		case doc.Deleted:
			// Deleted there, edited here: the edit stays and is pushed
			// over the tombstone.
			b.Known = append(b.Known, nk)
			b.Conflicts = append(b.Conflicts, fmt.Sprintf("%s %s was deleted on another device and changed here: kept the change", describe(local), local.ID))
		case local.Deleted:
			b.Apply = append(b.Apply, *doc)
			b.Known = append(b.Known, nk)
			b.Clean = append(b.Clean, *p)
			b.Conflicts = append(b.Conflicts, fmt.Sprintf("%s %s was deleted here and changed on another device: kept the change", describe(doc), doc.ID))
		case sameContent(doc, local):
			b.Known = append(b.Known, nk)
			b.Clean = append(b.Clean, *p)
		case st.After(mine):
			b.Apply = append(b.Apply, *doc)
			b.Known = append(b.Known, nk)
			b.Clean = append(b.Clean, *p)
			if local.Kind == agentkeys.SyncKindCredential {
				b.Copies = append(b.Copies, conflictCopy(local))
			}
			b.Conflicts = append(b.Conflicts, fmt.Sprintf("%s was changed here and on another device: the other device's change is later and wins", describe(doc)))
		default:
			// This device's change is later: it stays pending, now on the
			// server's version.
			b.Known = append(b.Known, nk)
			if doc.Kind == agentkeys.SyncKindCredential {
				b.Copies = append(b.Copies, conflictCopy(doc))
			}
			b.Conflicts = append(b.Conflicts, fmt.Sprintf("%s was changed here and on another device: this device's change is later and wins", describe(local)))
		}
	}
	return b
}

func describe(d *agentkeys.SyncDoc) string {
	if d.Name != "" {
		return fmt.Sprintf("%s %q", d.Kind, d.Name)
	}
	return d.Kind + " " + d.ID
}

// conflictCopy is the losing version of a credential as a new credential
// (localvault names it "NAME (conflict)").
func conflictCopy(d *agentkeys.SyncDoc) agentkeys.SyncDoc {
	c := *d
	c.ID = agentkeys.NewID("cred")
	c.Deleted = false
	return c
}

func sameContent(a, b *agentkeys.SyncDoc) bool {
	return a.Kind == b.Kind && a.Name == b.Name && a.Type == b.Type && slices.Equal(a.AllowedHosts, b.AllowedHosts) &&
		bytes.Equal(a.Secret, b.Secret) && a.TokenHash == b.TokenHash
}

// Rotator is a Local that can also turn sync off (for RotateKey).
type Rotator interface {
	Local
	DisableSync(ctx context.Context) error
}

// RotateKey moves this device to a new vault key: a new synced vault on
// the same server, this device registered in it, every object pushed there
// sealed under the new key, and only then the old synced vault (its records
// and devices) deleted from the server. Returns the new recovery phrase.
// Other devices are cut off and must join again with the new phrase. Run
// first, so no other device's pending change is lost; a failure before the
// old vault is deleted leaves this device on the new vault and the old one
// in place (run RotateKey again or sync).
func RotateKey(ctx context.Context, local Rotator, opts Options) (phrase string, res *Result, err error) {
	old, _, oldClient, err := client(ctx, local, opts)
	if err != nil {
		return "", nil, err
	}
	if _, err := Run(ctx, local, opts); err != nil {
		return "", nil, fmt.Errorf("sync before rotating the key: %w", err)
	}
	key, err := agentkeys.NewKey()
	if err != nil {
		return "", nil, err
	}
	if phrase, err = EncodePhrase(key); err != nil {
		return "", nil, err
	}
	keys, err := DeriveKeys(key)
	if err != nil {
		return "", nil, err
	}
	cl, err := NewClient(old.Server, old.APIKey, keys.VaultID, "", opts.HTTPClient)
	if err != nil {
		return "", nil, err
	}
	label := opts.Label
	if label == "" {
		label, _ = os.Hostname()
	}
	sealed, err := keys.sealLabel(label)
	if err != nil {
		return "", nil, err
	}
	dev, err := cl.Register(ctx, sealed)
	if err != nil {
		return "", nil, err
	}
	if err := local.DisableSync(ctx); err != nil {
		return "", nil, err
	}
	if err := local.EnableSync(ctx, &agentkeys.SyncSettings{Server: old.Server, APIKey: old.APIKey, VaultID: keys.VaultID,
		DeviceID: dev.DeviceID, DeviceToken: dev.DeviceToken, VaultKey: key}); err != nil {
		return "", nil, err
	}
	if res, err = Run(ctx, local, opts); err != nil {
		return phrase, res, fmt.Errorf("push under the new key (run `agentkeys sync` to retry; the new phrase below is in force): %w", err)
	}
	if err := oldClient.DeleteVault(ctx); err != nil {
		return phrase, res, fmt.Errorf("the old synced vault could not be deleted from the server (%w); its data stays sealed under the old key", err)
	}
	return phrase, res, nil
}
