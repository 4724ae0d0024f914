"""LinkPlayer's work: find the FACEIT account by nickname, then let the database decide."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.kit.errors import Unavailable
from services.kit.faceit_api import FaceitApiClient, FaceitApiError, FaceitAuthError, FaceitNotFound
from services.registry.links import FaceitAccount, PlayerLink, account_from_player
from services.registry.rules import AccountLinkedElsewhere, NicknameNotFound, UnlinkFirst
from services.registry.store import AccountTaken, PlayerLinkRepository

logger = logging.getLogger(__name__)

# A link removed between our insert and our read is retried this often before giving up.
_INSERT_ATTEMPTS = 3

FACEIT_DOWN = {"dependency": "faceit"}
"""The details of an UNAVAILABLE that FACEIT caused, so callers do not blame a database outage
(also UNAVAILABLE, without details) on FACEIT."""


@dataclass(frozen=True)
class LinkOutcome:
    """The link as it now stands, and whether this call made it."""

    link: PlayerLink
    created: bool


class PlayerLinker:
    """Links Discord users to FACEIT accounts found by nickname in the FACEIT Data API."""

    def __init__(
        self,
        repository: PlayerLinkRepository,
        faceit: FaceitApiClient,
        *,
        game: str,
        suggestion_limit: int = 5,
    ) -> None:
        self._repository = repository
        self._faceit = faceit
        self._game = game
        self._suggestion_limit = suggestion_limit

    async def link(self, discord_user_id: int, nickname: str) -> LinkOutcome:
        """Link the user to the account called `nickname`; inputs must be validated already."""
        account = await self.find_account(nickname)
        for _ in range(_INSERT_ATTEMPTS):
            try:
                inserted = await self._repository.insert(discord_user_id, account)
            except AccountTaken:
                raise AccountLinkedElsewhere(account.nickname) from None
            if inserted is not None:
                logger.info(
                    "linked Discord user %s to FACEIT %s (%s)",
                    discord_user_id,
                    account.nickname,
                    account.player_id,
                )
                return LinkOutcome(inserted, created=True)
            existing = await self._repository.by_discord_user(discord_user_id)
            if existing is None:
                continue  # unlinked between the insert and the read: try the insert again
            if existing.account.player_id == account.player_id:
                return LinkOutcome(existing, created=False)
            raise UnlinkFirst(existing.account.nickname, account.nickname)
        raise Unavailable("the link kept changing while it was being made; try again")

    async def find_account(self, nickname: str) -> FaceitAccount:
        """The account called exactly `nickname`; NicknameNotFound with suggestions if none."""
        try:
            player = await self._faceit.get_player_by_nickname(nickname)
        except FaceitNotFound:
            raise NicknameNotFound(nickname, await self._suggestions(nickname)) from None
        except FaceitAuthError as error:
            logger.error("FACEIT refused the API key: %s", error.message)
            raise Unavailable(
                "FACEIT refused the registry's API key", details=FACEIT_DOWN
            ) from error
        except FaceitApiError as error:
            raise Unavailable(
                f"FACEIT could not be asked: {error.message}", details=FACEIT_DOWN
            ) from error
        return account_from_player(player, self._game)

    async def _suggestions(self, nickname: str) -> list[str]:
        try:
            results = await self._faceit.search_players(nickname, self._suggestion_limit)
        except FaceitApiError as error:
            logger.warning("no suggestions for %r: %s", nickname, error.message)
            return []
        return list(dict.fromkeys(result.nickname for result in results))
