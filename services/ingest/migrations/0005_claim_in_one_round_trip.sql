-- The delivery worker's claim and the read of the event it claimed, in one round trip.
-- First the claim, in one statement: the oldest due pending event of a match that nobody
-- leases (a match whose older event waits for a retry is not touched, so events of one match
-- apply in version order), and a lease on its match. The lease's primary key makes two claims
-- of one match wait for each other, and the loser (its ON CONFLICT finding a lease still
-- running) gets `leased` false. `more` says whether another match has a due event too.
-- Then, once the match is leased, in a statement of its own (each statement of a volatile
-- function takes a new snapshot, so it sees every event committed before the lease): the
-- match's oldest pending event, with the newest version of its other open/close events (a
-- newer one supersedes it) and the match objects of its 20 latest other events (to complete a
-- roster). When that event is gone or not due (another worker settled or retried it
-- meanwhile), the lease is given up again and the match reported busy (`leased` false).
-- No row: nothing is due.
CREATE FUNCTION claim_due_event(busy text[], token uuid, lease_s float8)
RETURNS TABLE (
    match_id text, leased boolean, more boolean,
    id bigint, event_id text, event text, version bigint, action text, status text,
    source text, attempts integer, last_error text, match jsonb, received_at timestamptz,
    processed_at timestamptz, next_attempt_at timestamptz,
    due boolean, newer bigint, earlier jsonb
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    claimed text;
BEGIN
    WITH candidate AS (
        SELECT e.match_id FROM ingest.events e
        WHERE e.status = 'PENDING' AND e.next_attempt_at <= now()
          AND NOT (e.match_id = ANY(busy))
          AND NOT EXISTS (
            SELECT 1 FROM ingest.events o
            WHERE o.match_id = e.match_id AND o.status = 'PENDING'
              AND (o.version, o.id) < (e.version, e.id))
          AND NOT EXISTS (
            SELECT 1 FROM ingest.match_leases l
            WHERE l.match_id = e.match_id AND l.claimed_until > now())
        ORDER BY e.next_attempt_at, e.id
        LIMIT 1
    ), taken AS (
        INSERT INTO ingest.match_leases AS l (match_id, claim_token, claimed_until)
        SELECT c.match_id, token, now() + make_interval(secs => lease_s) FROM candidate c
        ON CONFLICT (match_id) DO UPDATE
            SET claim_token = excluded.claim_token, claimed_until = excluded.claimed_until
            WHERE l.claimed_until <= now()
        RETURNING l.match_id
    )
    SELECT c.match_id, EXISTS (SELECT 1 FROM taken),
      EXISTS (SELECT 1 FROM ingest.events m
              WHERE m.status = 'PENDING' AND m.next_attempt_at <= now()
                AND m.match_id <> c.match_id)
    INTO claimed, leased, more
    FROM candidate c;
    IF claimed IS NULL THEN
        RETURN;
    END IF;
    match_id := claimed;
    IF leased THEN
        SELECT e.id, e.event_id, e.event, e.version, e.action, e.status, e.source, e.attempts,
          e.last_error, e.match, e.received_at, e.processed_at, e.next_attempt_at,
          e.next_attempt_at <= now(),
          (SELECT max(n.version) FROM ingest.events n
           WHERE n.match_id = e.match_id AND n.id <> e.id AND n.action IN ('OPEN', 'CLOSE')
             AND n.status IN ('PENDING', 'DELIVERED')),
          (SELECT jsonb_agg(p.match ORDER BY p.version DESC, p.id DESC) FROM (
             SELECT o.match, o.version, o.id FROM ingest.events o
             WHERE o.match_id = e.match_id AND o.id <> e.id AND o.match IS NOT NULL
             ORDER BY o.version DESC, o.id DESC
             LIMIT 20) p)
        INTO id, event_id, event, version, action, status, source, attempts, last_error,
          match, received_at, processed_at, next_attempt_at, due, newer, earlier
        FROM ingest.events e
        WHERE e.match_id = claimed AND e.status = 'PENDING'
        ORDER BY e.version, e.id
        LIMIT 1;
        IF NOT FOUND OR NOT due THEN
            DELETE FROM ingest.match_leases l WHERE l.match_id = claimed AND l.claim_token = token;
            leased := false;
        END IF;
    END IF;
    RETURN NEXT;
END;
$$;
