-- A match event at a version is one event only among webhooks: the poller's events carry the
-- version voice holds, not one of their own, so a poll that reads new rosters in the same
-- status at that version is a new event. Poll events are told apart by their event_id alone
-- (what the poll read: status and rosters), which the events_event_id_key already keeps unique.
DROP INDEX events_match_event_version_key;

CREATE UNIQUE INDEX events_webhook_match_event_version_key
    ON events (match_id, event, version) WHERE match_id <> '' AND source = 'WEBHOOK';
