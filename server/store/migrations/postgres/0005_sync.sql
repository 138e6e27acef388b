-- Schema 7 (PostgreSQL): the sync blob store (package sync). Per synced vault
-- (a workspace may hold several, each named by an id derived from its key):
-- the last sequence number handed out, quotas in use, its devices (token
-- stored as a SHA-256 hash; the label sealed by the client) and one row
-- per record holding its newest sealed blob, version and sequence number.
-- The server never sees what a record is: ids are opaque, blobs sealed.

CREATE TABLE IF NOT EXISTS sync_vaults (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    vault_id     TEXT NOT NULL,
    seq          BIGINT NOT NULL DEFAULT 0,
    records      BIGINT NOT NULL DEFAULT 0,
    bytes        BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, vault_id)
);

CREATE TABLE IF NOT EXISTS sync_devices (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    vault_id     TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    label        BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT,
    revoked_at   BIGINT,
    FOREIGN KEY (workspace_id, vault_id) REFERENCES sync_vaults (workspace_id, vault_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS sync_devices_vault ON sync_devices (workspace_id, vault_id);

CREATE TABLE IF NOT EXISTS sync_records (
    workspace_id TEXT NOT NULL,
    vault_id     TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    blob         BYTEA NOT NULL,
    device_id    TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, vault_id, record_id),
    FOREIGN KEY (workspace_id, vault_id) REFERENCES sync_vaults (workspace_id, vault_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS sync_records_seq ON sync_records (workspace_id, vault_id, seq);
