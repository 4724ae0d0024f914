"""The registry's records: a FACEIT account as shown to users, and a link to a Discord user."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.kit.faceit_models import FaceitPlayer


@dataclass(frozen=True)
class FaceitAccount:
    """A FACEIT account and the profile seen when it was linked, for one game."""

    player_id: str
    nickname: str
    avatar_url: str = ""
    country: str = ""
    game: str = ""
    skill_level: int = 0
    faceit_elo: int = 0
    faceit_url: str = ""


@dataclass(frozen=True)
class PlayerLink:
    """One Discord user linked to one FACEIT account."""

    discord_user_id: int
    account: FaceitAccount
    linked_at: datetime
    verified_at: datetime | None = None
    """When the Discord user proved they own the account (FACEIT Connect); None: by nickname."""

    @property
    def verified(self) -> bool:
        """Whether the Discord user proved they own the FACEIT account."""
        return self.verified_at is not None


def link_from_row(row: Mapping[str, Any]) -> PlayerLink:
    """A link from a row with player_links' column names (player_links or link_changes)."""
    return PlayerLink(
        discord_user_id=row["discord_user_id"],
        account=FaceitAccount(
            player_id=row["faceit_player_id"],
            nickname=row["faceit_nickname"],
            avatar_url=row["avatar_url"],
            country=row["country"],
            game=row["game"],
            skill_level=row["skill_level"],
            faceit_elo=row["faceit_elo"],
            faceit_url=row["faceit_url"],
        ),
        linked_at=row["linked_at"],
        verified_at=row["verified_at"],
    )


def profile_columns(account: FaceitAccount) -> tuple[str, str, str, str, int, int, str]:
    """The profile columns of `account` (those after faceit_player_id), in table order."""
    return (
        account.nickname,
        account.avatar_url,
        account.country,
        account.game,
        account.skill_level,
        account.faceit_elo,
        account.faceit_url,
    )


def account_from_player(player: FaceitPlayer, game: str) -> FaceitAccount:
    """The account of a Data API player, with level and elo of `game` (0 if never played)."""
    profile = player.games.get(game)
    return FaceitAccount(
        player_id=player.player_id,
        nickname=player.nickname,
        avatar_url=player.avatar,
        country=player.country,
        game=game,
        skill_level=profile.skill_level if profile else 0,
        faceit_elo=profile.faceit_elo if profile else 0,
        faceit_url=player.profile_url(),
    )


class ChangeKind(StrEnum):
    """Whether a change made a link or removed one (the value stored in link_changes.kind)."""

    LINKED = "linked"
    UNLINKED = "unlinked"


@dataclass(frozen=True)
class LinkChange:
    """One entry of the change log: a link made, or a link removed (as it was)."""

    sequence: int
    kind: ChangeKind
    link: PlayerLink
    changed_at: datetime
