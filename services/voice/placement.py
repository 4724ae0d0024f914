"""Player placement: who is moved into a team channel, out of one, or to the lobby."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence

from services.kit.errors import DomainError
from services.voice.cache import ActiveMatchCache
from services.voice.discord_port import DiscordPort, NotInVoice
from services.voice.model import (
    MatchRecord,
    Placement,
    PlacementOutcome,
    Player,
    Team,
    TeamChannel,
    players_on_both_teams,
)

logger = logging.getLogger(__name__)


class PlayerPlacement:
    """Moves players between voice channels for the match logic; never touches the database."""

    def __init__(
        self, discord: DiscordPort, cache: ActiveMatchCache, lobby_channel_id: int | None
    ) -> None:
        self._discord = discord
        self._cache = cache
        self.lobby_channel_id = lobby_channel_id

    async def place(
        self, record: MatchRecord, teams: Sequence[Team], links: Mapping[str, int]
    ) -> tuple[Placement, ...]:
        """Move each rostered player who waits in voice into their team's channel."""
        return tuple(await self.start_placing(record, teams, links))

    def start_placing(
        self, record: MatchRecord, teams: Sequence[Team], links: Mapping[str, int]
    ) -> asyncio.Future[list[Placement]]:
        """`place`, its moves started now: a task each, created before whatever the caller
        starts next, so the moves go out first."""
        on_both = players_on_both_teams(teams)
        return asyncio.gather(
            *(
                self._place_one(
                    record, record.channel(team.faction), team.faction, p, links, on_both
                )
                for team in teams
                for p in team.roster
            )
        )

    async def _place_one(
        self,
        record: MatchRecord,
        channel: TeamChannel | None,
        faction: str,
        player: Player,
        links: Mapping[str, int],
        on_both: Collection[str],
    ) -> Placement:
        faceit_id = player.faceit_player_id
        uid = links.get(faceit_id)

        def placed(outcome: PlacementOutcome, reason: str = "") -> Placement:
            return Placement(faceit_id, player.nickname, faction, uid or 0, outcome, reason)

        if faceit_id in on_both:
            return placed(
                PlacementOutcome.FAILED, "listed on both teams' rosters: access to neither channel"
            )
        if uid is None:
            return placed(PlacementOutcome.SKIPPED_NOT_LINKED, "no Discord account is linked")
        if channel is None or channel.channel_id is None or uid not in channel.member_ids:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_GUILD, "the linked user is not in the guild"
            )
        current = self._discord.voice_channel_of(uid)
        if current is None:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_VOICE, "not connected to voice; has access"
            )
        if current == channel.channel_id:
            return placed(PlacementOutcome.ALREADY_THERE)
        if uid in record.left_on_purpose:
            return placed(
                PlacementOutcome.SKIPPED_LEFT_ON_PURPOSE, "left the team channel on purpose"
            )
        try:
            await self._discord.move(uid, channel.channel_id)
        except NotInVoice:
            return placed(
                PlacementOutcome.SKIPPED_NOT_IN_VOICE, "not connected to voice; has access"
            )
        except DomainError as error:
            logger.warning("could not move %s: %s", uid, error.message)
            return placed(PlacementOutcome.FAILED, error.message)
        return placed(PlacementOutcome.MOVED)

    async def place_waiting(self, record: MatchRecord) -> int:
        """Move the match's players who are in voice outside their team channel into it; how
        many were moved.

        Heals placements judged while voice states were stale (before the gateway was ready,
        or during a disconnect). Players who left on purpose, and those whose seat is in a more
        recent match, stay where they are.
        """
        moves = []
        for channel in record.channels:
            if channel.channel_id is None:
                continue
            for uid in sorted(channel.member_ids - record.left_on_purpose):
                current = self._discord.voice_channel_of(uid)
                seat = self._cache.seat_of(uid)
                if current is None or current == channel.channel_id:
                    continue
                if seat is None or seat.match_id != record.match_id:
                    continue
                moves.append((uid, channel.channel_id))
        results = await asyncio.gather(
            *(self._discord.move(uid, target) for uid, target in moves), return_exceptions=True
        )
        for (uid, _), result in zip(moves, results, strict=True):
            if isinstance(result, NotInVoice | DomainError):
                logger.warning("could not move %s into the team channel: %r", uid, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                logger.info("moved player %s into the team channel on reconciliation", uid)
        return sum(not isinstance(result, BaseException) for result in results)

    async def moves(self, moves: Sequence[tuple[int, int | None]]) -> int:
        """Make the moves concurrently (to None: disconnect); how many succeeded. Logs failures."""
        results = await asyncio.gather(
            *(self._discord.move(uid, target) for uid, target in moves), return_exceptions=True
        )
        for (uid, target), result in zip(moves, results, strict=True):
            if isinstance(result, NotInVoice):
                continue  # left voice meanwhile: nothing to move
            if isinstance(result, BaseException):
                logger.warning("could not move %s to %s: %r", uid, target, result)
        return sum(not isinstance(result, BaseException) for result in results)

    async def move_out(self, channel_id: int, lost: Collection[int]) -> None:
        """Move those of `lost` who sit in the channel to the lobby, or disconnect them.

        Discord leaves a member connected to a channel they can no longer see, so taking an
        overwrite away is not enough to take them out.
        """
        inside = [uid for uid in self._discord.occupants(channel_id) if uid in lost]
        moved = await self.moves([(uid, self.lobby_channel_id) for uid in inside])
        if inside:
            logger.info(
                "moved %s of %s players out of channel %s: access taken",
                moved,
                len(inside),
                channel_id,
            )

    async def to_lobby(self, channel_id: int) -> int:
        """Move a closing channel's occupants to the lobby (deleting it disconnects them else)."""
        lobby = self.lobby_channel_id
        if lobby is None:
            return 0
        return await self.moves([(uid, lobby) for uid in self._discord.occupants(channel_id)])

    async def replace_occupants(
        self, previous: int, current: int, allowed: Collection[int]
    ) -> None:
        """Move the allowed occupants of `previous` into `current`, the others out.

        Only players allowed in a channel (and staff) are ever moved into it: whoever sits in
        the old channel without access to the new one (they just lost it, or never had it)
        leaves.
        """
        occupants = self._discord.occupants(previous)
        await self.moves(
            [
                (
                    uid,
                    current
                    if uid in allowed or self._discord.is_staff(uid)
                    else self.lobby_channel_id,
                )
                for uid in occupants
            ]
        )
