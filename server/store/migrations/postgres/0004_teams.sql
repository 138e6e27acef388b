-- Schema 4 (PostgreSQL): teams. See the SQLite migration of the same number.

ALTER TABLE workspace_keys ADD COLUMN id TEXT, ADD COLUMN user_id TEXT, ADD COLUMN name TEXT NOT NULL DEFAULT 'default';
UPDATE workspace_keys SET
    id = 'key_' || replace(gen_random_uuid()::text, '-', ''),
    user_id = (SELECT m.user_id FROM members m WHERE m.workspace_id = workspace_keys.workspace_id AND m.role = 'owner'
               ORDER BY m.created_at, m.user_id LIMIT 1);
CREATE UNIQUE INDEX workspace_keys_id ON workspace_keys (id);
CREATE INDEX workspace_keys_member ON workspace_keys (workspace_id, user_id);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    invited_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    sent_at      BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, email)
);

CREATE TABLE admin_events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    time          BIGINT NOT NULL,
    request_id    TEXT NOT NULL,
    actor_user_id TEXT NOT NULL,
    actor_email   TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    UNIQUE (workspace_id, seq)
);

CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);

-- Sign-ups waiting for their email to be confirmed (servers that send
-- email): the account and workspace are made when the link is followed.
CREATE TABLE pending_signups (
    token_hash     TEXT PRIMARY KEY, -- HMAC-SHA256 of the confirmation token
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    workspace_name TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX pending_signups_email ON pending_signups (email);
