"""FACEIT webhook bodies for the benchmarks (the real envelope) and an authenticated sender."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

TEAM_NAMES = ("Alpha", "Bravo")
IGNORED_HUB = "hub-not-in-faceit-hub-ids"


@dataclass(frozen=True)
class Roster:
    """A FACEIT player of a match: id and nickname."""

    player_id: str
    nickname: str


def match_event(
    event: str,
    match_id: str,
    *,
    version: int,
    hub_id: str,
    teams: Sequence[Sequence[Roster]] = (),
    event_id: str | None = None,
) -> dict[str, Any]:
    """A webhook in FACEIT's real envelope for one match event, with rosters."""
    return {
        "transaction_id": f"tx-{match_id}-{version}",
        "event": event,
        "event_id": event_id or f"{match_id}-{event}-{version}",
        "third_party_id": "bench",
        "app_id": "bench",
        "timestamp": "2025-01-01T00:00:00Z",
        "retry_count": 0,
        "version": 1,
        "payload": {
            "id": match_id,
            "organizer_id": "bench-organizer",
            "region": "EU",
            "game": "cs2",
            "version": version,
            "entity": {"id": hub_id, "name": "Bench hub", "type": "hub"},
            "teams": [
                {
                    "id": f"faction{index + 1}",
                    "name": TEAM_NAMES[index % len(TEAM_NAMES)],
                    "roster": [{"id": p.player_id, "nickname": p.nickname} for p in team],
                }
                for index, team in enumerate(teams)
            ],
        },
    }


def ack_body(prefix: str, index: int) -> bytes:
    """A distinct ready event of a hub ingest does not serve: stored, never delivered.

    Each one is a full authenticated insert in the inbox (status IGNORED) that wakes no
    delivery, so the ack path is measured without the delivery work beside it.
    """
    return json.dumps(
        match_event(
            "match_status_ready", f"{prefix}-{index}", version=1, hub_id=IGNORED_HUB, teams=_ROSTER
        )
    ).encode()


def unique_ack_bodies(prefix: str, count: int) -> list[bytes]:
    """`count` distinct ack bodies (see `ack_body`)."""
    return [ack_body(prefix, index) for index in range(count)]


_ROSTER = tuple(
    tuple(Roster(f"p{side}{n}", f"player_{side}_{n}") for n in range(5)) for side in "ab"
)


class WebhookSender:
    """Posts webhooks to ingest with the secret header, as FACEIT does."""

    def __init__(self, session: aiohttp.ClientSession, url: str, header: str, secret: str) -> None:
        self._session = session
        self._url = url
        self._headers = {header: secret, "Content-Type": "application/json"}

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Post one webhook; raise unless ingest answered 200; the answer's JSON.

        Sent again once when the server had closed the idle keep-alive connection it went out
        on (uvicorn closes one after 5 s; a post can cross that close): ingest stores an
        event once, so a second delivery is what FACEIT's own retries would be.
        """
        data = json.dumps(body)
        try:
            return await self._post(data)
        except aiohttp.ServerDisconnectedError:
            return await self._post(data)

    async def _post(self, data: str) -> dict[str, Any]:
        async with self._session.post(self._url, data=data, headers=self._headers) as r:
            answer: dict[str, Any] = await r.json(content_type=None)
            if r.status != 200:
                raise RuntimeError(f"webhook answered {r.status}: {answer}")
            return answer
