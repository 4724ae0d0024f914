"""py-cord's HTTP client, counting every request it sends by route template and final status.

py-cord sends everything voice does not send through DiscordRest: login, command sync,
fetches, permission edits, channel deletes. A subclass, so no py-cord internals are patched:
VoiceBot puts it where py-cord would put its own (`Client._get_state`, the one step between
making the client and handing it to the connection state).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import discord
import discord.http

from services.voice.global_limit import GlobalLimit
from services.voice.metrics import VoiceMetrics

SUCCESS = "2xx"
"""py-cord returns a success's body, not its status."""


class MeteredHTTPClient(discord.http.HTTPClient):
    """An HTTPClient configured like `original`, recording each request in `metrics`.

    py-cord retries 429s and 5xx inside one request: the status recorded is the final one and
    the time includes its retries; the 429s it absorbed are in its own WARNING log lines only.
    """

    def __init__(
        self,
        metrics: VoiceMetrics,
        original: discord.http.HTTPClient,
        global_limit: GlobalLimit | None = None,
    ) -> None:
        super().__init__(
            original.connector,
            proxy=original.proxy,
            proxy_auth=original.proxy_auth,
            loop=original.loop,
            unsync_clock=not original.use_clock,
        )
        self._metrics = metrics
        self._global = global_limit
        """Shared with voice's own client: py-cord sends within its share of the limit."""

    async def request(
        self,
        route: discord.http.Route,
        *,
        files: Sequence[discord.File] | None = None,
        form: Iterable[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """py-cord's request, recorded under `route`'s template."""
        if self._global is not None:
            await self._global.take()
        began = time.perf_counter()
        status: int | str = "error"
        try:
            result = await super().request(route, files=files, form=form, **kwargs)
            status = SUCCESS
            return result
        except discord.HTTPException as error:
            status = error.status
            raise
        finally:
            self._metrics.discord_answer(
                route.method, route.path, status, time.perf_counter() - began
            )
