-- Link writes as functions, so that a verified link is one round trip instead of six (BEGIN,
-- the lock, the read, the write, the change log, COMMIT).
--
-- lock_link_writes: the transaction advisory lock every writer of links takes before it reads
-- them (its key is the one the registry used before this migration, so replicas of either
-- version exclude each other). Writers are serialized, so change sequences become visible in
-- increasing order (see 0002).
CREATE FUNCTION lock_link_writes() RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(4160431322126086106)
$$;

-- record_link_changes: a transaction's changes appended in their order, the prune of what is
-- older than the retention, and the notification that carries them as JSON (sent at commit;
-- empty when it would pass Postgres's 8,000-byte payload limit). now() is when the
-- transaction began: the changes it writes are never pruned by it, and the prune does not see
-- them anyway (one snapshot for every part of the statement).
CREATE FUNCTION record_link_changes(
    kinds text[], discord_user_ids bigint[], faceit_player_ids text[], faceit_nicknames text[],
    avatar_urls text[], countries text[], games text[], skill_levels integer[],
    faceit_elos integer[], faceit_urls text[], linked_ats timestamptz[],
    verified_ats timestamptz[], retention interval
) RETURNS void
LANGUAGE sql AS $$
    WITH recorded AS (
        INSERT INTO registry.link_changes (
            kind, discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
            skill_level, faceit_elo, faceit_url, linked_at, verified_at)
        SELECT kind, discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country,
            game, skill_level, faceit_elo, faceit_url, linked_at, verified_at
        FROM unnest(kinds, discord_user_ids, faceit_player_ids, faceit_nicknames, avatar_urls,
                countries, games, skill_levels, faceit_elos, faceit_urls, linked_ats,
                verified_ats)
            WITH ORDINALITY AS change (
                kind, discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country,
                game, skill_level, faceit_elo, faceit_url, linked_at, verified_at, ordinal)
        ORDER BY ordinal
        RETURNING sequence, kind, changed_at, discord_user_id, faceit_player_id,
            faceit_nickname, avatar_url, country, game, skill_level, faceit_elo, faceit_url,
            linked_at, verified_at
    ),
    payload AS (
        SELECT json_agg(recorded ORDER BY sequence)::text AS changes FROM recorded
    ),
    pruned AS (
        DELETE FROM registry.link_changes WHERE changed_at < now() - retention
        RETURNING sequence
    ),
    horizon AS (
        UPDATE registry.link_changes_horizon
        SET pruned_through = greatest(pruned_through, (SELECT max(sequence) FROM pruned))
        WHERE EXISTS (SELECT 1 FROM pruned)
    )
    SELECT pg_notify(
        'registry_link_changes',
        CASE WHEN octet_length(changes) <= 7999 THEN changes ELSE '' END)
    FROM payload
$$;

-- link_changes_of: links as changes in their order, the first `unlinked` of them unlinked and
-- the rest linked.
CREATE FUNCTION link_changes_of(links registry.player_links[], unlinked integer)
RETURNS TABLE (
    kind text, discord_user_id bigint, faceit_player_id text, faceit_nickname text,
    avatar_url text, country text, game text, skill_level integer, faceit_elo integer,
    faceit_url text, linked_at timestamptz, verified_at timestamptz, ordinal bigint
)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN l.ordinal <= unlinked THEN 'unlinked' ELSE 'linked' END,
        l.discord_user_id, l.faceit_player_id, l.faceit_nickname, l.avatar_url, l.country,
        l.game, l.skill_level, l.faceit_elo, l.faceit_url, l.linked_at, l.verified_at,
        l.ordinal
    FROM unnest(links) WITH ORDINALITY AS l (
        discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
        skill_level, faceit_elo, faceit_url, linked_at, verified_at, ordinal)
$$;

-- link_verified: link the Discord user to the FACEIT account they proved is theirs, replacing
-- the user's link of another account and another user's unverified claim of this one, with
-- the changes recorded (the removed links unlinked, holder first, then the link made). When
-- another user holds the account verified, nothing is written and the only row is that link
-- with kind 'taken'. Each statement of the function reads after the lock (READ COMMITTED takes
-- a snapshot per statement), so the links it replaces are those committed before it.
-- Proving the account one is linked to keeps when the link was made.
CREATE FUNCTION link_verified(
    user_id bigint, player_id text, nickname text, avatar text, country_code text,
    game_id text, level integer, elo integer, url text, retention interval
) RETURNS TABLE (
    kind text, discord_user_id bigint, faceit_player_id text, faceit_nickname text,
    avatar_url text, country text, game text, skill_level integer, faceit_elo integer,
    faceit_url text, linked_at timestamptz, verified_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    holder registry.player_links;
    own registry.player_links;
    made registry.player_links;
    removed registry.player_links[] := '{}';
    changed registry.player_links[];
BEGIN
    PERFORM registry.lock_link_writes();
    SELECT * INTO holder FROM registry.player_links l WHERE l.faceit_player_id = player_id;
    SELECT * INTO own FROM registry.player_links l WHERE l.discord_user_id = user_id;
    IF holder.discord_user_id IS NOT NULL AND holder.discord_user_id <> user_id THEN
        IF holder.verified_at IS NOT NULL THEN
            RETURN QUERY SELECT 'taken'::text, (holder).*;
            RETURN;
        END IF;
        DELETE FROM registry.player_links l WHERE l.discord_user_id = holder.discord_user_id;
        removed := removed || holder;
    END IF;
    IF own.discord_user_id IS NOT NULL AND own.faceit_player_id = player_id THEN
        UPDATE registry.player_links l
        SET faceit_nickname = nickname, avatar_url = avatar, country = country_code,
            game = game_id, skill_level = level, faceit_elo = elo, faceit_url = url,
            verified_at = clock_timestamp()
        WHERE l.discord_user_id = user_id
        RETURNING l.* INTO made;
    ELSE
        IF own.discord_user_id IS NOT NULL THEN
            DELETE FROM registry.player_links l WHERE l.discord_user_id = user_id;
            removed := removed || own;
        END IF;
        INSERT INTO registry.player_links AS l (
            discord_user_id, faceit_player_id, faceit_nickname, avatar_url, country, game,
            skill_level, faceit_elo, faceit_url, verified_at)
        VALUES (user_id, player_id, nickname, avatar, country_code, game_id, level, elo, url,
            clock_timestamp())
        RETURNING l.* INTO made;
    END IF;
    changed := removed || made;
    PERFORM registry.record_link_changes(
        array_agg(c.kind ORDER BY c.ordinal), array_agg(c.discord_user_id ORDER BY c.ordinal),
        array_agg(c.faceit_player_id ORDER BY c.ordinal),
        array_agg(c.faceit_nickname ORDER BY c.ordinal),
        array_agg(c.avatar_url ORDER BY c.ordinal), array_agg(c.country ORDER BY c.ordinal),
        array_agg(c.game ORDER BY c.ordinal), array_agg(c.skill_level ORDER BY c.ordinal),
        array_agg(c.faceit_elo ORDER BY c.ordinal), array_agg(c.faceit_url ORDER BY c.ordinal),
        array_agg(c.linked_at ORDER BY c.ordinal), array_agg(c.verified_at ORDER BY c.ordinal),
        retention)
    FROM registry.link_changes_of(changed, cardinality(removed)) c;
    RETURN QUERY
        SELECT c.kind, c.discord_user_id, c.faceit_player_id, c.faceit_nickname, c.avatar_url,
            c.country, c.game, c.skill_level, c.faceit_elo, c.faceit_url, c.linked_at,
            c.verified_at
        FROM registry.link_changes_of(changed, cardinality(removed)) c ORDER BY c.ordinal;
END
$$;
