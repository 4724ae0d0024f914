-- The match feed (DISCORD_MATCH_FEED_CHANNEL_ID): one Discord message per match. The row is
-- written before the message is posted and `posting` set just before the POST, so a restart
-- that finds `posting` without a message_id looks for the message (the nonce, the channel's
-- recent messages) before it posts again: one message per match, whatever happened. The teams
-- are kept here too: a closed match keeps none in active_matches, its message still shows them.
CREATE TABLE feed_messages (
    match_id text PRIMARY KEY CHECK (match_id <> ''),
    channel_id bigint NOT NULL,
    nonce text NOT NULL,
    posting boolean NOT NULL DEFAULT false,
    message_id bigint,
    competition text NOT NULL DEFAULT '',
    game text NOT NULL DEFAULT '',
    teams jsonb NOT NULL DEFAULT '[]'::jsonb,
    winner text NOT NULL DEFAULT '',
    score jsonb NOT NULL DEFAULT '[]'::jsonb,
    shown jsonb,
    shown_key text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
