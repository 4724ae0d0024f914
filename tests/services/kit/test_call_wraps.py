"""Tests of the auth and error-mapping wrappers of every handler, on a real grpc.aio server
(the service added as a generic handler, then as generated code adds it)."""

from __future__ import annotations

import json
import logging

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.kit.call_wraps import ERROR_DETAILS_KEY, MAX_STATUS_MESSAGE_BYTES
from services.kit.grpc_server import GrpcServer
from tests.services.kit.conftest import TOKEN
from tests.services.kit.echo import ERRORS, SERVICE, EchoService, method

AUTH = (("authorization", f"Bearer {TOKEN}"),)


async def _call(
    channel: grpc.aio.Channel, name: str, request: bytes, metadata: tuple = AUTH
) -> bytes:
    return await channel.unary_unary(method(name))(request, metadata=metadata, timeout=5)


async def test_call_without_token_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    """An RPC with no authorization metadata is refused with UNAUTHENTICATED."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Echo", b"hi", metadata=())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_flood_of_refused_calls_logs_a_line_with_a_count_not_one_per_call(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """100 calls without a token in a burst log at most a few WARNING lines (a caller without
    a token must not be able to fill the logs), and the first one is logged."""
    caplog.set_level(logging.INFO, logger="services.kit.call_wraps")
    for _ in range(100):
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(channel, "Echo", b"hi", metadata=())
    refused = [r for r in caplog.records if "unauthenticated" in r.getMessage()]
    assert 1 <= len(refused) <= 5, [r.getMessage() for r in refused]
    assert "refused since the last such line" in refused[0].getMessage()


@pytest.mark.parametrize(
    "value", [f"Bearer {TOKEN}x", "Bearer wrong", TOKEN, f"Basic {TOKEN}", "Bearer "]
)
async def test_call_with_wrong_token_is_unauthenticated(
    channel: grpc.aio.Channel, value: str
) -> None:
    """A wrong token or scheme is refused with UNAUTHENTICATED."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Echo", b"hi", metadata=(("authorization", value),))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_call_with_token_is_served(channel: grpc.aio.Channel) -> None:
    """The right bearer token lets the call through to the handler."""
    reply = json.loads(await _call(channel, "Echo", b"hi"))
    assert reply["request"] == "hi"


async def test_streaming_call_without_token_is_unauthenticated(
    channel: grpc.aio.Channel,
) -> None:
    """Server-streaming RPCs are guarded by the token too."""
    call = channel.unary_stream(method("Count"))(b"2", timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        [item async for item in call]
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_needs_no_token(channel: grpc.aio.Channel) -> None:
    """Health checks are answered without a token."""
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_needs_no_token_and_lists_services(channel: grpc.aio.Channel) -> None:
    """Reflection answers without a token and lists the service, health and reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {
        service.name async for reply in call for service in reply.list_services_response.service
    }
    assert names == {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


async def test_no_token_configured_lets_every_call_through(echo: EchoService) -> None:
    """Without a configured token calls need no metadata."""
    server = GrpcServer(
        registrars=[echo.register], service_names=[SERVICE], port=0, host="127.0.0.1"
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as open_channel:
            reply = json.loads(await _call(open_channel, "Echo", b"open", metadata=()))
    finally:
        await server.stop(0)
    assert reply["request"] == "open"


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_domain_errors_map_to_their_status(channel: grpc.aio.Channel, name: str) -> None:
    """Each DomainError becomes its status code, its message and its details."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Fail", name.encode())
    assert raised.value.code() == ERRORS[name].status
    assert raised.value.details() == f"{name} happened"
    trailing = dict(raised.value.trailing_metadata() or ())
    assert json.loads(trailing[ERROR_DETAILS_KEY]) == {"kind": name}


def test_every_domain_error_has_its_own_status() -> None:
    """The domain errors map to as many distinct, non-generic status codes."""
    codes = {cls.status for cls in ERRORS.values()}
    assert len(codes) == len(ERRORS) == 7
    assert grpc.StatusCode.UNKNOWN not in codes
    assert grpc.StatusCode.INTERNAL not in codes


