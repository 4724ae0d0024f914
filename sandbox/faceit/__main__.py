"""CLI: `python -m sandbox.faceit --port P --api-key K`; prints one JSON ready line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

import uvloop

from sandbox.faceit.deliverer import REORDER_MODES, WebhookOptions
from sandbox.faceit.server import FaceitSandbox

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.faceit", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", required=True, help="the Data API bearer key to accept")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--hub-id", help="id of the default hub (random if absent)")
    parser.add_argument("--organizer-id", help="organizer of the default hub")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="Data API latency")
    parser.add_argument("--subscribe", metavar="URL", help="webhook receiver to add at start")
    parser.add_argument("--webhook-header", help="security header name sent to --subscribe")
    parser.add_argument("--webhook-secret", help="security header value sent to --subscribe")
    parser.add_argument("--webhook-query-param", help="send the secret as this query param")
    parser.add_argument("--webhook-duplicate", type=int, default=1, help="copies per delivery")
    parser.add_argument("--webhook-drop-rate", type=float, default=0.0, help="0..1, seeded")
    parser.add_argument("--webhook-reorder", choices=REORDER_MODES, default="none")
    parser.add_argument(
        "--webhook-retries", type=int, default=4, help="retries of a failed delivery (0: none)"
    )
    parser.add_argument(
        "--webhook-backoff-ms", type=float, default=50.0, help="first retry delay, then doubled"
    )
    parser.add_argument("--webhook-timeout-ms", type=float, default=5000.0)
    parser.add_argument(
        "--webhook-concurrency", type=int, default=4, help="deliveries in flight per subscription"
    )
    parser.add_argument(
        "--fill-rosters",
        action="store_true",
        help="matches start with captains only and fill up until CONFIGURING",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def _subscribe(sandbox: FaceitSandbox, args: argparse.Namespace) -> None:
    if not args.subscribe:
        return
    if args.webhook_query_param:
        sandbox.world.add_subscription(
            args.subscribe, query_param=args.webhook_query_param, query_value=args.webhook_secret
        )
    else:
        sandbox.world.add_subscription(
            args.subscribe, header_name=args.webhook_header, header_value=args.webhook_secret
        )


def _webhook_options(args: argparse.Namespace) -> WebhookOptions:
    return WebhookOptions(
        duplicate=args.webhook_duplicate,
        drop_rate=args.webhook_drop_rate,
        reorder=args.webhook_reorder,
        seed=args.seed,
        retries=args.webhook_retries,
        backoff_s=args.webhook_backoff_ms / 1000,
        timeout_s=args.webhook_timeout_ms / 1000,
        concurrency=args.webhook_concurrency,
    )


async def run(args: argparse.Namespace, options: WebhookOptions) -> None:
    """Serve until SIGINT or SIGTERM."""
    sandbox = FaceitSandbox(
        api_key=args.api_key,
        webhook_options=options,
        latency_s=args.latency_ms / 1000,
        seed=args.seed,
        hub_id=args.hub_id,
        organizer_id=args.organizer_id,
        fill_rosters=args.fill_rosters,
    )
    _subscribe(sandbox, args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = await sandbox.start(args.host, args.port)
    try:
        ready = {
            "ready": True,
            "url": url,
            "api_base": sandbox.api_base,
            "hub_id": sandbox.default_hub.hub_id,
            "organizer_id": sandbox.default_hub.organizer_id,
            "app_id": sandbox.deliverer.app_id,
        }
        print(json.dumps(ready), flush=True)  # noqa: T201 - the CLI's ready line
        await stop.wait()
        logger.info("stopping the FACEIT sandbox")
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = _webhook_options(args)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.api_key:
        parser.error("--api-key must not be empty")
    secret_name = args.webhook_header or args.webhook_query_param
    if args.subscribe and bool(secret_name) != bool(args.webhook_secret):
        parser.error("--webhook-secret goes with --webhook-header or --webhook-query-param")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    uvloop.run(run(args, options))


if __name__ == "__main__":
    main()
