-- Where the poller's round over the open matches stands: each poll checks the matches after
-- this one (in match id order, wrapping around) as far as its request budget goes, so every
-- open match is checked within ceil(open / budget) polls, across restarts and replicas.
CREATE TABLE poll_cursor (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_checked_match_id text NOT NULL
);
