-- Schema 8: OAuth Connect. version is bumped by every write of a
-- credential's sealed value; a refresh takes refresh_lease (Unix µs until
-- which one process or replica may refresh) with a compare-and-swap on
-- version and writes the new token pair with another, so only one refresh
-- happens and a rotated refresh token is never lost. oauth_status is
-- 'error' once the provider refused the refresh token (reconnect needed).
ALTER TABLE credentials ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN refresh_lease BIGINT;
ALTER TABLE credentials ADD COLUMN oauth_status TEXT NOT NULL DEFAULT '';
-- The access token's expiry (Unix µs), listed without opening the value.
ALTER TABLE credentials ADD COLUMN oauth_expires_at BIGINT;

-- The OAuth clients (apps) connections are made and refreshed with, one
-- per provider; the client secret is sealed like a credential value.
CREATE TABLE oauth_apps (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    key_version   BIGINT NOT NULL,
    auth_url      TEXT NOT NULL,
    token_url     TEXT NOT NULL,
    device_url    TEXT NOT NULL DEFAULT '',
    scopes        TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, provider)
);

-- A connection started on the server (POST /api/v1/oauth/{provider}/start)
-- until its callback: the state's SHA-256 (the state itself is only in the
-- authorization URL), bound to the workspace, used once, expiring after 10
-- minutes. verifier is the PKCE verifier, useless without the code.
CREATE TABLE oauth_states (
    state_hash   TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
