"""VoiceServiceServicer: the gRPC face of MatchService; the kit maps its errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc.aio
from faceitvoice.v1 import voice_service_pb2 as pb
from faceitvoice.v1 import voice_service_pb2_grpc as pb_grpc

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_PAGE_TOKEN_BYTES, MAX_REASON_CHARS
from services.kit.validation import check_id, check_text
from services.voice.convert import (
    close_result_to_pb,
    match_from_pb,
    match_to_pb,
    open_result_to_pb,
    results_from_pb,
)
from services.voice.lease import fenced_as_unavailable
from services.voice.matches import MatchService


class VoiceServiceServicer(pb_grpc.VoiceServiceServicer):
    """Serves OpenMatch, CloseMatch, GetMatch and ListMatches.

    OpenMatch and CloseMatch act on voice states, so they await `ready()` (the lease and the
    gateway session; it raises Unavailable when either is not there in time), but only once
    the request passed the input checks: a bad request is refused at once, ready or not. A
    write the lease's fence refuses (this replica was superseded meanwhile) is UNAVAILABLE too,
    so that the caller retries on the replica that serves. GetMatch and ListMatches answer on
    the active replica only (`active()` raises Unavailable on a standby).
    """

    def __init__(
        self,
        matches: MatchService,
        ready: Callable[[], Awaitable[None]],
        *,
        active: Callable[[], None],
    ) -> None:
        self._matches = matches
        self._ready = ready
        self._active = active

    async def OpenMatch(
        self, request: pb.OpenMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenMatchResponse:
        if not request.HasField("match"):
            raise InvalidArgument("match is required")
        spec = match_from_pb(request.match)
        await self._ready()
        with fenced_as_unavailable():
            result = await self._matches.open_match(spec)
        return open_result_to_pb(result)

    async def CloseMatch(
        self, request: pb.CloseMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseMatchResponse:
        match_id = check_id(request.match_id, "match_id").strip()
        reason = check_text(request.reason, "reason", MAX_REASON_CHARS)
        results = results_from_pb(request.results)
        await self._ready()
        with fenced_as_unavailable():
            result = await self._matches.close_match(match_id, request.version, reason, results)
        return close_result_to_pb(result)

    async def GetMatch(
        self, request: pb.GetMatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMatchResponse:
        match_id = check_id(request.match_id, "match_id").strip()
        self._active()
        record = await self._matches.get_match(match_id)
        return pb.GetMatchResponse(match=match_to_pb(record))

    async def ListMatches(
        self, request: pb.ListMatchesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMatchesResponse:
        page_token = check_id(request.page_token, "page_token", max_bytes=MAX_PAGE_TOKEN_BYTES)
        self._active()
        records, token = await self._matches.list_matches(request.page_size, page_token)
        return pb.ListMatchesResponse(
            matches=[match_to_pb(r) for r in records], next_page_token=token
        )
