-- Schema 7: sync (the sync package). sync_settings holds this device's sync
-- configuration (one row while sync is on; its secrets sealed under the
-- root key). sync_dirty is the change log: triggers add a row for every
-- credential, agent and grant changed while sync is on, except while a
-- sync round applies remote changes (a row in sync_applying, inside that
-- round's transaction). sync_known is the server version each object was
-- last pushed or applied at; sync_conflicts what sync resolved.

CREATE TABLE IF NOT EXISTS sync_settings (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    server      TEXT NOT NULL,
    vault_id    TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    sealed      BLOB NOT NULL, -- Seal(root, {apiKey, deviceToken, vaultKey}, "agentkeys/sync-settings/v1" + workspace)
    cursor      INTEGER NOT NULL DEFAULT 0,
    last_sync   INTEGER NOT NULL DEFAULT 0,
    enabled_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS sync_applying (
    id INTEGER PRIMARY KEY CHECK (id = 1)
) STRICT;

CREATE TABLE IF NOT EXISTS sync_dirty (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    changed_ms INTEGER NOT NULL,
    gen        INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT;

CREATE TABLE IF NOT EXISTS sync_known (
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    version INTEGER NOT NULL,
    stamp   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT;

CREATE TABLE IF NOT EXISTS sync_conflicts (
    seq     INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    message TEXT NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS sync_credentials_ins AFTER INSERT ON credentials
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('credential', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_credentials_upd AFTER UPDATE OF name, type, allowed_hosts, sealed ON credentials
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('credential', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_credentials_del AFTER DELETE ON credentials
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('credential', OLD.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;

CREATE TRIGGER IF NOT EXISTS sync_agents_ins AFTER INSERT ON agents
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('agent', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_agents_upd AFTER UPDATE OF name ON agents
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('agent', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_agents_del AFTER DELETE ON agents
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('agent', OLD.id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;

CREATE TRIGGER IF NOT EXISTS sync_grants_ins AFTER INSERT ON grants
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('grant', NEW.agent_id || '/' || NEW.credential_id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_grants_upd AFTER UPDATE OF token_hash ON grants
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('grant', NEW.agent_id || '/' || NEW.credential_id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
CREATE TRIGGER IF NOT EXISTS sync_grants_del AFTER DELETE ON grants
    WHEN EXISTS (SELECT 1 FROM sync_settings) AND NOT EXISTS (SELECT 1 FROM sync_applying)
    BEGIN INSERT INTO sync_dirty (kind, id, changed_ms, gen)
        VALUES ('grant', OLD.agent_id || '/' || OLD.credential_id, CAST(unixepoch('subsec') * 1000 AS INTEGER), (SELECT COALESCE(MAX(gen), 0) + 1 FROM sync_dirty))
        ON CONFLICT (kind, id) DO UPDATE SET changed_ms = excluded.changed_ms, gen = excluded.gen; END;
