"""Tests of the `python -m sandbox.faceit` command line, run as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp

from tests.sandbox.faceit.conftest import Receiver
from tests.support import eventually

REPO = Path(__file__).resolve().parents[3]


async def test_cli_prints_ready_line_serves_and_stops_on_sigterm(receiver: Receiver) -> None:
    """`--port 0` prints a ready line, serves both APIs with the flags' options, sends webhooks."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.faceit",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        "--subscribe",
        receiver.url,
        "--webhook-header",
        "X-Faceit-Signature",
        "--webhook-secret",
        "cli-secret",
        "--webhook-retries",
        "0",
        "--webhook-concurrency",
        "2",
        "--fill-rosters",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        ready = json.loads(line)
        assert ready["ready"] is True
        assert ready["api_base"] == ready["url"] + "/data/v4"
        async with aiohttp.ClientSession() as http:
            players_url = ready["url"] + "/_sandbox/players"
            async with http.post(players_url, json={"nickname": "cli"}) as response:
                player = await response.json()
            async with http.post(players_url, json={"nickname": "other"}) as response:
                other = await response.json()
            async with http.get(
                f"{ready['api_base']}/players/{player['player_id']}",
                headers={"Authorization": "Bearer cli-key"},
            ) as response:
                assert response.status == 200
            async with http.post(
                ready["url"] + "/_sandbox/matches",
                json={"teams": [[player["player_id"]], [other["player_id"]]]},
            ) as response:
                assert response.status == 201
                assert (await response.json())["fill_rosters"] is True
            async with http.get(ready["url"] + "/_sandbox/faults") as response:
                webhooks = (await response.json())["webhooks"]
            assert (webhooks["retries"], webhooks["concurrency"]) == (0, 2)

        async def got_webhook() -> bool:
            return len(receiver.received) == 1

        await eventually(got_webhook, what="the webhook from the CLI sandbox")
        assert receiver.received[0].headers["X-Faceit-Signature"] == "cli-secret"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cli_refuses_inconsistent_flags() -> None:
    """A header without a secret, or a bad duplicate, retry or concurrency count, exits 2."""
    for flags in (
        ["--subscribe", "http://x/y", "--webhook-header", "X"],
        ["--webhook-duplicate", "0"],
        ["--webhook-retries", "-1"],
        ["--webhook-concurrency", "0"],
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox.faceit",
            "--api-key",
            "k",
            *flags,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 2 and stdout == b""
        assert b"error" in stderr
