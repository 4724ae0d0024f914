"""The ingest side of the VoiceService seam: the calls ingest makes, each with a deadline."""

from __future__ import annotations

from faceitvoice.v1 import match_pb2, voice_service_pb2, voice_service_pb2_grpc


class VoiceClient:
    """OpenMatch, CloseMatch and the listing the poller needs, each with a deadline.

    Auth metadata comes from the channel (see `services.kit.grpc_client.GrpcClients`). With
    `wait_for_ready` (a target of several voice replicas, of which one serves), a call waits
    within its deadline for a replica that serves, instead of failing at once while a standby
    takes over.
    """

    def __init__(
        self,
        stub: voice_service_pb2_grpc.VoiceServiceStub,
        *,
        deadline_s: float,
        wait_for_ready: bool = False,
    ) -> None:
        self._stub = stub
        self._deadline_s = deadline_s
        self._wait_for_ready = wait_for_ready

    async def open_match(self, match: match_pb2.Match) -> voice_service_pb2.OpenMatchResponse:
        """OpenMatch with the match as now known."""
        return await self._stub.OpenMatch(
            voice_service_pb2.OpenMatchRequest(match=match),
            timeout=self._deadline_s,
            wait_for_ready=self._wait_for_ready,
        )

    async def close_match(
        self,
        match_id: str,
        version: int,
        reason: str,
        results: match_pb2.MatchResults | None = None,
    ) -> voice_service_pb2.CloseMatchResponse:
        """CloseMatch for `match_id` at `version`, with the results when known."""
        return await self._stub.CloseMatch(
            voice_service_pb2.CloseMatchRequest(
                match_id=match_id, version=version, reason=reason, results=results
            ),
            timeout=self._deadline_s,
            wait_for_ready=self._wait_for_ready,
        )

    async def list_open_matches(self, page_size: int = 500) -> list[voice_service_pb2.VoiceMatch]:
        """Every match voice holds open, all pages."""
        matches: list[voice_service_pb2.VoiceMatch] = []
        token = ""
        while True:
            page = await self._stub.ListMatches(
                voice_service_pb2.ListMatchesRequest(page_size=page_size, page_token=token),
                timeout=self._deadline_s,
                wait_for_ready=self._wait_for_ready,
            )
            matches.extend(page.matches)
            token = page.next_page_token
            if not token:
                return matches

    async def check(self, timeout_s: float) -> None:
        """Raise grpc.aio.AioRpcError unless voice answers a one-item ListMatches in time."""
        await self._stub.ListMatches(
            voice_service_pb2.ListMatchesRequest(page_size=1),
            timeout=timeout_s,
        )
