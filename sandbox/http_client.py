"""The base of the sandboxes' control clients: one aiohttp session, JSON in and out."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

import aiohttp


class SandboxHttpError(Exception):
    """A sandbox answered with an error status; `body` is its JSON, or its text when not JSON."""

    label = "sandbox"

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{self.label} answered {status}: {body}")
        self.status = status
        self.body = body


class SandboxHttpClient:
    """Talks to a running sandbox at `base_url`; use as `async with`, or call close().

    Subclasses add one method per route; `prefix` goes before every path, `error` is raised
    on an error status. A given `session` is used and left open; else one is made on first use.
    """

    prefix = ""
    error: type[SandboxHttpError] = SandboxHttpError

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client made it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        url = f"{self.base_url}{self.prefix}{path}"
        async with self._session.request(method, url, json=body, params=params) as response:
            text = await response.text()
            try:
                data = json.loads(text) if text else None
            except json.JSONDecodeError:
                data = text  # aiohttp's own plain-text answers, e.g. for unknown routes
            if response.status >= 400:
                raise self.error(response.status, data)
            return data
