"""Input limits every boundary enforces (webhook: 422, gRPC: INVALID_ARGUMENT).

Each comes from a limit of FACEIT or Discord, so that nothing a real platform can send is
refused, and nothing much larger reaches memory, a log line or a Postgres index (a btree row
holds at most 2,704 bytes). `docs/security.md` lists them for operators.
"""

from __future__ import annotations

MAX_ID_BYTES = 128
"""FACEIT ids (player, team, match, hub, event) are UUIDs of 36 ASCII bytes, match ids `1-`
plus a UUID; Discord snowflakes are at most 20 digits. 128 bytes leaves room for any prefix
FACEIT may add, far below the index limit, and is counted in UTF-8 bytes, not characters."""

MAX_NAME_CHARS = 100
"""Team names, nicknames and competition names end up in channel names and embeds: Discord
caps a channel name at 100 characters (FACEIT nicknames are at most 12)."""

MAX_TEXT_CHARS = 1_000
"""Other free text from FACEIT (region, game, competition type, timestamps)."""

MAX_REASON_CHARS = 512
"""A close reason travels as Discord's `X-Audit-Log-Reason`, which holds 512 characters."""

MAX_PLAYERS_PER_TEAM = 99
"""A Discord voice channel's `user_limit` tops out at 99; a FACEIT team is at most 5 in CS2
(and no game on FACEIT fields more than 10 a side, substitutes included)."""

MAX_TEAMS_PER_MATCH = 2
"""A FACEIT match has exactly two factions, `faction1` and `faction2`."""

MAX_IDS_PER_CALL = 1_000
"""Ids one call may name (ResolvePlayers): a match has at most 2 x 99 players, and a caller
with more splits them into calls of this size."""

MAX_PAGE_TOKEN_BYTES = 1_024
"""A page token is one this service made: a key (at most MAX_ID_BYTES, escaped in JSON) and a
timestamp, base64-encoded; anything longer cannot be one."""
