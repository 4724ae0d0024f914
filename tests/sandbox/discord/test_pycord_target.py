"""point_pycord_at redirects py-cord's REST base URL."""

from __future__ import annotations

import discord.http

from sandbox.discord import point_pycord_at


def test_point_pycord_at_sets_the_api_base() -> None:
    """Routes built afterwards target the sandbox with the API version filled in."""
    previous = discord.http.Route.API_BASE_URL
    try:
        point_pycord_at("http://127.0.0.1:1234/")
        route = discord.http.Route("GET", "/users/@me")
        assert route.url == "http://127.0.0.1:1234/api/v10/users/@me"
    finally:
        discord.http.Route.API_BASE_URL = previous
