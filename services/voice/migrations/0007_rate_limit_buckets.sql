-- Discord's rate-limit buckets as voice last learned them from the X-RateLimit-* headers, so
-- that a restart starts from them instead of sending each bucket's first request alone until
-- an answer tells its limit. One row per route key (method, major parameters and path, as
-- voice's client keys its buckets). `remaining` holds for the window ending at `resets_at`
-- (the database's clock); once that has passed, the next window starts with `request_limit`.
-- The first answer after a start still corrects all of it: Discord may change its limits.
CREATE TABLE rate_limit_buckets (
    route_key text PRIMARY KEY CHECK (route_key <> ''),
    bucket text NOT NULL DEFAULT '',
    request_limit integer NOT NULL CHECK (request_limit > 0),
    remaining integer NOT NULL CHECK (remaining >= 0),
    resets_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Written by the lease holder only, like every voice table: a replica superseded while paused
-- must not put back counts older than the new holder's.
CREATE TRIGGER rate_limit_buckets_fenced BEFORE INSERT OR UPDATE OR DELETE ON rate_limit_buckets
    FOR EACH STATEMENT EXECUTE FUNCTION fence_voice_writes();
