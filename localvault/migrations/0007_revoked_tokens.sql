-- Schema 7: who a proxy token was issued to, kept when its grant goes
-- (revoked, replaced by a new assignment, or removed with its agent or
-- credential), so the audit row of a request that still presents it names
-- the agent and credential. Only the token's hash is kept, as in grants.
CREATE TABLE revoked_tokens (
    token_hash      TEXT PRIMARY KEY, -- HashToken of the pxr_ token
    agent_id        TEXT NOT NULL,
    agent_name      TEXT NOT NULL,
    credential_id   TEXT NOT NULL,
    credential_name TEXT NOT NULL,
    revoked_at      INTEGER NOT NULL
) STRICT;
