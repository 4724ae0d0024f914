"""Tests of the client helpers: one channel per target, token and deadline, readiness wait."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from services.kit.grpc_client import GrpcClients, wait_for_ready
from services.kit.grpc_server import GrpcServer
from tests.services.kit.conftest import TOKEN
from tests.services.kit.echo import SERVICE, EchoService, method
from tests.support import eventually


def _target(server: GrpcServer) -> str:
    return f"127.0.0.1:{server.port}"


async def _echo(channel: grpc.aio.Channel, **kwargs: object) -> dict[str, object]:
    reply = await channel.unary_unary(method("Echo"))(b"hello", **kwargs)
    return dict(json.loads(reply))


async def test_one_channel_per_target() -> None:
    """The same target gives the same channel; another target gives another."""
    clients = GrpcClients()
    try:
        first = clients.channel("127.0.0.1:1")
        assert clients.channel("127.0.0.1:1") is first
        assert clients.channel("127.0.0.1:2") is not first
    finally:
        await clients.close()


async def test_calls_carry_the_bearer_token(kit_server: GrpcServer) -> None:
    """Every call on a pooled channel carries `authorization: Bearer <token>`."""
    clients = GrpcClients(token=TOKEN)
    try:
        seen = await _echo(clients.channel(_target(kit_server)))
    finally:
        await clients.close()
    assert seen["authorization"] == f"Bearer {TOKEN}"


async def test_streaming_calls_carry_the_bearer_token_too(kit_server: GrpcServer) -> None:
    """A server-streaming call on a pooled channel is authenticated like a unary one."""
    clients = GrpcClients(token=TOKEN)
    try:
        count = clients.channel(_target(kit_server)).unary_stream(method("Count"))
        numbers = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for number in count(b"2"):
                numbers.append(number)
    finally:
        await clients.close()
    assert numbers == [b"0", b"1"]
    assert ended.value.code() == grpc.StatusCode.NOT_FOUND  # Count's own end, not UNAUTHENTICATED


async def test_without_token_the_guarded_server_refuses(kit_server: GrpcServer) -> None:
    """With no token configured nothing is attached and the guarded server refuses."""
    clients = GrpcClients()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _echo(clients.channel(_target(kit_server)))
    finally:
        await clients.close()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_default_deadline_applies_unless_caller_passes_one(kit_server: GrpcServer) -> None:
    """Calls get the default deadline; a caller's own timeout wins."""
    clients = GrpcClients(token=TOKEN, timeout=3.0)
    try:
        channel = clients.channel(_target(kit_server))
        defaulted = await _echo(channel)
        explicit = await _echo(channel, timeout=30)
    finally:
        await clients.close()
    assert isinstance(defaulted["time_remaining"], float)
    assert 0 < defaulted["time_remaining"] <= 3.5  # server-side clock rounding
    assert isinstance(explicit["time_remaining"], float)
    assert 10 < explicit["time_remaining"] <= 31


