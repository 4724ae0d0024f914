"""RegistryService over gRPC: validates requests, calls the linker and repository, converts."""

from __future__ import annotations

import grpc
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_PAGE_TOKEN_BYTES
from services.kit.validation import check_id
from services.registry.convert import link_to_pb
from services.registry.linking import PlayerLinker
from services.registry.paging import Cursor, decode_page_token, encode_page_token
from services.registry.repository import PlayerLinkRepository
from services.registry.rules import (
    LinkNotFound,
    NicknameNotFound,
    distinct_player_ids,
    page_size,
    validate_discord_user_id,
    validate_nickname,
    validate_player_id,
)


class RegistryServiceServicer(pb_grpc.RegistryServiceServicer):
    """The RegistryService RPCs; domain errors are mapped to status codes by the kit."""

    def __init__(self, repository: PlayerLinkRepository, linker: PlayerLinker) -> None:
        self._repository = repository
        self._linker = linker

    async def LinkPlayer(
        self, request: pb.LinkPlayerRequest, context: grpc.aio.ServicerContext
    ) -> pb.LinkPlayerResponse:
        """Link a Discord user to the FACEIT account with the given nickname."""
        discord_user_id = validate_discord_user_id(request.discord_user_id)
        nickname = validate_nickname(request.faceit_nickname)
        try:
            outcome = await self._linker.link(discord_user_id, nickname)
        except NicknameNotFound as error:
            # The kit's error interceptor keeps trailing metadata set here when it aborts.
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
        """The links of many FACEIT players, in the order first asked, in one SQL statement."""
        player_ids = distinct_player_ids(request.faceit_player_ids)
        found = {
            link.account.player_id: link for link in await self._repository.resolve(player_ids)
        }
        links = [link_to_pb(found[player_id]) for player_id in player_ids if player_id in found]
        return pb.ResolvePlayersResponse(links=links)

    async def ListPlayerLinks(
        self, request: pb.ListPlayerLinksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlayerLinksResponse:
        """One page of links, oldest first."""
        size = page_size(request.page_size)
        token = check_id(request.page_token, "page_token", max_bytes=MAX_PAGE_TOKEN_BYTES)
        after = decode_page_token(token) if token else None
        # One extra row tells whether a next page exists, so the last page has no token.
        links = await self._repository.page(after, size + 1)
        page, more = links[:size], len(links) > size
        next_token = ""
        if more:
            last = page[-1]
            next_token = encode_page_token(Cursor(last.linked_at, last.discord_user_id))
        return pb.ListPlayerLinksResponse(
            links=[link_to_pb(link) for link in page], next_page_token=next_token
        )
