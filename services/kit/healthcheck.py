"""`python -m services.kit.healthcheck HOST:PORT [SERVICE]`: is that gRPC server SERVING?

Asks the standard `grpc.health.v1.Health/Check` (open without a token) with a short deadline;
exits 0 when the answer is SERVING, else 1 with one line saying why. docker-compose and
`make run` (devtools/run.py) use it as their readiness probe.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class HealthAnswer:
    """What a health check found: whether it is SERVING, and a one-line reason."""

    serving: bool
    reason: str


async def check_health(
    target: str,
    service: str = "",
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> HealthAnswer:
    """Ask the health service at `target` about `service` ("" is the whole server), once."""
    what = service or "(server)"
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                return HealthAnswer(False, f"{target}: no answer within {timeout:g}s")
            return HealthAnswer(False, f"{target}: {error.code().name}: {error.details()}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    serving = response.status == health_pb2.HealthCheckResponse.SERVING
    return HealthAnswer(serving, f"{target}: {what} is {status}")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.kit.healthcheck",
        description="Exit 0 when the gRPC server at HOST:PORT reports SERVING, else 1.",
    )
    parser.add_argument("target", metavar="HOST:PORT", help="the gRPC server, e.g. 127.0.0.1:50053")
    parser.add_argument(
        "service",
        nargs="?",
        default="",
        metavar="SERVICE",
        help="a service name such as faceitvoice.v1.VoiceService (default: the whole server)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"deadline of the check in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one check; print its reason (stdout when SERVING, stderr otherwise); 0 or 1."""
    arguments = _arguments(argv)
    answer = asyncio.run(
        check_health(arguments.target, arguments.service, timeout=arguments.timeout)
    )
    stream = sys.stdout if answer.serving else sys.stderr
    stream.write(f"{answer.reason}\n")
    return 0 if answer.serving else 1


if __name__ == "__main__":
    sys.exit(main())
