"""`python -m sandbox.discord` as a subprocess: a JSON ready line, a working server, clean stop."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

import aiohttp
import pytest

from sandbox.discord.__main__ import parse_route_limit
from sandbox.discord.ratelimit import RouteLimit


async def test_cli_prints_ready_line_serves_and_stops_on_sigterm() -> None:
    """With --port 0 the CLI prints its URL and ids, serves REST, and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.discord",
        "--port",
        "0",
        "--bot-token",
        "cli-token",
        "--guild",
        "CLI Guild",
        "--route-limit",
        "POST /guilds/{guild_id}/channels=5/1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        ready = json.loads(line)
        assert ready["ready"] is True and ready["url"].startswith("http://127.0.0.1:")
        assert ready["guilds"][0]["name"] == "CLI Guild"
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": "Bot cli-token"}
            async with http.get(ready["url"] + "/api/v10/users/@me", headers=headers) as response:
                assert response.status == 200
                assert (await response.json())["id"] == ready["bot_user_id"]
            async with http.get(ready["url"] + "/_sandbox/rate-limits") as response:
                limits = await response.json()
        assert limits["routes"] == [
            {"method": "POST", "route": "/guilds/{guild_id}/channels", "limit": 5, "per": 1.0}
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
    assert code == 0


def test_route_limit_flag_parses_method_route_and_rate() -> None:
    """'METHOD /route=LIMIT/SECONDS' becomes a route key and a RouteLimit."""
    assert parse_route_limit("post /channels/{channel_id}=2/600") == (
        ("POST", "/channels/{channel_id}"),
        RouteLimit(2, 600.0),
    )


def test_route_limit_flag_rejects_garbage() -> None:
    """A malformed --route-limit is an argparse error."""
    with pytest.raises(argparse.ArgumentTypeError):
        parse_route_limit("nonsense")
