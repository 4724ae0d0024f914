-- Claims under way at once take different matches (0005's function, the choice changed).
-- A claim goes through the due events oldest first and takes the first whose match no other
-- claim is choosing at that moment: it holds a transaction-level advisory lock on the match
-- (keyed by its hash; a collision only makes a claim pass a match over for now) and skips the
-- matches whose lock another claim holds, without waiting. So the claims of a burst, started
-- together, lease one match each. Before, they all chose the oldest event, and all but one
-- waited for that claim's lease to commit, to find its match busy and claim again: one match
-- leased per round trip.
-- An advisory lock, not a row lock on the event (FOR UPDATE SKIP LOCKED): a settle or a
-- retry deletes its lease and then updates its event, and a claim holding the event's row
-- while it waits for that lease (one that ran out, its holder still settling) would deadlock
-- with it. The advisory lock is only ever taken by claims, which never wait for it.
-- The rest is 0005's: the lease taken (the primary key still makes two claims of one match
-- wait for each other, the loser finding a lease still running gets `leased` false), then
-- the leased match's oldest pending event read in a statement of its own.
CREATE OR REPLACE FUNCTION claim_due_event(busy text[], token uuid, lease_s float8)
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
    candidate text;
BEGIN
    FOR candidate IN
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
    LOOP
        IF pg_try_advisory_xact_lock(hashtext('ingest.claim_due_event'), hashtext(candidate)) THEN
            claimed := candidate;
            EXIT;
        END IF;
    END LOOP;
    IF claimed IS NULL THEN
        RETURN;
    END IF;
    match_id := claimed;
    WITH taken AS (
        INSERT INTO ingest.match_leases AS l (match_id, claim_token, claimed_until)
        VALUES (claimed, token, now() + make_interval(secs => lease_s))
        ON CONFLICT (match_id) DO UPDATE
            SET claim_token = excluded.claim_token, claimed_until = excluded.claimed_until
            WHERE l.claimed_until <= now()
        RETURNING l.match_id
    )
    SELECT EXISTS (SELECT 1 FROM taken),
      EXISTS (SELECT 1 FROM ingest.events m
              WHERE m.status = 'PENDING' AND m.next_attempt_at <= now()
                AND m.match_id <> claimed)
    INTO leased, more;
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
