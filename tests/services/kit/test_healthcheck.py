"""Tests of the gRPC health probe, in-process and as `python -m services.kit.healthcheck`."""

from __future__ import annotations

import asyncio
import sys

from services.kit.grpc_server import GrpcServer
from services.kit.healthcheck import check_health
from tests.services.kit.echo import SERVICE


async def _run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.kit.healthcheck",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_serving_server_and_service_are_reported_serving(kit_server: GrpcServer) -> None:
    """The whole server and a registered service both answer SERVING, without a token."""
    target = f"127.0.0.1:{kit_server.port}"
    whole = await check_health(target)
    one = await check_health(target, SERVICE)
    assert whole.serving and one.serving
    assert one.reason == f"{target}: {SERVICE} is SERVING"


async def test_an_unknown_service_is_not_serving(kit_server: GrpcServer) -> None:
    """Asking about a service the server does not have is a failure that says NOT_FOUND."""
    answer = await check_health(f"127.0.0.1:{kit_server.port}", "no.such.Service")
    assert not answer.serving
    assert "NOT_FOUND" in answer.reason


async def test_graceful_shutdown_is_not_serving(kit_server: GrpcServer) -> None:
    """Once the server entered graceful shutdown, the check reports NOT_SERVING."""
    await kit_server.health.enter_graceful_shutdown()
    answer = await check_health(f"127.0.0.1:{kit_server.port}", SERVICE)
    assert not answer.serving
    assert answer.reason.endswith("is NOT_SERVING")


async def test_nothing_listening_is_unavailable(kit_server: GrpcServer) -> None:
    """After the server stopped, the check fails quickly with UNAVAILABLE."""
    await kit_server.stop(0)
    answer = await check_health(f"127.0.0.1:{kit_server.port}", timeout=5)
    assert not answer.serving
    assert "UNAVAILABLE" in answer.reason


async def test_cli_exits_0_when_serving(kit_server: GrpcServer) -> None:
    """The command exits 0 and prints the SERVING line when the server serves."""
    code, out, err = await _run_cli(f"127.0.0.1:{kit_server.port}", SERVICE)
    assert (code, err) == (0, "")
    assert out.strip() == f"127.0.0.1:{kit_server.port}: {SERVICE} is SERVING"


async def test_cli_exits_1_with_one_line_when_nothing_listens(kit_server: GrpcServer) -> None:
    """The command exits 1 with exactly one line on stderr saying why when nothing listens."""
    await kit_server.stop(0)
    code, out, err = await _run_cli(f"127.0.0.1:{kit_server.port}", "--timeout", "5")
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert "UNAVAILABLE" in err


async def test_cli_exits_1_when_the_server_is_shutting_down(kit_server: GrpcServer) -> None:
    """The command exits 1 and says NOT_SERVING while the server shuts down gracefully."""
    await kit_server.health.enter_graceful_shutdown()
    code, _out, err = await _run_cli(f"127.0.0.1:{kit_server.port}")
    assert code == 1
    assert err.strip() == f"127.0.0.1:{kit_server.port}: (server) is NOT_SERVING"
