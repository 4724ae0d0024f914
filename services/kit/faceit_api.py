"""FACEIT Data API v4 client: one aiohttp session, bounded retries, typed results, call counts."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from services.kit.faceit_models import (
    FaceitMatch,
    FaceitPlayer,
    MatchPage,
    PlayerSearchResult,
    SearchPage,
)
from services.kit.faceit_retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    current_budget,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://open.faceit.com/data/v4"
MAX_PAGE_SIZE = 100

CallHook = Callable[[str, str], None]
"""Told `(endpoint, outcome)` after every HTTP attempt: outcome is the status code as text,
`"timeout"` or `"connection_error"`; endpoint is the route template, e.g. `/players/{player_id}`."""


class FaceitApiError(Exception):
    """A FACEIT Data API call failed; `status` is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class FaceitAuthError(FaceitApiError):
    """FACEIT refused the API key (401 or 403): a configuration problem, not worth retrying."""


class FaceitNotFound(FaceitApiError):
    """FACEIT has no such player, match or hub (404)."""


class FaceitUnavailable(FaceitApiError):
    """FACEIT did not answer usefully (429/5xx, timeouts, connection errors) after every retry."""


M = TypeVar("M", bound=BaseModel)


def _error_details(body: object) -> tuple[str, str]:
    """The first `{"errors": [{"message", "code"}]}` entry of a FACEIT error body."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            return str(errors[0].get("message", "")), str(errors[0].get("code", ""))
    return "", ""


class _RetryableResponse(Exception):
    def __init__(self, error: FaceitApiError, retry_after: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class FaceitApiClient:
    """Calls the FACEIT Data API with the server-side key; use as `async with` or call close().

    One aiohttp session (opened on first use) serves every call. Each call is retried with
    jittered backoff on 429/502/503/504, timeouts and connection errors, then raises
    FaceitUnavailable; 401/403 raise FaceitAuthError and 404 FaceitNotFound at once.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a FACEIT API key is required")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._retry = retry or RetryPolicy()
        self._on_call = on_call
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FaceitApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session; a later call opens a new one."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def get_player_by_nickname(self, nickname: str, game: str | None = None) -> FaceitPlayer:
        """The player with exactly this nickname (`GET /players?nickname=`), else FaceitNotFound."""
        params = {"nickname": nickname}
        if game:
            params["game"] = game
        body = await self._get("/players", "/players", params)
        return _parse(FaceitPlayer, body, "/players")

    async def search_players(
        self, nickname: str, limit: int = 5, *, offset: int = 0
    ) -> list[PlayerSearchResult]:
        """Players whose nickname resembles `nickname` (`GET /search/players`), best first."""
        params = {
            "nickname": nickname,
            "offset": str(offset),
            "limit": str(_page_size(limit)),
        }
        body = await self._get("/search/players", "/search/players", params)
        return _parse(SearchPage, body, "/search/players").items

    async def get_player(self, player_id: str) -> FaceitPlayer:
        """One player by id (`GET /players/{player_id}`)."""
        body = await self._get(f"/players/{player_id}", "/players/{player_id}")
        return _parse(FaceitPlayer, body, "/players/{player_id}")

    async def get_match(self, match_id: str) -> FaceitMatch:
        """One match by id (`GET /matches/{match_id}`)."""
        body = await self._get(f"/matches/{match_id}", "/matches/{match_id}")
        return _parse(FaceitMatch, body, "/matches/{match_id}")

    async def list_hub_matches(
        self, hub_id: str, type: str = "all", offset: int = 0, limit: int = MAX_PAGE_SIZE
    ) -> MatchPage:
        """One page of a hub's matches (`GET /hubs/{hub_id}/matches?type=`)."""
        params = {"type": type, "offset": str(offset), "limit": str(_page_size(limit))}
        body = await self._get(f"/hubs/{hub_id}/matches", "/hubs/{hub_id}/matches", params)
        return _parse(MatchPage, body, "/hubs/{hub_id}/matches")

    async def iter_hub_matches(
        self, hub_id: str, type: str = "all", page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[FaceitMatch]:
        """Every match of a hub listing, page by page until a short page."""
        size = _page_size(page_size)
        offset = 0
        while True:
            page = await self.list_hub_matches(hub_id, type, offset, size)
            for match in page.items:
                yield match
            if len(page.items) < size:
                return
            offset += len(page.items)

    def _session_for_call(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def _get(
        self, path: str, endpoint: str, params: Mapping[str, str] | None = None
    ) -> object:
        url = f"{self._base_url}{path}"
        attempt = 1
        budget = current_budget()
        while True:
            if budget is not None:
                budget.spend()
            try:
                return await self._attempt(url, endpoint, params)
            except _RetryableResponse as failure:
                if attempt >= self._retry.attempts:
                    raise FaceitUnavailable(
                        f"FACEIT {endpoint} unavailable after {attempt} attempts: "
                        f"{failure.error.message}",
                        status=failure.error.status,
                        code=failure.error.code,
                    ) from failure.error
                delay = self._delay(attempt, failure.retry_after)
                logger.warning(
                    "FACEIT %s attempt %s failed (%s); retrying in %.2fs",
                    endpoint,
                    attempt,
                    failure.error.message,
                    delay,
                )
            attempt += 1
            await asyncio.sleep(delay)  # backoff between attempts, not a wait for readiness

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._retry.max_retry_after)
        return self._retry.backoff(attempt, self._rng)

    async def _attempt(self, url: str, endpoint: str, params: Mapping[str, str] | None) -> object:
        session = self._session_for_call()
        try:
            async with session.get(url, params=params) as response:
                self._count(endpoint, str(response.status))
                body = await _read_json(response)
                if response.status == 200:
                    return body
                raise _failure(endpoint, response, body)
        except TimeoutError as error:
            self._count(endpoint, "timeout")
            raise _RetryableResponse(
                FaceitApiError(f"timed out ({error.__class__.__name__})"), None
            ) from error
        except aiohttp.ClientError as error:
            self._count(endpoint, "connection_error")
            raise _RetryableResponse(
                FaceitApiError(f"connection failed: {error!r}"), None
            ) from error

    def _count(self, endpoint: str, outcome: str) -> None:
        if self._on_call is not None:
            self._on_call(endpoint, outcome)


async def _read_json(response: aiohttp.ClientResponse) -> object:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _failure(endpoint: str, response: aiohttp.ClientResponse, body: object) -> Exception:
    status = response.status
    message, code = _error_details(body)
    text = f"FACEIT {endpoint} answered {status}" + (f": {message}" if message else "")
    if status in (401, 403):
        return FaceitAuthError(f"{text} (check FACEIT_API_KEY)", status=status, code=code)
    if status == 404:
        return FaceitNotFound(text, status=status, code=code)
    error = FaceitApiError(text, status=status, code=code)
    if status in RETRYABLE_STATUSES:
        return _RetryableResponse(error, parse_retry_after(response.headers.get("Retry-After")))
    return error


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
    return limit


def _parse(model: type[M], body: object, endpoint: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise FaceitApiError(f"FACEIT {endpoint} answered an unexpected shape: {error}") from error