async def test_unexpected_error_is_internal_and_logged_once(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception is INTERNAL 'internal error', logged once with its traceback."""
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Fail", b"boom")
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert raised.value.details() == "internal error"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "boom" in str(errors[0].exc_info[1])
    assert method("Fail") in errors[0].getMessage()


async def test_database_outage_is_unavailable_and_not_an_error(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that cannot be reached is UNAVAILABLE (retry later), logged as a warning."""
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Fail", b"database")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "database unavailable" in (raised.value.details() or "")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("database unavailable" in record.getMessage() for record in caplog.records)


async def test_handler_abort_passes_through(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """A status set by the handler with context.abort reaches the client unchanged."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Fail", b"abort")
    assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert raised.value.details() == "handler aborted"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_streaming_domain_error_maps_after_items(channel: grpc.aio.Channel) -> None:
    """A server stream yields its items, then its DomainError ends it with the mapped code."""
    call = channel.unary_stream(method("Count"))(b"2", metadata=AUTH, timeout=5)
    items = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for item in call:
            items.append(item)
    assert items == [b"0", b"1"]
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no more numbers"


async def test_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    """A method no servicer has is UNIMPLEMENTED, not a crash of the wrappers."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Nope", b"")
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


GARBAGE = [b"\xff\xff\xff\xff", b"\x0a\x02\xff\xfe", b"\x0a\x10ab", b"\x0b"]
"""Bodies no protobuf message decodes: a bad tag, bad UTF-8, a truncated field, a bad group."""


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("body", GARBAGE)
async def test_undecodable_body_with_token_is_invalid_argument_without_error_log(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """A body the method cannot decode is INVALID_ARGUMENT, with no ERROR line or traceback."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Parse", body)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "the request body is not a valid message"
    assert _errors_logged(caplog) == []


@pytest.mark.parametrize("body", GARBAGE)
async def test_undecodable_body_without_token_is_unauthenticated_and_never_decoded(
    channel: grpc.aio.Channel, echo: EchoService, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """Without the token the call is UNAUTHENTICATED before its body is parsed; no ERROR line."""
    caplog.set_level(logging.DEBUG)
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _call(channel, "Parse", body, metadata=metadata)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert echo.decoded == 0
    assert _errors_logged(caplog) == []


async def test_undecodable_message_in_a_request_stream_is_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """A client stream carrying an undecodable message ends INVALID_ARGUMENT, no ERROR line."""
    caplog.set_level(logging.DEBUG)
    good = health_pb2.HealthCheckRequest(service="a").SerializeToString()
    call = channel.stream_unary(method("Gather"))(
        iter([good, GARBAGE[0]]), metadata=AUTH, timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _errors_logged(caplog) == []


async def test_undecodable_health_check_is_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """The public health method refuses garbage with INVALID_ARGUMENT too, no ERROR line."""
    caplog.set_level(logging.DEBUG)
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await check(GARBAGE[0], timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _errors_logged(caplog) == []


async def test_a_huge_error_message_is_cut_and_keeps_its_status(
    channel: grpc.aio.Channel,
) -> None:
    """An error echoing a 3 MB value keeps its code; message and details reach the client cut."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Fail", b"huge")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = raised.value.details() or ""
    assert details.startswith("bad value xxx") and details.endswith("…")
    assert len(details.encode()) <= MAX_STATUS_MESSAGE_BYTES
    trailing = dict(raised.value.trailing_metadata() or ())
    assert len(trailing.get(ERROR_DETAILS_KEY, "")) <= MAX_STATUS_MESSAGE_BYTES


@pytest.mark.parametrize("body", GARBAGE[:1])
async def test_client_stream_without_token_is_unauthenticated_and_never_decoded(
    channel: grpc.aio.Channel, echo: EchoService, body: bytes
) -> None:
    """A client stream without the token is UNAUTHENTICATED before any message is parsed."""
    good = health_pb2.HealthCheckRequest(service="a").SerializeToString()
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        call = channel.stream_unary(method("Gather"))(
            iter([good, body]), metadata=metadata, timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert echo.decoded == 0


async def test_client_stream_with_token_is_served(channel: grpc.aio.Channel) -> None:
    """A client stream with the token reaches its handler, each message decoded."""
    requests = [health_pb2.HealthCheckRequest(service=name).SerializeToString() for name in "ab"]
    reply = await channel.stream_unary(method("Gather"))(iter(requests), metadata=AUTH, timeout=5)
    assert reply == b"a,b"
