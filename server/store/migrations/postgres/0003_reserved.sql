-- Placeholder for migration 3, reserved for another branch (grant expiry):
-- delete this file when that branch's 0003 is merged.
SELECT 1;
