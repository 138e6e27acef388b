-- Schema 4 (reserved number 0009, renumbered at merge): credential expiry
-- and webhooks. Times are Unix microseconds.

-- A credential may expire: NULL never; the proxy refuses an expired
-- credential (CREDENTIAL_EXPIRED).
ALTER TABLE credentials ADD COLUMN expires_at INTEGER;

-- A workspace's webhook endpoints. The secret (whsec_…) is sealed with the
-- server key (AAD: "webhook-secret" and the id); it is shown only when
-- created or rotated. failing_since is the first failure since the last
-- success: an endpoint failing for 5 days is disabled with a reason.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array of event types
    secret_sealed   BLOB NOT NULL,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL,
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id);

-- The outbox: one row per event, its body exactly as sent, written in the
-- transaction of its cause.
CREATE TABLE webhook_events (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- One event to one endpoint. status: pending, succeeded or failed. A sender
-- leases a due row (lease_id, lease_until) before sending; a lease that ran
-- out (the sender died) makes the row due again: at least once.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_id        TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

-- Every attempt of a delivery: when, the answer's status (0: none), how
-- long, and the error.
CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error       TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- Events raised at most once per cause: the key names the cause
-- (credential.expired:<credential>:<expiresAt>, usage.limit_reached:
-- <workspace>:<period>, credential.error:<credential> once an hour).
CREATE TABLE webhook_raised (
    key          TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    raised_at    INTEGER NOT NULL
);
