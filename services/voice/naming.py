"""Names of the match channels (pure functions)."""

from __future__ import annotations

MAX_CHANNEL_NAME = 100
"""Discord's limit on channel names."""


def channel_name(match_id: str, team_name: str, other_team_name: str) -> str:
    """`Match {match_id[:8]}`, plus ` · {team_name}` when both teams have a name."""
    base = f"Match {match_id[:8]}"
    if team_name.strip() and other_team_name.strip():
        base = f"{base} · {team_name.strip()}"
    return base[:MAX_CHANNEL_NAME]
