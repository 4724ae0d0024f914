-- Delivery leases: a worker holds a match for a bounded time, set and cleared by short
-- statements, instead of a transaction and row lock held across the voice call.
-- One row per match being delivered; a lease past `claimed_until` may be taken over, so the
-- events of a worker that died are delivered again.
CREATE TABLE match_leases (
    match_id text PRIMARY KEY,
    claim_token uuid NOT NULL,
    claimed_until timestamptz NOT NULL
);
