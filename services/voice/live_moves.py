"""Live voice moves during a match: players brought into their team channel, trespassers out."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.kit.errors import DomainError
from services.kit.logging import log_context
from services.voice.cache import ActiveMatchCache
from services.voice.discord_port import DiscordPort, NotInVoice
from services.voice.locks import KeyedLocks
from services.voice.placement import PlayerPlacement
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)


class LiveMoves:
    """Reacts to every voice move in the guild, reading the cache; writes only left-on-purpose."""

    def __init__(
        self,
        store: VoiceStore,
        cache: ActiveMatchCache,
        discord: DiscordPort,
        placement: PlayerPlacement,
        locks: KeyedLocks,
    ) -> None:
        self._store = store
        self._cache = cache
        self._discord = discord
        self._placement = placement
        self._locks = locks

    async def voice_changed(self, user_id: int, before: int | None, after: int | None) -> None:
        """React to a member's voice move: bring match players into their team channel.

        Whoever arrives in a team channel they may not join is moved out (players of the team,
        staff and administrators may): the gateway may
        report a move into the channel only after the member's access was taken, too late
        for the change itself to see them inside.
        """
        if after is None or before == after:
            return
        lobby = self._placement.lobby_channel_id
        arrived_in = self._cache.team_channel(after)
        if arrived_in is not None:
            record, team = arrived_in
            if not (
                user_id in team.member_ids
                or self._discord.sees_every_channel(user_id)
                or self._discord.may_join(user_id, after)
            ):
                with log_context(match_id=record.match_id):
                    if await self._placement.moves([(user_id, lobby)]):
                        logger.info("moved %s out of team channel %s: no access", user_id, after)
                return
        seat = self._cache.seat_of(user_id)
        if seat is None:
            return
        with log_context(match_id=seat.match_id):
            if before == seat.channel_id:
                await self._set_left(seat.match_id, user_id, left=True)
                logger.info("player %s switched away from the team channel", user_id)
                return
            if after == seat.channel_id:
                if self._cache.left_on_purpose(seat.match_id, user_id):
                    await self._set_left(seat.match_id, user_id, left=False)
                return
            if before is not None and after != lobby:
                return
            if self._cache.left_on_purpose(seat.match_id, user_id):
                return
            try:
                await self._discord.move(user_id, seat.channel_id)
            except (NotInVoice, DomainError) as error:
                logger.warning("could not move %s into the team channel: %r", user_id, error)
                return
            logger.info("moved player %s into the team channel", user_id)

    async def _set_left(self, match_id: str, user_id: int, *, left: bool) -> None:
        async with self._locks.hold(match_id):
            await self._store.set_left_on_purpose(match_id, user_id, left)
            record = self._cache.get(match_id)
            if record is not None:
                users = (
                    record.left_on_purpose | {user_id}
                    if left
                    else record.left_on_purpose - {user_id}
                )
                self._cache.put(replace(record, left_on_purpose=users))
