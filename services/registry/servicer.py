"""RegistryService over gRPC: validates requests, calls the linker and repository, converts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import grpc
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_PAGE_TOKEN_BYTES
from services.kit.paging import decode_page_token, encode_page_token
from services.kit.timestamps import to_timestamp
from services.kit.validation import check_id
from services.registry.change_log import ChangeLogReader, ChangeNotifier
from services.registry.convert import change_to_pb, link_to_pb
from services.registry.link_flow import LinkFlow
from services.registry.linking import PlayerLinker
from services.registry.rules import (
    ChangesOutOfRange,
    LinkNotFound,
    NicknameNotFound,
    VerificationOff,
    VerificationRequired,
    distinct_player_ids,
    page_size,
    validate_discord_name,
    validate_discord_user_id,
    validate_nickname,
    validate_player_id,
)
from services.registry.settings import LinkVerification
from services.registry.store import Cursor, PlayerLinkRepository

CHANGE_BATCH = 500
"""Changes read per query while a watcher catches up."""


@dataclass(frozen=True)
class LinkChangeFeed:
    """What WatchLinkChanges reads and waits on, and its longest wait without a notification."""

    reader: ChangeLogReader
    notifier: ChangeNotifier
    poll_interval_s: float = 5.0


class RegistryServiceServicer(pb_grpc.RegistryServiceServicer):
    """The RegistryService RPCs; domain errors are mapped to status codes by the kit."""

    def __init__(
        self,
        repository: PlayerLinkRepository,
        linker: PlayerLinker,
        *,
        verification: LinkVerification,
        flow: LinkFlow | None,
        changes: LinkChangeFeed,
    ) -> None:
        self._repository = repository
        self._linker = linker
        self._verification = verification
        self._flow = flow
        self._changes = changes

    @property
    def _verified_only(self) -> bool:
        return self._verification is LinkVerification.FACEIT_OAUTH

    async def LinkPlayer(
        self, request: pb.LinkPlayerRequest, context: grpc.aio.ServicerContext
    ) -> pb.LinkPlayerResponse:
        """Link a Discord user to the FACEIT account with the given nickname (nickname mode)."""
        discord_user_id = validate_discord_user_id(request.discord_user_id)
        nickname = validate_nickname(request.faceit_nickname)
        if self._verified_only:
            raise VerificationRequired()
        try:
            outcome = await self._linker.link(discord_user_id, nickname)
        except NicknameNotFound as error:
            # The kit's error mapping keeps trailing metadata set here when it aborts.
            context.set_trailing_metadata(error.trailing_metadata)
            raise
        return pb.LinkPlayerResponse(link=link_to_pb(outcome.link), created=outcome.created)

    async def UnlinkPlayer(
        self, request: pb.UnlinkPlayerRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnlinkPlayerResponse:
        """Remove a Discord user's link."""
        discord_user_id = validate_discord_user_id(request.discord_user_id)
        removed = await self._repository.delete(discord_user_id)
        if removed is None:
            raise LinkNotFound(f"Discord user {discord_user_id} has no FACEIT link")
        return pb.UnlinkPlayerResponse(link=link_to_pb(removed))

    async def GetPlayerLink(
        self, request: pb.GetPlayerLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPlayerLinkResponse:
        """One link, by Discord user or by FACEIT player."""
        key = request.WhichOneof("key")
        if key == "discord_user_id":
            discord_user_id = validate_discord_user_id(request.discord_user_id)
            link = await self._repository.by_discord_user(discord_user_id)
            missing = f"Discord user {discord_user_id} has no FACEIT link"
        elif key == "faceit_player_id":
            player_id = validate_player_id(request.faceit_player_id)
            link = await self._repository.by_faceit_player(player_id)
            missing = f"FACEIT player {player_id} is not linked"
        else:
            raise InvalidArgument("set discord_user_id or faceit_player_id")
        if link is None:
            raise LinkNotFound(missing)
        return pb.GetPlayerLinkResponse(link=link_to_pb(link))

    async def ResolvePlayers(
        self, request: pb.ResolvePlayersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolvePlayersResponse:
        """The links of many FACEIT players, in the order first asked, in one SQL statement;
        only verified ones when links must be verified (only they give channel access)."""
        player_ids = distinct_player_ids(request.faceit_player_ids)
        resolved = await self._repository.resolve(player_ids, verified_only=self._verified_only)
        found = {link.account.player_id: link for link in resolved}
        links = [link_to_pb(found[player_id]) for player_id in player_ids if player_id in found]
        return pb.ResolvePlayersResponse(links=links)

    async def ListPlayerLinks(
        self, request: pb.ListPlayerLinksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlayerLinksResponse:
        """One page of links, oldest first."""
        size = page_size(request.page_size)
        token = check_id(request.page_token, "page_token", max_bytes=MAX_PAGE_TOKEN_BYTES)
        after = Cursor(*decode_page_token(token, datetime, int)) if token else None
        # One extra row tells whether a next page exists, so the last page has no token.
        links = await self._repository.page(after, size + 1)
        page, more = links[:size], len(links) > size
        next_token = ""
        if more:
            last = page[-1]
            next_token = encode_page_token(last.linked_at, last.discord_user_id)
        return pb.ListPlayerLinksResponse(
            links=[link_to_pb(link) for link in page], next_page_token=next_token
        )

    async def StartLink(
        self, request: pb.StartLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartLinkResponse:
        """A one-time link page URL for the Discord user (faceit_oauth mode)."""
        discord_user_id = validate_discord_user_id(request.discord_user_id)
        display_name = validate_discord_name(
            request.discord_display_name, "discord_display_name", required=True
        )
        username = validate_discord_name(
            request.discord_username, "discord_username", required=False
        )
        if self._flow is None:
            raise VerificationOff()
        url, expires_at = await self._flow.start(discord_user_id, display_name, username)
        return pb.StartLinkResponse(url=url, expires_at=to_timestamp(expires_at))

    async def WatchLinkChanges(
        self, request: pb.WatchLinkChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchLinkChangesResponse]:
        """Every change after `after_sequence`, then each new one, until the caller cancels."""
        after = request.after_sequence
        if after < 0:
            raise InvalidArgument(f"after_sequence must be 0 or more, got {after}")
        pruned, latest = await self._changes.reader.bounds()
        if after > latest:
            raise ChangesOutOfRange(
                f"after_sequence {after} was never issued (the last is {latest}): reread "
                "every link with ListPlayerLinks and watch from 0"
            )
        if 0 < after < pruned:
            raise ChangesOutOfRange(
                f"changes up to {pruned} were pruned, so those after {after} are incomplete: "
                "reread every link with ListPlayerLinks and watch from 0"
            )
        # Headers now, not with the first change: the caller knows the stream is established.
        await context.send_initial_metadata(())
        woken_by = None
        while True:
            # The event is taken before the changes are looked at: a change committed after
            # that sets it, so no wake-up is missed. After a notification its changes usually
            # came with it; the log is read at the start, after a poll, and when they did not.
            notifier = self._changes.notifier
            notified = await notifier.next_notification()
            pushed = None if woken_by is None else notifier.pushed_after(after, woken_by)
            batch = (
                await self._changes.reader.after(after, CHANGE_BATCH) if pushed is None else pushed
            )
            for change in batch:
                yield pb.WatchLinkChangesResponse(change=change_to_pb(change))
                after = change.sequence
            woken_by = None
            if pushed is not None or len(batch) < CHANGE_BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notified.wait(), self._changes.poll_interval_s)
                    woken_by = notified
