"""Points an unmodified py-cord (>= 2.7) at a sandbox instead of discord.com."""

from __future__ import annotations

import discord.http


def point_pycord_at(base_url: str) -> None:
    """Make every py-cord REST call (callbacks and webhooks too) go to `base_url`/api/v10."""
    discord.http.Route.API_BASE_URL = base_url.rstrip("/") + "/api/v{API_VERSION}"
