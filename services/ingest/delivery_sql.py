"""The delivery worker's statements on `ingest.events` and `ingest.match_leases`, as SQL."""

from __future__ import annotations

# The claim of the oldest due event of a match nobody leases (nor another claim is choosing:
# claims at once take different matches), a lease on its match, and the event read in a
# statement of its own once leased (so it sees every event committed before the lease), with
# what decides its delivery: one round trip (migrations/0005, 0006). No row: nothing is due;
# `leased` false: the match is busy; `more`: another match has a due event.
CLAIM = "SELECT * FROM ingest.claim_due_event($1::text[], $2::uuid, $3::float8)"

# An outcome is recorded only by the holder of the lease, and releases it, in one statement;
# a worker whose lease was taken over records nothing (the new holder handles the event).
SETTLE = """
WITH lease AS (
    DELETE FROM ingest.match_leases WHERE match_id = $5 AND claim_token = $6 RETURNING 1
)
UPDATE ingest.events SET status = $2, last_error = $3, processed_at = now(),
    next_attempt_at = NULL, attempts = attempts + $4
WHERE id = $1 AND EXISTS (SELECT 1 FROM lease)
RETURNING id
"""

RETRY = """
WITH lease AS (
    DELETE FROM ingest.match_leases WHERE match_id = $5 AND claim_token = $6 RETURNING 1
)
UPDATE ingest.events SET attempts = $2, last_error = $3,
    next_attempt_at = now() + make_interval(secs => $4)
WHERE id = $1 AND EXISTS (SELECT 1 FROM lease)
RETURNING id
"""

# When the next pending event becomes deliverable: its retry time, or the end of a lease
# (another replica's, or a dead worker's) that holds its match.
NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM min(GREATEST(e.next_attempt_at, l.claimed_until)) - now())::float8
FROM ingest.events e LEFT JOIN ingest.match_leases l ON l.match_id = e.match_id
WHERE e.status = 'PENDING' AND (e.next_attempt_at > now() OR l.claimed_until > now())
"""

# The leases of these claim tokens given up, however they stand: how many there were.
RELEASE_TOKENS = """
WITH gone AS (DELETE FROM ingest.match_leases WHERE claim_token = ANY($1::uuid[]) RETURNING 1)
SELECT count(*) FROM gone
"""
