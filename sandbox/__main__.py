"""`python -m sandbox`: the whole system on one machine, announced by one JSON ready line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from sandbox.system import LINK_VERIFICATIONS, System, SystemOptions
from services.kit.logging import setup_logging

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"), help="embedded Postgres")
    parser.add_argument("--log-dir", type=Path, help="service logs (default: a new temp dir)")
    parser.add_argument("--database-url", help="use this Postgres instead of the embedded one")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--close-delay", type=float, default=0.0, help="seconds")
    parser.add_argument(
        "--webhook-retries", type=int, help="FACEIT sandbox: retries of a failed webhook (0: none)"
    )
    parser.add_argument(
        "--fill-rosters", action="store_true", help="FACEIT sandbox: rosters fill up step by step"
    )
    parser.add_argument(
        "--link-verification",
        choices=LINK_VERIFICATIONS,
        default="faceit_oauth",
        help="how /register links: sign in with FACEIT (default), or any nickname (unverified)",
    )
    parser.add_argument(
        "--voice-replicas",
        type=int,
        default=1,
        help="voice processes: one acts, the others stand by (voice_grpc, voice-2_grpc...)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def system_options(args: argparse.Namespace) -> SystemOptions:
    """The system's options from the command line."""
    faceit_args: list[str] = []
    if args.webhook_retries is not None:
        faceit_args += ["--webhook-retries", str(args.webhook_retries)]
    if args.fill_rosters:
        faceit_args.append("--fill-rosters")
    return SystemOptions(
        data_dir=args.data_dir,
        log_dir=args.log_dir,
        database_url=args.database_url,
        poll_interval_s=args.poll_interval,
        close_delay_s=args.close_delay,
        faceit_args=tuple(faceit_args),
        link_verification=args.link_verification,
        voice_replicas=args.voice_replicas,
    )


async def run(args: argparse.Namespace) -> int:
    """Start everything, print the ready line, wait for SIGINT/SIGTERM, stop everything."""
    system = System(system_options(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    info = await system.start()
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        logger.info("stopping the system")
        await system.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, service="sandbox", stream=sys.stderr)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
