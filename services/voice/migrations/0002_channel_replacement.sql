-- A channel whose access cannot be edited in place (no MANAGE_ROLES) is replaced by a new one:
-- the old id is kept here until its occupants are moved over and it is deleted.
ALTER TABLE match_channels ADD COLUMN previous_channel_id bigint UNIQUE;
