-- A team channel's state was written but never read: a channel being created is one without a
-- channel_id, and one due for deletion belongs to a closed match.
ALTER TABLE match_channels DROP COLUMN state;
