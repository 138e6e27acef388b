-- Schema 9: dashboard sessions. Only the HMAC of a session id is stored
-- (id_hash); the id lives in the browser's cookie. Times are Unix µs: a
-- session ends last_seen_at + idle or created_at + absolute, whichever is
-- first (the server's settings), at logout, and when its member leaves the
-- workspace (the row is deleted, and lookups join members).
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_member ON sessions (workspace_id, user_id);
