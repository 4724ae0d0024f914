"""The match feed: one message per match in a text channel, posted when it opens and edited
as it changes and ends, by a worker of its own beside the channel work.

`changed()` only queues the match (nothing waits for Discord on the way to a channel or a move).
The worker shows each queued match as voice now holds it, so repeated, late or reordered events
change nothing once shown. Exactly one message per match: the row is written before the post,
marked `posting` just before it, and a row found `posting` without a message id (a restart
between the post and its record) makes the worker look for the message, by the post's nonce and
among the channel's latest messages, before it posts again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import discord

from services.kit.logging import log_context
from services.voice.discord_errors import DISCORD_ERRORS
from services.voice.feed_discord import FeedChannel, MessageGone
from services.voice.feed_render import FeedFacts, outcome, render
from services.voice.feed_store import FeedStore, shown_key
from services.voice.known_links import PlayerResolver
from services.voice.model import MatchResults, MatchSpec
from services.voice.planning import player_ids
from services.voice.store import VoiceStore

logger = logging.getLogger(__name__)


def new_nonce() -> str:
    """A message nonce (Discord allows 25 characters)."""
    return secrets.token_hex(12)


class MatchFeedWorker:
    """Keeps the feed channel's message of each match in line with the match."""

    def __init__(
        self,
        store: FeedStore,
        matches: VoiceStore,
        resolver: PlayerResolver,
        channel: FeedChannel,
        channel_id: int,
        *,
        retry_base_s: float = 1.0,
        retry_cap_s: float = 300.0,
    ) -> None:
        self._store = store
        self._matches = matches
        self._resolver = resolver
        self._channel = channel
        self._channel_id = channel_id
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._facts: dict[str, tuple[FeedFacts, bool]] = {}
        """What events said of queued matches, and whether they brought results."""
        self._failures: dict[str, int] = {}
        self._retries: set[asyncio.TimerHandle] = set()

    def changed(
        self,
        match_id: str,
        *,
        spec: MatchSpec | None = None,
        results: MatchResults | None = None,
    ) -> None:
        """Queue the match for the worker, with what the event said of it."""
        self._remember(match_id, spec_facts(spec), results)
        self._enqueue(match_id)

    def _remember(self, match_id: str, facts: FeedFacts, results: MatchResults | None) -> None:
        known, has_results = self._facts.get(match_id, (FeedFacts(), False))
        merged = FeedFacts(
            competition=facts.competition or known.competition,
            game=facts.game or known.game,
            results=results or known.results,
            teams=facts.teams or known.teams,
        )
        self._facts[match_id] = (merged, has_results or results is not None)

    def _enqueue(self, match_id: str) -> None:
        if match_id not in self._queued:
            self._queued.add(match_id)
            self._queue.put_nowait(match_id)

    async def run(self) -> None:
        """Show what a restart left unshown, then every queued change, until cancelled."""
        try:
            for match_id in await self._unshown():
                self._enqueue(match_id)
            while True:
                match_id = await self._queue.get()
                self._queued.discard(match_id)
                await self._sync_logged(match_id)
        finally:
            for handle in self._retries:
                handle.cancel()

    async def _unshown(self) -> list[str]:
        """The matches a restart left behind; retried until the database answers."""
        attempt = 0
        while True:
            try:
                return await self._store.unshown()
            except Exception as error:
                attempt += 1
                delay = self._delay(attempt)
                logger.warning(
                    "match feed cannot read its state (%r); again in %.1fs", error, delay
                )
                await asyncio.sleep(delay)

    def _delay(self, attempt: int) -> float:
        return min(self._retry_cap_s, self._retry_base_s * 2 ** (attempt - 1))

    async def _sync_logged(self, match_id: str) -> None:
        """Sync one match; a failure is logged and the match tried again after a backoff."""
        facts, has_results = self._facts.pop(match_id, (FeedFacts(), False))
        with log_context(match_id=match_id):
            try:
                await self._sync(match_id, facts, has_results)
            except Exception as error:
                # Put back what this attempt took, under what events said since.
                newer, newer_results = self._facts.pop(match_id, (FeedFacts(), False))
                self._remember(match_id, facts, facts.results if has_results else None)
                self._remember(match_id, newer, newer.results if newer_results else None)
                attempt = self._failures[match_id] = self._failures.get(match_id, 0) + 1
                delay = self._delay(attempt)
                if isinstance(error, (*DISCORD_ERRORS, discord.DiscordException)):
                    logger.warning("feed message not updated (%r); retrying in %.1fs", error, delay)
                else:
                    logger.exception("feed message not updated; retrying in %.1fs", delay)
                self._retry_later(match_id, delay)
            else:
                self._failures.pop(match_id, None)

    def _retry_later(self, match_id: str, delay: float) -> None:
        def fire() -> None:
            self._retries.discard(handle)
            self._enqueue(match_id)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._retries.add(handle)

    async def _sync(self, match_id: str, facts: FeedFacts, has_results: bool) -> None:
        row = await self._store.record(match_id, self._channel_id, new_nonce(), facts, has_results)
        record = await self._matches.get_match(match_id)
        if record is None or record.opened_at is None:
            return  # closed before it ever opened: nothing to show
        teams = record.teams or row.facts.teams
        links = await self._resolver.resolve_players(player_ids(teams)) if teams else {}
        embed = render(record, row.facts, links)
        results = row.facts.results
        key = shown_key(record, results.winner if results else "")
        message_id = row.message_id
        if message_id is None and row.posting:
            message_id = await self._channel.find(row.channel_id, match_id)
            if message_id is not None:
                logger.info("feed message %s found again after a restart", message_id)
        if message_id is None:
            await self._store.posting(match_id)
            message_id = await self._channel.post(row.channel_id, embed, row.nonce)
            await self._store.shown(match_id, message_id, embed, key)
            logger.info("feed message %s posted: %s", message_id, outcome(record, row.facts))
            return
        if embed != row.shown:
            try:
                await self._channel.edit(row.channel_id, message_id, embed)
            except MessageGone:
                logger.warning("feed message %s was deleted in Discord; posting anew", message_id)
                await self._store.lost(match_id, new_nonce())
                self._enqueue(match_id)
                return
            logger.info("feed message %s edited: %s", message_id, outcome(record, row.facts))
        await self._store.shown(match_id, message_id, embed, key)


def spec_facts(spec: MatchSpec | None) -> FeedFacts:
    """What an open event says of the match beyond its teams."""
    if spec is None:
        return FeedFacts()
    return FeedFacts(competition=spec.competition, game=spec.game, teams=spec.teams)