async def test_default_deadline_cuts_a_slow_call(kit_server: GrpcServer, echo: EchoService) -> None:
    """A call that outlives the default deadline fails with DEADLINE_EXCEEDED."""
    clients = GrpcClients(token=TOKEN, timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await clients.channel(_target(kit_server)).unary_unary(method("Slow"))(b"")
        elapsed = time.monotonic() - started
    finally:
        await clients.close()
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 5


async def _never() -> AsyncIterator[bytes]:
    """A request stream that sends nothing and never ends."""
    await asyncio.Event().wait()
    yield b""


async def test_streams_of_every_kind_get_the_default_deadline(kit_server: GrpcServer) -> None:
    """A server stream, a client stream and a bidirectional stream that outlive the default
    deadline end DEADLINE_EXCEEDED."""
    clients = GrpcClients(token=TOKEN, timeout=0.3)
    channel = clients.channel(_target(kit_server))
    reflect = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    calls = {
        "server stream": channel.unary_stream(method("Trickle"))(b""),
        "client stream": channel.stream_unary(method("Gather"))(_never()),
        "bidirectional": channel.stream_stream(reflect)(_never()),
    }
    try:
        started = time.monotonic()
        for kind, call in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                if kind == "client stream":
                    await call
                else:
                    [item async for item in call]
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, kind
        elapsed = time.monotonic() - started
    finally:
        await clients.close()
    assert elapsed < 5


async def test_a_client_stream_carries_the_bearer_token(kit_server: GrpcServer) -> None:
    """A client-streaming call on a pooled channel is authenticated like a unary one."""
    clients = GrpcClients(token=TOKEN)
    request = health_pb2.HealthCheckRequest(service="a").SerializeToString()
    try:
        reply = await clients.channel(_target(kit_server)).stream_unary(method("Gather"))(
            iter([request])
        )
    finally:
        await clients.close()
    assert reply == b"a"


async def test_caller_metadata_is_kept_beside_the_token(kit_server: GrpcServer) -> None:
    """Metadata the caller passes goes out with the token added to it."""
    clients = GrpcClients(token=TOKEN)
    try:
        channel = clients.channel(_target(kit_server))
        as_tuple = await _echo(channel, metadata=(("x-extra", "1"),))
        as_metadata = await _echo(channel, metadata=grpc.aio.Metadata(("x-extra", "2")))
    finally:
        await clients.close()
    assert (as_tuple["x-extra"], as_tuple["authorization"]) == ("1", f"Bearer {TOKEN}")
    assert (as_metadata["x-extra"], as_metadata["authorization"]) == ("2", f"Bearer {TOKEN}")


async def test_caller_authorization_is_kept(kit_server: GrpcServer) -> None:
    """An authorization entry the caller sets itself is not replaced or duplicated."""
    clients = GrpcClients(token="other-token")
    try:
        seen = await _echo(
            clients.channel(_target(kit_server)),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
        )
    finally:
        await clients.close()
    assert seen["authorization"] == f"Bearer {TOKEN}"


async def test_close_closes_every_channel(kit_server: GrpcServer) -> None:
    """After close() the pooled channels refuse new calls."""
    clients = GrpcClients(token=TOKEN)
    channel = clients.channel(_target(kit_server))
    await _echo(channel)
    await clients.close()
    with pytest.raises(grpc.aio.UsageError):
        await _echo(channel)


async def test_wait_for_ready_returns_for_a_serving_server(kit_server: GrpcServer) -> None:
    """wait_for_ready returns once the server's health says SERVING, no token needed."""
    await wait_for_ready(_target(kit_server), timeout=5, service=SERVICE)
    clients = GrpcClients()
    try:
        await clients.wait_for_ready(_target(kit_server), timeout=5)
    finally:
        await clients.close()


async def test_wait_for_ready_times_out_on_a_closed_port() -> None:
    """Against a port nobody listens on, wait_for_ready fails after its timeout, naming it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=target):
        await wait_for_ready(target, timeout=0.5)
    assert time.monotonic() - started < 5


async def test_wait_for_ready_times_out_while_not_serving(kit_server: GrpcServer) -> None:
    """A service reported NOT_SERVING keeps wait_for_ready waiting until its timeout."""
    await kit_server.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    with pytest.raises(TimeoutError, match="NOT_SERVING"):
        await wait_for_ready(_target(kit_server), timeout=0.5, service=SERVICE)


async def test_calls_spread_over_every_address_of_a_target(
    kit_server: GrpcServer, echo: EchoService
) -> None:
    """A target naming its resolver, with two servers, gets calls on both (round_robin)."""
    other_echo = EchoService()
    other = GrpcServer(
        registrars=[other_echo.register], service_names=[SERVICE], port=0, host="127.0.0.1"
    )
    await other.start()
    clients = GrpcClients(token=TOKEN)
    try:
        # The ipv4: resolver gives both addresses, as DNS does for a headless Service.
        target = f"ipv4:127.0.0.1:{kit_server.port},127.0.0.1:{other.port}"
        parse = clients.channel(target).unary_unary(method("Parse"))
        request = health_pb2.HealthCheckRequest(service="x").SerializeToString()
        deadline = time.monotonic() + 5.0
        while (echo.decoded == 0 or other_echo.decoded == 0) and time.monotonic() < deadline:
            await parse(request, wait_for_ready=True)
    finally:
        await clients.close()
        other_echo.release.set()
        await other.stop(0)
    assert echo.decoded > 0 and other_echo.decoded > 0, "every call went to one address"


async def test_calls_of_a_target_go_only_to_its_serving_address_and_follow_a_takeover(
    kit_server: GrpcServer, echo: EchoService
) -> None:
    """Two servers behind `ipv4:a,b`, one NOT_SERVING (a standby): every call reaches the other;
    once they swap, calls (waiting for ready meanwhile) reach the new one only."""
    standby_echo = EchoService()
    standby = GrpcServer(
        registrars=[standby_echo.register], service_names=[SERVICE], port=0, host="127.0.0.1"
    )
    await standby.start()
    await standby.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    clients = GrpcClients(token=TOKEN, timeout=5.0)
    try:
        target = f"ipv4:127.0.0.1:{kit_server.port},127.0.0.1:{standby.port}"
        parse = clients.channel(target).unary_unary(method("Parse"))
        request = health_pb2.HealthCheckRequest(service="x").SerializeToString()
        for _ in range(6):
            await parse(request, wait_for_ready=True)
        assert (echo.decoded, standby_echo.decoded) == (6, 0)

        await kit_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

        async def nobody_serves() -> bool:
            try:
                await parse(request, wait_for_ready=True, timeout=0.2)
            except grpc.aio.AioRpcError as error:
                return error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            return False

        await eventually(nobody_serves, what="the client to see no address serving")
        waiting = asyncio.ensure_future(parse(request, wait_for_ready=True))
        await standby.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await waiting
        before = echo.decoded
        for _ in range(5):
            await parse(request, wait_for_ready=True)
    finally:
        await clients.close()
        standby_echo.release.set()
        await standby.stop(0)
    assert standby_echo.decoded == 6
    assert echo.decoded == before
