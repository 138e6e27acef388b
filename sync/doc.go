// Package sync keeps a local vault in step across devices through
// `agentkeys serve`, end to end encrypted: the server stores only
// ciphertext it cannot read.
//
// # Keys
//
// A synced vault has one vault key: 256 random bits made by Enable. Its
// recovery phrase (EncodePhrase) is the key as 24 words of the BIP-39
// English list with its checksum; DecodePhrase reports a typo with the
// word's position. The phrase is printed once and never stored; each device
// keeps the vault key in its own vault sealed under its own root key
// (keychain, passphrase or AGENTKEYS_MASTER_KEY, as for everything else), in
// the sync_settings row of localvault's migration 0007.
//
// HKDF-SHA256 derives from the vault key (DeriveKeys): the vault id the
// server files records under ("sv_" + 32 hex), the record-sealing key
// (AES-256-GCM), and an HMAC key that turns each object's kind and id into
// an opaque record id. The vault id comes from the key, so the phrase alone
// is enough to join; rotate-key therefore means a new vault id.
//
// The sync key is not the local data key, and devices do not share a
// workspace id. Each device keeps its own workspace id and data key; a
// credential's secret travels inside its record in the clear (as the JSON
// the vault seals) and the receiving device seals it again under its own
// data key, bound to its own workspace id and the credential id. Credential,
// agent and grant ids are the same on every device, and grants carry the
// token's SHA-256 (agentkeys.HashToken, which no device key enters), so a
// pxr_ token made on one device opens the same grant on every other.
//
// # Records
//
// Each credential (with its secret), agent, grant (token hash only) and
// tombstone is one record: envelope{hlc stamp, device, agentkeys.SyncDoc}
// as JSON, sealed with AES-256-GCM under the record key with
//
//	AAD = "agentkeys/sync/record/v1" | vault id | record id | key version | record version
//
// so a blob moved to another record or vault, replayed under another
// version, truncated or flipped does not open; Open returns a *TamperError
// naming the record (and the local object, when the device knows it) and
// the record is never applied. A genuine older version replayed with its
// own version number is refused when the device already holds a newer one.
// Records are at most MaxBlobBytes (64 KiB) sealed.
//
// # Server
//
// Store (over the server's *sql.DB; SQLite or PostgreSQL, the same SQL) and
// Handler (the endpoints server/ mounts under /api/v1/sync/vaults/{vault},
// behind its workspace-key authentication) keep per vault a sequence
// number, and per record its newest blob, version, sequence number and
// pushing device — a compacted change feed. Pull returns the records with
// a sequence number after a cursor, in order, paged. Push is all or
// nothing: every record names the version it expects the server to hold
// (compare-and-swap); one mismatch stores nothing and answers 409 with the
// current records. Sequence numbers are handed out under the vault row's
// lock inside the push transaction, so replicas on one PostgreSQL database
// never hand out one twice. Limits (records and bytes per vault, records
// per push, devices, the server's request body cap) answer ETOOLARGE with
// the limit named. Devices register with the workspace key and then carry a
// device token (stored as a hash); a revoked device is refused at once. The
// server sees opaque record ids, ciphertext, sizes, sequence numbers,
// device ids and times — no names, hosts, types, values or token hashes;
// even device names are sealed by the client.
//
// # Client
//
// The local vault keeps a change log (triggers on credentials, agents and
// grants, silent while a sync round applies remote changes) and, per
// object, the server version it last pushed or applied (sync_known). Run:
//
//  1. pulls every page since the cursor (nothing to pull and nothing
//     pending: done, one request);
//  2. merges, in one local transaction: a remote change to an object with
//     no local change is applied; with a local change, the later clock
//     stamp wins (last writer wins) and the losing credential is kept as
//     "NAME (conflict)"; a delete racing an edit keeps the edit; two
//     objects created with one name keep both, the local one renamed; each
//     conflict is recorded for `sync status` and returned;
//  3. pushes the remaining local changes in batches, each sealed as the
//     version after the one it was made on; a stale answer goes back to 1.
//
// A stamp is a hybrid logical clock: (wall ms of the change, counter,
// device). A local change is stamped with its own time, moved past the
// stamp of the version it overwrites when this device's clock is behind;
// the stamp is a pure function of the change, so a push whose answer was
// lost (the client killed) is recognised on the next pull as its own. The
// local transaction that applies a round also moves the cursor, so a client
// killed mid-pull or mid-push loses and duplicates nothing: it pulls or
// pushes again. Audit rows are not synced; they stay on the device that
// made them.
package sync
