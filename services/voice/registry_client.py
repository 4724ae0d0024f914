"""The registry as the voice service uses it: resolving rosters, /register's link calls, and
the stream of link changes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Sequence

import grpc
import grpc.aio
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from services.kit.call_errors import as_domain_error
from services.kit.call_wraps import ERROR_DETAILS_KEY
from services.kit.limits import MAX_IDS_PER_CALL

logger = logging.getLogger(__name__)

SUGGESTIONS_KEY = "faceitvoice-suggestions"


def _trailing(error: grpc.aio.AioRpcError, wanted: str) -> str | None:
    for key, value in error.trailing_metadata() or ():
        if key == wanted:
            return value.decode() if isinstance(value, bytes) else value
    return None


def faceit_is_down(error: grpc.aio.AioRpcError) -> bool:
    """Whether the registry's UNAVAILABLE was FACEIT's doing (its database's is not marked)."""
    text = _trailing(error, ERROR_DETAILS_KEY)
    try:
        details = json.loads(text) if text else {}
    except ValueError:
        return False
    return isinstance(details, dict) and details.get("dependency") == "faceit"


def suggestions(error: grpc.aio.AioRpcError) -> list[str]:
    """The close nicknames the registry attached to a NOT_FOUND LinkPlayer answer."""
    text = _trailing(error, SUGGESTIONS_KEY) or ""
    return [s.strip() for s in text.split(",") if s.strip()]


class RegistryClient:
    """RegistryService over one grpc.aio channel (auth and deadlines come with the channel)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.RegistryServiceStub(channel)

    async def resolve_players(self, faceit_player_ids: Sequence[str]) -> dict[str, int]:
        """FACEIT player id -> Discord user id for the linked ones, MAX_IDS_PER_CALL per call."""
        found: dict[str, int] = {}
        ids = list(dict.fromkeys(faceit_player_ids))
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[start : start + MAX_IDS_PER_CALL]
            try:
                response = await self._stub.ResolvePlayers(
                    pb.ResolvePlayersRequest(faceit_player_ids=chunk)
                )
            except grpc.aio.AioRpcError as error:
                raise as_domain_error(error, "registry", "resolve players") from error
            found.update({link.faceit_player_id: link.discord_user_id for link in response.links})
        return found

    async def link_player(self, discord_user_id: int, nickname: str) -> pb.LinkPlayerResponse:
        """LinkPlayer; raises the registry's AioRpcError for the caller to explain."""
        return await self._stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=discord_user_id, faceit_nickname=nickname)
        )

    async def unlink_player(self, discord_user_id: int) -> pb.UnlinkPlayerResponse:
        """UnlinkPlayer; raises the registry's AioRpcError (NOT_FOUND when there is no link)."""
        return await self._stub.UnlinkPlayer(
            pb.UnlinkPlayerRequest(discord_user_id=discord_user_id)
        )

    async def start_link(
        self, discord_user_id: int, display_name: str, username: str
    ) -> pb.StartLinkResponse:
        """StartLink; raises the registry's AioRpcError for the caller to explain."""
        return await self._stub.StartLink(
            pb.StartLinkRequest(
                discord_user_id=discord_user_id,
                discord_display_name=display_name,
                discord_username=username,
            )
        )

    async def watch_link_changes(
        self, after_sequence: int, timeout: float
    ) -> AsyncGenerator[pb.LinkChange]:
        """The link changes after `after_sequence`, for at most `timeout` seconds (a stream
        needs its own deadline: the channel's default is for single calls). Close it with
        `contextlib.aclosing` so that the call ends with the caller; raises AioRpcError."""
        call = self._stub.WatchLinkChanges(
            pb.WatchLinkChangesRequest(after_sequence=after_sequence), timeout=timeout
        )
        try:
            async for response in call:
                yield response.change
        finally:
            call.cancel()

    async def get_link(self, discord_user_id: int) -> pb.PlayerLink | None:
        """The user's link, or None; raises the registry's AioRpcError on other failures."""
        try:
            response = await self._stub.GetPlayerLink(
                pb.GetPlayerLinkRequest(discord_user_id=discord_user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return response.link
