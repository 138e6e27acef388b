-- Schema 1: one workspace per vault file, its wrapped data keys, credentials
-- (values sealed), agents, grants (agent x credential, token stored as a
-- SHA-256 hash) and the audit log. Times are Unix microseconds (UTC).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- gen is bumped by triggers on every change a proxy cache depends on, so a
-- process holding resolved routes in memory can tell whether they are stale.
CREATE TABLE cache_gen (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
) STRICT;
INSERT INTO cache_gen (id, gen) VALUES (1, 0);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE, -- HashToken of the local ak_ws_ key
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE data_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    wrapped      BLOB NOT NULL, -- WrapKey(root, data, DataKeyAAD(workspace_id, version))
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, version)
) STRICT;

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL, -- lowercased name: names are unique case-insensitively
    type          TEXT NOT NULL,
    allowed_hosts TEXT NOT NULL, -- JSON array of normalised host patterns
    sealed        BLOB NOT NULL, -- SealSecret(data key, secret, workspace_id, id, key_version)
    key_version   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    UNIQUE (workspace_id, name_key)
) STRICT;

CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name_key)
) STRICT;

CREATE TABLE grants (
    agent_id      TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE, -- HashToken of the pxr_ token
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    PRIMARY KEY (agent_id, credential_id)
) STRICT;
CREATE INDEX grants_credential ON grants (credential_id);

-- Audit rows outlive the agents and credentials they name: no foreign keys.
CREATE TABLE audit_events (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE, -- increases whenever the row is inserted or completed
    time            INTEGER NOT NULL,
    request_id      TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
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
    duration_us     INTEGER NOT NULL,
    bytes_in        INTEGER NOT NULL,
    bytes_out       INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_credential ON audit_events (credential_id, seq);
CREATE INDEX audit_time ON audit_events (time);

-- Triggers keep cache_gen honest whatever process or tool makes the change.
-- last_used_at updates are left out: they change nothing a route depends on.
CREATE TRIGGER credentials_ins AFTER INSERT ON credentials BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER credentials_del AFTER DELETE ON credentials BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER credentials_upd AFTER UPDATE OF id, workspace_id, name, name_key, type, allowed_hosts, sealed, key_version ON credentials
    BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER agents_ins AFTER INSERT ON agents BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER agents_del AFTER DELETE ON agents BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER agents_upd AFTER UPDATE ON agents BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER grants_ins AFTER INSERT ON grants BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER grants_del AFTER DELETE ON grants BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER grants_upd AFTER UPDATE OF agent_id, credential_id, token_hash ON grants
    BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER workspaces_upd AFTER UPDATE ON workspaces BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER workspaces_del AFTER DELETE ON workspaces BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER data_keys_ins AFTER INSERT ON data_keys BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER data_keys_del AFTER DELETE ON data_keys BEGIN UPDATE cache_gen SET gen = gen + 1; END;
CREATE TRIGGER data_keys_upd AFTER UPDATE ON data_keys BEGIN UPDATE cache_gen SET gen = gen + 1; END;
