"""The delivery worker's statements on `ingest.events` and `ingest.match_leases`, as SQL."""

from __future__ import annotations

from services.ingest.store import EVENT_COLUMNS

# The oldest due pending event of a match that nobody leases (a match whose older event waits
# for a retry is not touched, so events of one match apply in version order), and a lease on
# its match, in one autocommitted statement. The lease's primary key makes two claims of one
# match wait for each other, and the loser (its ON CONFLICT finding a lease still running)
# returns `leased` false. `more` says whether another match has a due event too.
CLAIM = """
WITH candidate AS (
    SELECT e.match_id FROM ingest.events e
    WHERE e.status = 'PENDING' AND e.next_attempt_at <= now()
      AND NOT (e.match_id = ANY($1::text[]))
      AND NOT EXISTS (
        SELECT 1 FROM ingest.events o
        WHERE o.match_id = e.match_id AND o.status = 'PENDING'
          AND (o.version, o.id) < (e.version, e.id))
      AND NOT EXISTS (
        SELECT 1 FROM ingest.match_leases l
        WHERE l.match_id = e.match_id AND l.claimed_until > now())
    ORDER BY e.next_attempt_at, e.id
    LIMIT 1
), leased AS (
    INSERT INTO ingest.match_leases AS l (match_id, claim_token, claimed_until)
    SELECT match_id, $2, now() + make_interval(secs => $3) FROM candidate
    ON CONFLICT (match_id) DO UPDATE
        SET claim_token = excluded.claim_token, claimed_until = excluded.claimed_until
        WHERE l.claimed_until <= now()
    RETURNING match_id
)
SELECT c.match_id, EXISTS (SELECT 1 FROM leased) AS leased,
  EXISTS (SELECT 1 FROM ingest.events m
          WHERE m.status = 'PENDING' AND m.next_attempt_at <= now()
            AND m.match_id <> c.match_id) AS more
FROM candidate c
"""

# Once the match is leased, in a statement of its own (so it sees every event committed
# before the lease): its oldest pending event, with the newest version of its other
# open/close events (a newer one supersedes it) and the match objects of its 20 latest other
# events (to complete a roster).
OLDEST_OF_MATCH = f"""
SELECT {EVENT_COLUMNS}, next_attempt_at <= now() AS due,
  (SELECT max(n.version) FROM ingest.events n
   WHERE n.match_id = e.match_id AND n.id <> e.id AND n.action IN ('OPEN', 'CLOSE')
     AND n.status IN ('PENDING', 'DELIVERED')) AS newer,
  (SELECT jsonb_agg(m.match ORDER BY m.version DESC, m.id DESC) FROM (
     SELECT o.match, o.version, o.id FROM ingest.events o
     WHERE o.match_id = e.match_id AND o.id <> e.id AND o.match IS NOT NULL
     ORDER BY o.version DESC, o.id DESC
     LIMIT 20) m) AS earlier
FROM ingest.events e
WHERE match_id = $1 AND status = 'PENDING'
ORDER BY version, id
LIMIT 1
"""

# An outcome is recorded only by the holder of the lease, and releases it, in one statement;
# a worker whose lease was taken over records nothing (the new holder handles the event).
RELEASE = "DELETE FROM ingest.match_leases WHERE match_id = $1 AND claim_token = $2"

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
