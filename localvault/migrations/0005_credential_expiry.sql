-- Schema 4 (reserved number 0009, renumbered at merge): a credential may
-- expire. expires_at is Unix microseconds, NULL for a credential that never
-- expires; the proxy refuses an expired credential (CREDENTIAL_EXPIRED).
ALTER TABLE credentials ADD COLUMN expires_at INTEGER;
