"""VoiceServiceServicer: the gRPC face of MatchService; the kit interceptor maps its errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc.aio
from faceitvoice.v1 import voice_service_pb2 as pb
from faceitvoice.v1 import voice_service_pb2_grpc as pb_grpc

from services.kit.errors import InvalidArgument
from services.voice.convert import (
    close_result_to_pb,
    match_from_pb,
    match_to_pb,
    open_result_to_pb,
)
from services.voice.matches import MatchService


class VoiceServiceServicer(pb_grpc.VoiceServiceServicer):
    """Serves OpenMatch, CloseMatch, GetMatch and ListMatches.

    OpenMatch and CloseMatch act on voice states, so they first await `ready()` (the gateway
    session; it raises Unavailable when the session does not come in time).
    """

    def __init__(self, matches: MatchService, ready: Callable[[], Awaitable[None]]) -> None:
        self._matches = matches
        self._ready = ready

    async def OpenMatch(
        self, request: pb.OpenMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenMatchResponse:
        if not request.HasField("match"):
            raise InvalidArgument("match is required")
        await self._ready()
        result = await self._matches.open_match(match_from_pb(request.match))
        return open_result_to_pb(result)

    async def CloseMatch(
        self, request: pb.CloseMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseMatchResponse:
        await self._ready()
        result = await self._matches.close_match(
            request.match_id.strip(), request.version, request.reason
        )
        return close_result_to_pb(result)

    async def GetMatch(
        self, request: pb.GetMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMatchResponse:
        record = await self._matches.get_match(request.match_id.strip())
        return pb.GetMatchResponse(match=match_to_pb(record))

    async def ListMatches(
        self, request: pb.ListMatchesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMatchesResponse:
        records, token = await self._matches.list_matches(request.page_size, request.page_token)
        return pb.ListMatchesResponse(
            matches=[match_to_pb(r) for r in records], next_page_token=token
        )
