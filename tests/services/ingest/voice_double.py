"""A VoiceService test double served over real gRPC: records calls, can fail or go away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import grpc.aio
from faceitvoice.v1 import voice_service_pb2, voice_service_pb2_grpc


@dataclass(frozen=True)
class VoiceCall:
    """One call the double answered: the RPC, the match and the version."""

    rpc: str
    match_id: str
    version: int
    request: object


class VoiceDouble(voice_service_pb2_grpc.VoiceServiceServicer):
    """Keeps open matches in memory; `fail_with` makes every mutating call fail with that code.

    While `gate` is set to an unset event, OpenMatch and CloseMatch calls wait for it; with
    `delay_s` each takes that long (a slow voice service); `in_flight` counts the waiting ones,
    `peak_in_flight` the most that ever waited at once.
    """

    def __init__(self) -> None:
        self.calls: list[VoiceCall] = []
        self.matches: dict[str, voice_service_pb2.VoiceMatch] = {}
        self.fail_with: grpc.StatusCode | None = None
        self.gate: asyncio.Event | None = None
        self.delay_s = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0

    def calls_of(self, match_id: str) -> list[VoiceCall]:
        """The calls about one match, in order."""
        return [call for call in self.calls if call.match_id == match_id]

    async def _refuse(self, context: grpc.aio.ServicerContext) -> None:
        if self.fail_with is not None:
            await context.abort(self.fail_with, f"told to answer {self.fail_with.name}")

    async def _hold(self) -> None:
        if self.gate is None and not self.delay_s:
            return
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay_s)  # the slow voice service this double plays
        finally:
            self.in_flight -= 1

    async def OpenMatch(
        self, request: voice_service_pb2.OpenMatchRequest, context: grpc.aio.ServicerContext
    ) -> voice_service_pb2.OpenMatchResponse:
        await self._refuse(context)
        await self._hold()
        match = request.match
        self.calls.append(VoiceCall("OpenMatch", match.match_id, match.version, request))
        current = self.matches.get(match.match_id)
        if current is not None and current.version > match.version:
            return voice_service_pb2.OpenMatchResponse(
                outcome=voice_service_pb2.OPEN_OUTCOME_STALE, match=current
            )
        self.matches[match.match_id] = voice_service_pb2.VoiceMatch(
            match_id=match.match_id,
            version=match.version,
            state=voice_service_pb2.VOICE_MATCH_STATE_OPEN,
        )
        outcome = (
            voice_service_pb2.OPEN_OUTCOME_OPENED
            if current is None
            else voice_service_pb2.OPEN_OUTCOME_UPDATED
        )
        return voice_service_pb2.OpenMatchResponse(
            outcome=outcome, match=self.matches[match.match_id]
        )

    async def CloseMatch(
        self, request: voice_service_pb2.CloseMatchRequest, context: grpc.aio.ServicerContext
    ) -> voice_service_pb2.CloseMatchResponse:
        await self._refuse(context)
        await self._hold()
        self.calls.append(VoiceCall("CloseMatch", request.match_id, request.version, request))
        self.matches[request.match_id] = voice_service_pb2.VoiceMatch(
            match_id=request.match_id,
            version=request.version,
            state=voice_service_pb2.VOICE_MATCH_STATE_CLOSED,
            close_reason=request.reason,
        )
        return voice_service_pb2.CloseMatchResponse(
            outcome=voice_service_pb2.CLOSE_OUTCOME_CLOSED, match=self.matches[request.match_id]
        )

    async def GetMatch(
        self, request: voice_service_pb2.GetMatchRequest, context: grpc.aio.ServicerContext
    ) -> voice_service_pb2.GetMatchResponse:
        match = self.matches.get(request.match_id)
        if match is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no match {request.match_id}")
        return voice_service_pb2.GetMatchResponse(match=match)

    async def ListMatches(
        self, request: voice_service_pb2.ListMatchesRequest, context: grpc.aio.ServicerContext
    ) -> voice_service_pb2.ListMatchesResponse:
        await self._refuse(context)
        size = request.page_size or 100
        start = int(request.page_token or 0)
        open_matches = [
            match
            for match in self.matches.values()
            if match.state == voice_service_pb2.VOICE_MATCH_STATE_OPEN
        ]
        page = open_matches[start : start + size]
        token = str(start + size) if start + size < len(open_matches) else ""
        return voice_service_pb2.ListMatchesResponse(matches=page, next_page_token=token)


class VoiceDoubleServer:
    """Serves a VoiceDouble on 127.0.0.1; `stop()` and `start()` again keep the same port."""

    def __init__(self, double: VoiceDouble | None = None) -> None:
        self.double = double or VoiceDouble()
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>` (only once started)."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Serve (on the previous port after a stop); the address."""
        server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
        voice_service_pb2_grpc.add_VoiceServiceServicer_to_server(self.double, server)
        bound = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if bound == 0:
            raise OSError(f"could not bind the voice double to port {self.port}")
        await server.start()
        self.port, self._server = bound, server
        return self.address

    async def stop(self) -> None:
        """Stop serving: calls fail with UNAVAILABLE until start()."""
        if self._server is not None:
            await self._server.stop(None)
            self._server = None


@asynccontextmanager
async def served_voice_double() -> AsyncIterator[VoiceDoubleServer]:
    """A VoiceDouble served on a free port until the block ends."""
    server = VoiceDoubleServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
