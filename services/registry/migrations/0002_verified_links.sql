-- Verified linking (FACEIT Connect): a link records when its owner proved the FACEIT account
-- is theirs; links made before this migration were made by nickname alone, so they start
-- unverified (verified_at NULL).
ALTER TABLE registry.player_links ADD COLUMN verified_at TIMESTAMPTZ;

-- One row per link flow a Discord user started (StartLink) and has not finished. `state` is
-- the random one-time value in the link URL and FACEIT's `state` parameter. The row lives in
-- the database so that any registry replica can serve every step; finishing deletes it in one
-- statement, so a state is used at most once even when two replicas race.
-- `code_verifier` (PKCE) and `browser_hash` (SHA-256 of the cookie set in the browser that
-- pressed continue) are set when the user leaves for FACEIT; the callback must come back in
-- that browser.
CREATE TABLE registry.link_states (
    state                TEXT        NOT NULL,
    discord_user_id      BIGINT      NOT NULL,
    discord_display_name TEXT        NOT NULL,
    discord_username     TEXT        NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at           TIMESTAMPTZ NOT NULL,
    code_verifier        TEXT,
    browser_hash         TEXT,
    CONSTRAINT link_states_pkey PRIMARY KEY (state),
    CONSTRAINT link_states_discord_user_id_positive CHECK (discord_user_id > 0)
);

-- StartLink removes the user's previous state and every expired one.
CREATE INDEX link_states_discord_user_id_idx ON registry.link_states (discord_user_id);
CREATE INDEX link_states_expires_at_idx ON registry.link_states (expires_at);

-- The change log WatchLinkChanges streams: every link made or removed, written in the
-- transaction that made or removed it. Writers take a transaction advisory lock before they
-- draw a sequence, so sequences become visible in increasing order and a reader that has seen
-- N never later finds a smaller one committed. A change copies the link as it was, since an
-- UNLINKED link no longer exists in player_links.
CREATE TABLE registry.link_changes (
    sequence         BIGINT      GENERATED ALWAYS AS IDENTITY,
    kind             TEXT        NOT NULL,
    changed_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    discord_user_id  BIGINT      NOT NULL,
    faceit_player_id TEXT        NOT NULL,
    faceit_nickname  TEXT        NOT NULL,
    avatar_url       TEXT        NOT NULL,
    country          TEXT        NOT NULL,
    game             TEXT        NOT NULL,
    skill_level      INTEGER     NOT NULL,
    faceit_elo       INTEGER     NOT NULL,
    faceit_url       TEXT        NOT NULL,
    linked_at        TIMESTAMPTZ NOT NULL,
    verified_at      TIMESTAMPTZ,
    CONSTRAINT link_changes_pkey PRIMARY KEY (sequence),
    CONSTRAINT link_changes_kind_known CHECK (kind IN ('linked', 'unlinked'))
);

-- Pruning removes the oldest changes by time.
CREATE INDEX link_changes_changed_at_idx ON registry.link_changes (changed_at);

-- The highest sequence pruned so far: a watcher asking to resume before it has missed changes.
CREATE TABLE registry.link_changes_horizon (
    only_row        BOOLEAN NOT NULL DEFAULT true,
    pruned_through  BIGINT  NOT NULL DEFAULT 0,
    CONSTRAINT link_changes_horizon_pkey PRIMARY KEY (only_row),
    CONSTRAINT link_changes_horizon_one_row CHECK (only_row)
);
INSERT INTO registry.link_changes_horizon DEFAULT VALUES;
