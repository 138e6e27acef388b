-- Schema 2: audit_events keyed by seq. seq becomes the rowid (INTEGER
-- PRIMARY KEY): the table is stored in seq order and every index entry ends
-- with it, so the UNIQUE index on seq goes, and (agent_id, seq) and
-- (credential_id, seq) become (agent_id) and (credential_id) with the same
-- entries. Each audit row then writes five b-trees instead of six, for the
-- same queries. The rows, their ids and their seqs are kept as they are.

CREATE TABLE audit_events_v2 (
    seq             INTEGER PRIMARY KEY, -- increases whenever the row is inserted or completed
    id              TEXT NOT NULL UNIQUE,
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
INSERT INTO audit_events_v2 (seq, id, time, request_id, workspace_id, agent_id, agent_name, credential_id,
        credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out)
    SELECT seq, id, time, request_id, workspace_id, agent_id, agent_name, credential_id,
        credential_name, method, host, path, status, decision, code, duration_us, bytes_in, bytes_out
    FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_v2 RENAME TO audit_events;
CREATE INDEX audit_agent ON audit_events (agent_id);           -- entries end with seq (the rowid)
CREATE INDEX audit_credential ON audit_events (credential_id); -- likewise
CREATE INDEX audit_time ON audit_events (time);                -- Status: requests this month
