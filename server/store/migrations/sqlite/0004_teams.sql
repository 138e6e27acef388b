-- Schema 4 (SQLite): teams. API keys belong to one member (user_id) of
-- their workspace and act with that member's current role; they get an id
-- and a name so they can be listed, rotated and revoked. Existing keys are
-- given to their workspace's first owner. Invitations (token stored as an
-- HMAC, single use), the admin events of the audit log (numbered from the
-- same per-workspace sequence as proxied requests) and the rate limits that
-- replicas share (GCRA: one theoretical arrival time per key).

ALTER TABLE workspace_keys ADD COLUMN id TEXT;
ALTER TABLE workspace_keys ADD COLUMN user_id TEXT;
ALTER TABLE workspace_keys ADD COLUMN name TEXT NOT NULL DEFAULT 'default';
UPDATE workspace_keys SET
    id = 'key_' || lower(hex(randomblob(16))),
    user_id = (SELECT m.user_id FROM members m WHERE m.workspace_id = workspace_keys.workspace_id AND m.role = 'owner'
               ORDER BY m.created_at, m.user_id LIMIT 1);
CREATE UNIQUE INDEX workspace_keys_id ON workspace_keys (id);
CREATE INDEX workspace_keys_member ON workspace_keys (workspace_id, user_id);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT NOT NULL, -- lowercased
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE, -- HMAC-SHA256 of the token with the server's pepper
    invited_by   TEXT NOT NULL,        -- user id
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, email)
) STRICT;

CREATE TABLE admin_events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    seq           INTEGER NOT NULL, -- from workspaces.audit_seq, shared with audit_events
    time          INTEGER NOT NULL,
    request_id    TEXT NOT NULL,
    actor_user_id TEXT NOT NULL,
    actor_email   TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL, -- what was acted on (an email, a key id and name, a role); never a secret
    UNIQUE (workspace_id, seq)
) STRICT;

CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat INTEGER NOT NULL -- theoretical arrival time, Unix microseconds
) STRICT;

-- Sign-ups waiting for their email to be confirmed (servers that send
-- email): the account and workspace are made when the link is followed.
CREATE TABLE pending_signups (
    token_hash     TEXT PRIMARY KEY, -- HMAC-SHA256 of the confirmation token
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    workspace_name TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_signups_email ON pending_signups (email);
