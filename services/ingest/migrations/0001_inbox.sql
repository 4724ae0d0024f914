-- The durable inbox of FACEIT events: one row per event, delivered to voice in per-match order.
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL,
    event text NOT NULL,
    match_id text NOT NULL DEFAULT '',
    version bigint NOT NULL DEFAULT 0,
    action text NOT NULL CHECK (action IN ('OPEN', 'CLOSE', 'NONE')),
    status text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED', 'IGNORED', 'SUPERSEDED')),
    source text NOT NULL CHECK (source IN ('WEBHOOK', 'POLL')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    match jsonb,
    body bytea,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    next_attempt_at timestamptz,
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The same match event at the same version is one event, whichever way it arrived.
CREATE UNIQUE INDEX events_match_event_version_key
    ON events (match_id, event, version) WHERE match_id <> '';

-- The delivery worker's claim: the pending events, oldest version first per match.
CREATE INDEX events_pending_idx ON events (match_id, version, id) WHERE status = 'PENDING';

CREATE INDEX events_match_idx ON events (match_id, id);
CREATE INDEX events_status_idx ON events (status, id);
