-- Schema 8: OAuth Connect. version is bumped by every write of a
-- credential's sealed value; a refresh takes refresh_lease (Unix µs until
-- which one process or replica may refresh) with a compare-and-swap on
-- version and writes the new token pair with another, so only one refresh
-- happens and a rotated refresh token is never lost. oauth_status is
-- 'error' once the provider refused the refresh token (reconnect needed).
ALTER TABLE credentials ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN refresh_lease INTEGER;
ALTER TABLE credentials ADD COLUMN oauth_status TEXT NOT NULL DEFAULT '';
-- The access token's expiry (Unix µs), listed without opening the value.
ALTER TABLE credentials ADD COLUMN oauth_expires_at INTEGER;

-- The OAuth clients (apps) connections are made and refreshed with, one
-- per provider; the client secret is sealed like a credential value.
CREATE TABLE oauth_apps (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    key_version   INTEGER NOT NULL,
    auth_url      TEXT NOT NULL,
    token_url     TEXT NOT NULL,
    device_url    TEXT NOT NULL DEFAULT '',
    scopes        TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, provider)
);
