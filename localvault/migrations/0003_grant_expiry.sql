-- Schema 3: a grant may expire. expires_at is Unix microseconds, NULL for a
-- grant that never expires; the proxy refuses an expired grant's token.
ALTER TABLE grants ADD COLUMN expires_at INTEGER;
