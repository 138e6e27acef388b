-- Schema 4 (reserved number 10: the loader allows no gaps, renumber at merge): plans, limits and billing. A workspace's limits are its plan's
-- (the table in the root package) unless the operator set one here
-- (`agentkeys serve set-plan`; NULL: the plan's). The billing period is
-- Stripe's current period (Unix microseconds, NULL: the calendar month in
-- UTC); limit_notified is the period whose usage.limit_reached was raised.
-- The Stripe ids are all the server keeps of billing: no card data.
ALTER TABLE workspaces ADD COLUMN limit_credentials BIGINT;
ALTER TABLE workspaces ADD COLUMN limit_agents BIGINT;
ALTER TABLE workspaces ADD COLUMN limit_requests BIGINT;
ALTER TABLE workspaces ADD COLUMN period_start BIGINT;
ALTER TABLE workspaces ADD COLUMN period_end BIGINT;
ALTER TABLE workspaces ADD COLUMN limit_notified TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN billing_status TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN stripe_customer TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN stripe_subscription TEXT NOT NULL DEFAULT '';

-- admitted is how many requests of the period the replicas took leases on
-- (quota.go): the request limit is enforced on it, usage on requests.
ALTER TABLE usage ADD COLUMN admitted BIGINT NOT NULL DEFAULT 0;

-- Stripe events applied, by id: a redelivered event changes nothing.
CREATE TABLE billing_events (
    id          TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
