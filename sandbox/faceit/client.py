"""Async client of the FACEIT sandbox control API (`/_sandbox/...`), one method per route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sandbox.http_client import SandboxHttpClient, SandboxHttpError


class SandboxControlError(SandboxHttpError):
    """The control API answered with an error status."""

    label = "FACEIT sandbox"


class FaceitSandboxClient(SandboxHttpClient):
    """Talks to a running FACEIT sandbox at `base_url` (e.g. `http://127.0.0.1:8123`).

    Use as `async with FaceitSandboxClient(url) as client:`, or pass your own `session`.
    """

    error = SandboxControlError

    async def create_player(
        self,
        nickname: str,
        *,
        player_id: str | None = None,
        skill_level: int | None = None,
        faceit_elo: int | None = None,
        avatar: str | None = None,
        country: str | None = None,
    ) -> dict[str, Any]:
        """`POST /_sandbox/players`: the new player in Data API shape."""
        body = _without_none(
            nickname=nickname,
            player_id=player_id,
            skill_level=skill_level,
            faceit_elo=faceit_elo,
            avatar=avatar,
            country=country,
        )
        result: dict[str, Any] = await self._call("POST", "/_sandbox/players", body)
        return result

    async def list_players(self) -> list[dict[str, Any]]:
        """`GET /_sandbox/players`."""
        result = await self._call("GET", "/_sandbox/players")
        return list(result["items"])

    async def create_match(
        self,
        teams: Sequence[Sequence[str]],
        *,
        match_id: str | None = None,
        hub_id: str | None = None,
        organizer_id: str | None = None,
        team_names: Sequence[str] | None = None,
        fill_rosters: bool | None = None,
        webhook: bool = True,
    ) -> dict[str, Any]:
        """`POST /_sandbox/matches`: `{"match_id", "status", "version", "rosters", ...}`."""
        body = _without_none(
            teams=[list(team) for team in teams],
            match_id=match_id,
            hub_id=hub_id,
            organizer_id=organizer_id,
            team_names=list(team_names) if team_names is not None else None,
            fill_rosters=fill_rosters,
            webhook=webhook,
        )
        result: dict[str, Any] = await self._call("POST", "/_sandbox/matches", body)
        return result

    async def get_match(self, match_id: str) -> dict[str, Any]:
        """`GET /_sandbox/matches/{id}`: the match in Data API shape (no auth, no faults)."""
        result: dict[str, Any] = await self._call("GET", f"/_sandbox/matches/{match_id}")
        return result

    async def set_status(
        self,
        match_id: str,
        status: str,
        *,
        webhook: bool = True,
        reason: str | None = None,
        afk: Sequence[str] | None = None,
        winner: str | None = None,
    ) -> dict[str, Any]:
        """`POST /_sandbox/matches/{id}/status`: `{"status", "version", "api_version", ...}`."""
        body = _without_none(
            status=status,
            webhook=webhook,
            reason=reason,
            afk=list(afk) if afk is not None else None,
            winner=winner,
        )
        result: dict[str, Any] = await self._call(
            "POST", f"/_sandbox/matches/{match_id}/status", body
        )
        return result

    async def play(
        self, match_id: str, steps: Sequence[str | dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`POST /_sandbox/matches/{id}/play`: one status result per step, in order."""
        result = await self._call(
            "POST", f"/_sandbox/matches/{match_id}/play", {"steps": list(steps)}
        )
        return list(result["steps"])

    async def subscribe(
        self,
        url: str,
        *,
        header_name: str | None = None,
        header_value: str | None = None,
        query_param: str | None = None,
        query_value: str | None = None,
    ) -> dict[str, Any]:
        """`POST /_sandbox/subscriptions`: the subscription (with its `subscription_id`)."""
        body = _without_none(
            url=url,
            header_name=header_name,
            header_value=header_value,
            query_param=query_param,
            query_value=query_value,
        )
        result: dict[str, Any] = await self._call("POST", "/_sandbox/subscriptions", body)
        return result

    async def list_subscriptions(self) -> list[dict[str, Any]]:
        """`GET /_sandbox/subscriptions`."""
        result = await self._call("GET", "/_sandbox/subscriptions")
        return list(result["items"])

    async def unsubscribe(self, subscription_id: str) -> None:
        """`DELETE /_sandbox/subscriptions/{id}`."""
        await self._call("DELETE", f"/_sandbox/subscriptions/{subscription_id}")

    async def get_faults(self) -> dict[str, Any]:
        """`GET /_sandbox/faults`."""
        result: dict[str, Any] = await self._call("GET", "/_sandbox/faults")
        return result

    async def set_faults(
        self,
        *,
        latency_ms: float | None = None,
        fail: Sequence[dict[str, Any]] | None = None,
        webhooks: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`POST /_sandbox/faults`; `fail` items are `{"status", "count", "route"?}`."""
        body = _without_none(
            latency_ms=latency_ms,
            fail=list(fail) if fail is not None else None,
            webhooks=webhooks,
        )
        result: dict[str, Any] = await self._call("POST", "/_sandbox/faults", body)
        return result

    async def fail_next(self, status: int, count: int = 1, *, route: str | None = None) -> None:
        """The next `count` Data API requests (of `route`, or any) get `status`."""
        await self.set_faults(fail=[_without_none(status=status, count=count, route=route)])

    async def clear_faults(self) -> dict[str, Any]:
        """`DELETE /_sandbox/faults`."""
        result: dict[str, Any] = await self._call("DELETE", "/_sandbox/faults")
        return result

    async def deliveries(self) -> dict[str, Any]:
        """`GET /_sandbox/deliveries`: `{"attempts", "dropped", "pending", "held", "failed"}`."""
        result: dict[str, Any] = await self._call("GET", "/_sandbox/deliveries")
        return result

    async def flush_deliveries(self) -> int:
        """`POST /_sandbox/deliveries/flush`: how many held deliveries were released."""
        result = await self._call("POST", "/_sandbox/deliveries/flush")
        return int(result["released"])

    async def wait_for_deliveries(
        self, *, within: float = 10.0, interval: float = 0.02
    ) -> dict[str, Any]:
        """Poll until no delivery is pending (held ones do not count); the final snapshot.

        Raises TimeoutError when deliveries are still pending after `within` seconds.
        """
        deadline = time.monotonic() + within
        while True:
            snapshot = await self.deliveries()
            if snapshot["pending"] == 0:
                return snapshot
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{snapshot['pending']} webhook deliveries still pending")
            await asyncio.sleep(interval)  # polling interval

    async def requests(self, route: str | None = None) -> dict[str, Any]:
        """`GET /_sandbox/requests`: `{"requests": [...], "counts": {route: {status: n}}}`."""
        params = {"route": route} if route else None
        result: dict[str, Any] = await self._call("GET", "/_sandbox/requests", params=params)
        return result

    async def clear_requests(self) -> None:
        """`DELETE /_sandbox/requests`."""
        await self._call("DELETE", "/_sandbox/requests")

    async def register_oauth_client(
        self, client_id: str, client_secret: str, redirect_uris: Sequence[str]
    ) -> dict[str, Any]:
        """`POST /_sandbox/oauth/clients`: registers (or replaces) a FACEIT Connect client."""
        body = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": list(redirect_uris),
        }
        result: dict[str, Any] = await self._call("POST", "/_sandbox/oauth/clients", body)
        return result

    async def add_oauth_fault(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        delay_ms: float | None = None,
    ) -> list[dict[str, Any]]:
        """`POST /_sandbox/oauth/faults`: the next `count` calls of `endpoint` (`token` or
        `userinfo`) go wrong as `kind` says (`status`, `delay`, `garbage`, `empty`, `no_guid`).
        """
        body = _without_none(
            endpoint=endpoint, kind=kind, count=count, status=status, delay_ms=delay_ms
        )
        result = await self._call("POST", "/_sandbox/oauth/faults", body)
        return list(result["faults"])

    async def oauth_faults(self) -> list[dict[str, Any]]:
        """`GET /_sandbox/oauth/faults`: the queued FACEIT Connect faults."""
        result = await self._call("GET", "/_sandbox/oauth/faults")
        return list(result["faults"])

    async def clear_oauth_faults(self) -> None:
        """`DELETE /_sandbox/oauth/faults`."""
        await self._call("DELETE", "/_sandbox/oauth/faults")

    async def userinfo_answers(self) -> list[dict[str, Any]]:
        """`GET /_sandbox/oauth/userinfo-answers`: `{"player_id", "answered_at"}` per userinfo
        answered with a player; `answered_at` is `time.monotonic()`, a clock the processes of
        one machine share."""
        result = await self._call("GET", "/_sandbox/oauth/userinfo-answers")
        return list(result["answers"])


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
