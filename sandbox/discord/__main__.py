"""`python -m sandbox.discord`: run the Discord sandbox and print one JSON ready line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

import uvloop

from sandbox.discord.config import SandboxConfig
from sandbox.discord.permissions import DEFAULT_BOT
from sandbox.discord.ratelimit import RouteLimit
from sandbox.discord.server import DiscordSandbox

log = logging.getLogger(__name__)


def parse_route_limit(text: str) -> tuple[tuple[str, str], RouteLimit]:
    """`"POST /guilds/{guild_id}/channels=5/1"` -> (("POST", route), RouteLimit(5, 1.0))."""
    try:
        target, numbers = text.rsplit("=", 1)
        method, route = target.split(" ", 1)
        limit, per = numbers.split("/", 1)
        return (method.upper(), route.strip()), RouteLimit(int(limit), float(per))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'METHOD /route/{{param}}=LIMIT/SECONDS', got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.discord", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bot-token", default=os.environ.get("DISCORD_TOKEN"))
    parser.add_argument("--bot-username", default="faceit-voice")
    parser.add_argument("--guild", action="append", default=[], help="create a guild at start")
    parser.add_argument("--global-rate-limit", type=int, default=50, help="requests per second")
    parser.add_argument(
        "--route-limit",
        type=parse_route_limit,
        action="append",
        default=[],
        help="e.g. 'POST /guilds/{guild_id}/channels=5/1' (repeatable)",
    )
    parser.add_argument("--default-route-limit", default="50/1", help="LIMIT/SECONDS")
    parser.add_argument("--max-channels-per-guild", type=int, default=500)
    parser.add_argument("--max-channels-per-category", type=int, default=50)
    parser.add_argument("--interaction-ack-timeout", type=float, default=3.0)
    parser.add_argument("--reply-timeout", type=float, default=10.0)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser


async def run(args: argparse.Namespace) -> None:
    """Start the sandbox, print the ready line, and serve until SIGINT/SIGTERM."""
    limit, per = args.default_route_limit.split("/", 1)
    config = SandboxConfig(
        bot_username=args.bot_username,
        global_rate_limit=args.global_rate_limit,
        default_route_limit=RouteLimit(int(limit), float(per)),
        route_limits=dict(args.route_limit),
        max_channels_per_guild=args.max_channels_per_guild,
        max_channels_per_category=args.max_channels_per_category,
        interaction_ack_timeout=args.interaction_ack_timeout,
        reply_timeout=args.reply_timeout,
    )
    sandbox = DiscordSandbox(bot_token=args.bot_token, config=config)
    url = await sandbox.start(args.host, args.port)
    guilds = []
    for name in args.guild:
        guild = sandbox.actions.create_guild(
            name, bot_permissions=DEFAULT_BOT, owner_username="owner"
        )
        guilds.append({"guild_id": str(guild.id), "name": guild.name})
    ready = {
        "ready": True,
        "url": url,
        "api_base": url + "/api",
        "gateway_url": url.replace("http://", "ws://", 1) + "/gateway",
        "bot_user_id": str(sandbox.bot_user_id),
        "application_id": str(sandbox.bot_user_id),
        "guilds": guilds,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping the discord sandbox")
    await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if not args.bot_token:
        build_parser().error("--bot-token (or DISCORD_TOKEN) is required")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
