"""Tests of the kit's gRPC server: binding, health, graceful stop, signals, cleanups."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.grpc_server import GrpcServer
from tests.services.kit.conftest import TOKEN
from tests.services.kit.echo import SERVICE, EchoService, method
from tests.support import eventually

REPO = Path(__file__).resolve().parents[3]
AUTH = (("authorization", f"Bearer {TOKEN}"),)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _server(echo: EchoService, *, grace: float = 5.0) -> GrpcServer:
    return GrpcServer(
        registrars=[echo.register],
        service_names=[SERVICE],
        port=0,
        host="127.0.0.1",
        auth_token=TOKEN,
        grace=grace,
    )


async def _status(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    return int(reply.status)


async def test_start_binds_a_free_port_and_reports_serving(kit_server: GrpcServer) -> None:
    """Port 0 binds a real port, and health says SERVING for the server and each service."""
    assert kit_server.port > 0
    assert await _status(kit_server.port, "") == SERVING
    assert await _status(kit_server.port, SERVICE) == SERVING


async def test_port_before_start_is_an_error(echo: EchoService) -> None:
    """Asking for the port of a server not started yet fails clearly."""
    with pytest.raises(RuntimeError, match="not been started"):
        _ = _server(echo).port


async def test_graceful_stop_flips_health_and_runs_cleanups(echo: EchoService) -> None:
    """stop() turns a health watcher to NOT_SERVING, then runs cleanups in reverse order."""
    server = _server(echo, grace=0.5)
    ran: list[str] = []

    async def close_pool() -> None:
        ran.append("pool")

    server.add_cleanup(close_pool)
    server.add_cleanup(lambda: ran.append("channels"))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
        first = await watch.read()
        stopping = asyncio.create_task(server.stop())
        second = await watch.read()
        await stopping
    assert (first.status, second.status) == (SERVING, NOT_SERVING)
    assert ran == ["channels", "pool"]


async def test_stop_lets_an_in_flight_call_finish_within_grace(echo: EchoService) -> None:
    """A call running when stop starts completes normally if it ends within the grace."""
    server = _server(echo, grace=5)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary(method("Slow"))(b"", metadata=AUTH, timeout=10)
        await echo.slow_started.wait()
        stopping = asyncio.create_task(server.stop())
        await eventually(lambda: _refuses_new_calls(server), what="new calls refused")
        assert not call.done()
        echo.release.set()
        assert await call == b"done"
        await stopping


async def _refuses_new_calls(server: GrpcServer) -> bool:
    try:
        await _status(server.port, "")
    except grpc.aio.AioRpcError:
        return True
    return False


async def test_stop_is_idempotent(echo: EchoService) -> None:
    """Calling stop twice, even concurrently, stops once and runs cleanups once."""
    server = _server(echo, grace=0)
    calls: list[int] = []
    server.add_cleanup(lambda: calls.append(1))
    await server.start()
    await asyncio.gather(server.stop(), server.stop())
    await server.stop()
    assert calls == [1]


async def test_failing_cleanup_does_not_stop_the_others(echo: EchoService) -> None:
    """A cleanup that raises is logged and the remaining cleanups still run."""
    server = _server(echo, grace=0)
    ran: list[str] = []
    server.add_cleanup(lambda: ran.append("first added"))

    def broken() -> None:
        raise RuntimeError("close failed")

    server.add_cleanup(broken)
    await server.start()
    await server.stop()
    assert ran == ["first added"]


async def test_sigterm_stops_serve_gracefully(echo: EchoService) -> None:
    """SIGTERM makes serve() stop the server, run cleanups and return."""
    server = _server(echo, grace=0.2)
    cleaned = asyncio.Event()
    server.add_cleanup(cleaned.set)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: _is_serving(server), what="server serving")
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, timeout=10)
    assert cleaned.is_set()
    with pytest.raises(grpc.aio.AioRpcError):
        await _status(server.port, "")


async def test_cancelling_serve_stops_the_server(echo: EchoService) -> None:
    """Cancelling serve() (e.g. a sibling task failed) still stops and cleans up."""
    server = _server(echo, grace=0.2)
    cleaned = asyncio.Event()
    server.add_cleanup(cleaned.set)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: _is_serving(server), what="server serving")
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert cleaned.is_set()


async def _is_serving(server: GrpcServer) -> bool:
    try:
        return await _status(server.port, "") == SERVING
    except RuntimeError:
        return False


HANGING_SERVER = """
import asyncio, logging, sys
from services.kit.grpc_server import GrpcServer

async def main():
    server = GrpcServer(registrars=[], service_names=[], port=0, host="127.0.0.1", grace=0)
    server.add_cleanup(asyncio.Event().wait)  # a cleanup that never finishes
    await server.serve()

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
asyncio.run(main())
"""


async def test_second_signal_exits_at_once() -> None:
    """A second SIGTERM while the graceful stop hangs ends the process with 128+SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HANGING_SERVER,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        # The "listening" line is logged after the signal handlers are installed.
        await asyncio.wait_for(_line_matching(process.stdout, lambda s: "listening" in s), 30)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(
            _line_matching(process.stdout, lambda s: "SIGTERM received" in s), 30
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 128 + signal.SIGTERM
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _line_matching(stream: asyncio.StreamReader, wanted: object) -> str:
    assert callable(wanted)
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError("process ended before the expected line")
        line = raw.decode().strip()
        if wanted(line):
            return line
