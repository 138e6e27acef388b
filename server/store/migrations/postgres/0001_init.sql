-- Schema 1 (PostgreSQL): workspaces, their users and API keys, wrapped data
-- keys, credentials (values sealed), agents, grants (agent x credential, the
-- proxy token stored as an HMAC) and the audit log. Every row carries
-- workspace_id and every query is scoped by it. Times are Unix microseconds.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    -- revision is bumped by every change a proxy route depends on, so a
    -- replica holding routes in memory can tell whether they are stale.
    revision   BIGINT NOT NULL DEFAULT 0,
    -- audit_seq is the last audit sequence number handed out.
    audit_seq  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE, -- lowercased
    password_hash TEXT NOT NULL,        -- argon2id PHC string; '' when the user has none
    created_at    BIGINT NOT NULL
);

CREATE TABLE members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE workspace_keys (
    key_hash     TEXT PRIMARY KEY, -- HMAC-SHA256 of the ak_ws_ key with the server's pepper
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX workspace_keys_workspace ON workspace_keys (workspace_id);

CREATE TABLE data_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    wrapped      BYTEA NOT NULL, -- WrapKey(server key, data key, DataKeyAAD(workspace_id, version))
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL, -- lowercased name: unique case-insensitively
    type          TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL, -- JSON array of normalised host patterns
    sealed        BYTEA NOT NULL, -- SealSecret(data key, secret, workspace_id, id, key_version)
    key_version   INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    UNIQUE (workspace_id, name_key),
    UNIQUE (workspace_id, id)
);

CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key),
    UNIQUE (workspace_id, id)
);

-- A grant can only join an agent and a credential of its own workspace.
CREATE TABLE grants (
    workspace_id  TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE, -- HMAC-SHA256 of the pxr_ token with the server's pepper
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    PRIMARY KEY (agent_id, credential_id),
    FOREIGN KEY (workspace_id, agent_id) REFERENCES agents (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, credential_id) REFERENCES credentials (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX grants_credential ON grants (workspace_id, credential_id);

-- Audit rows outlive the agents and credentials they name: no foreign keys.
CREATE TABLE audit_events (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    seq             BIGINT NOT NULL, -- per workspace; increases whenever the row is inserted or completed
    time            BIGINT NOT NULL,
    request_id      TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    agent_name      TEXT NOT NULL,
    credential_id   TEXT NOT NULL,
    credential_name TEXT NOT NULL,
    method          TEXT NOT NULL,
    host            TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    decision        TEXT NOT NULL,
    code            TEXT NOT NULL,
    duration_us     BIGINT NOT NULL,
    bytes_in        BIGINT NOT NULL,
    bytes_out       BIGINT NOT NULL,
    UNIQUE (workspace_id, seq)
);
CREATE INDEX audit_agent ON audit_events (workspace_id, agent_id, seq);
CREATE INDEX audit_credential ON audit_events (workspace_id, credential_id, seq);

-- Forwarded requests per workspace and calendar month (UTC, "2026-11"),
-- counted by the audit writer in the transaction that makes the request's
-- audit row durable: what workspace status reports and plans will limit.
CREATE TABLE usage (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    month        TEXT NOT NULL,
    requests     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, month)
);
