-- The voice service's state: matches with their version, their rosters, and their channels.

CREATE TABLE active_matches (
    match_id text PRIMARY KEY CHECK (match_id <> ''),
    guild_id bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'closed')),
    version bigint NOT NULL CHECK (version >= 0),
    teams jsonb NOT NULL DEFAULT '[]'::jsonb,
    opened_at timestamptz,
    closed_at timestamptz,
    close_reason text NOT NULL DEFAULT '',
    delete_after timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX active_matches_open_idx ON active_matches (opened_at, match_id) WHERE state = 'open';
CREATE INDEX active_matches_delete_idx ON active_matches (delete_after) WHERE state = 'closed';

-- One row per team channel. The row is written (channel_id NULL, state 'creating') before the
-- channel is created, and completed with the channel id after, so no channel goes untracked.
CREATE TABLE match_channels (
    match_id text NOT NULL REFERENCES active_matches (match_id) ON DELETE CASCADE,
    faction text NOT NULL CHECK (faction IN ('faction1', 'faction2')),
    team_name text NOT NULL DEFAULT '',
    channel_name text NOT NULL,
    channel_id bigint UNIQUE,
    state text NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),
    member_ids bigint[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (match_id, faction),
    CHECK ((state = 'creating') = (channel_id IS NULL))
);

-- Players who switched away from their team channel on purpose: they are left alone.
CREATE TABLE left_on_purpose (
    match_id text NOT NULL REFERENCES active_matches (match_id) ON DELETE CASCADE,
    discord_user_id bigint NOT NULL,
    PRIMARY KEY (match_id, discord_user_id)
);
