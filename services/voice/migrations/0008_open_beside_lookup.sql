-- An open's channel intents are written beside the registry lookup, before the links (and so
-- the members) are known: their member_ids is NULL until the creates are settled. Only an
-- intent (no channel_id) may have unknown members; a channel made for it always has them.
ALTER TABLE match_channels ALTER COLUMN member_ids DROP NOT NULL;
ALTER TABLE match_channels ADD CONSTRAINT match_channels_members_known_once_made
    CHECK (member_ids IS NOT NULL OR channel_id IS NULL);
