-- One row per link between a Discord user and a FACEIT account.
-- The primary key allows one link per Discord user; the unique constraint one Discord user per
-- FACEIT account. Concurrent LinkPlayer calls rely on these constraints, not on checks in code.
CREATE TABLE registry.player_links (
    discord_user_id  BIGINT      NOT NULL,
    faceit_player_id TEXT        NOT NULL,
    faceit_nickname  TEXT        NOT NULL,
    avatar_url       TEXT        NOT NULL DEFAULT '',
    country          TEXT        NOT NULL DEFAULT '',
    game             TEXT        NOT NULL DEFAULT '',
    skill_level      INTEGER     NOT NULL DEFAULT 0,
    faceit_elo       INTEGER     NOT NULL DEFAULT 0,
    faceit_url       TEXT        NOT NULL DEFAULT '',
    linked_at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT player_links_pkey PRIMARY KEY (discord_user_id),
    CONSTRAINT player_links_faceit_player_id_key UNIQUE (faceit_player_id),
    CONSTRAINT player_links_discord_user_id_positive CHECK (discord_user_id > 0),
    CONSTRAINT player_links_faceit_player_id_not_empty CHECK (faceit_player_id <> '')
);

-- ListPlayerLinks pages by the keyset (linked_at, discord_user_id), oldest first.
CREATE INDEX player_links_linked_at_idx ON registry.player_links (linked_at, discord_user_id);
