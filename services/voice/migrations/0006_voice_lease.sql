-- Active/standby: of the voice replicas sharing this database, only the holder of the lease
-- acts. One row: who holds it, its fencing token (incremented on every takeover, never on a
-- renewal) and when it runs out, by the database's clock. A holder renews it by heartbeat; a
-- standby takes it over only once it has run out.
CREATE TABLE lease (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    holder text NOT NULL CHECK (holder <> ''),
    token bigint NOT NULL CHECK (token > 0),
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- Fencing: a voice replica sets `voice.fencing_token` on each of its connections (0 before it
-- holds the lease). Every statement writing voice's state from such a connection must carry
-- the current token, so the writes of a replica that was paused while another took over fail.
-- FOR SHARE orders each write with the takeover (an UPDATE of the row): a write that began
-- before it commits holds the takeover back until the write's transaction ends, and a write
-- that comes after sees the new token. Sessions without the setting (migrations, an operator
-- in psql) are not voice replicas and are not fenced.
CREATE FUNCTION fence_voice_writes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    claimed text := current_setting('voice.fencing_token', true);
BEGIN
    IF claimed IS NULL OR claimed = '' THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM voice.lease WHERE token = claimed::bigint FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fencing token % is not the voice lease''s current one', claimed
            USING ERRCODE = 'FV001', HINT = 'another voice replica holds the lease';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER active_matches_fenced BEFORE INSERT OR UPDATE OR DELETE ON active_matches
    FOR EACH STATEMENT EXECUTE FUNCTION fence_voice_writes();
CREATE TRIGGER match_channels_fenced BEFORE INSERT OR UPDATE OR DELETE ON match_channels
    FOR EACH STATEMENT EXECUTE FUNCTION fence_voice_writes();
CREATE TRIGGER left_on_purpose_fenced BEFORE INSERT OR UPDATE OR DELETE ON left_on_purpose
    FOR EACH STATEMENT EXECUTE FUNCTION fence_voice_writes();
CREATE TRIGGER link_watch_fenced BEFORE INSERT OR UPDATE OR DELETE ON link_watch
    FOR EACH STATEMENT EXECUTE FUNCTION fence_voice_writes();
