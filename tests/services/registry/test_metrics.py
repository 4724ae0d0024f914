"""The registry's metrics move when their events happen: real registry over gRPC and HTTP,
FACEIT sandbox, Postgres."""

from __future__ import annotations

import grpc
import httpx
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from services.kit.grpc_client import GrpcClients
from tests.services.registry.conftest import LinkingRegistry, Registry
from tests.services.registry.link_browser import browser
from tests.services.registry.test_link_changes import take, watching
from tests.support import eventually

LINK_PLAYER = "/faceitvoice.v1.RegistryService/LinkPlayer"
WATCH = "/faceitvoice.v1.RegistryService/WatchLinkChanges"


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _faceit_calls(registry: CollectorRegistry, status: str) -> float:
    """FACEIT API requests that ended with `status`, over every endpoint."""
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "registry_faceit_api_calls"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["status"] == status
    )


async def test_grpc_calls_are_counted_by_method_and_code(registry: Registry) -> None:
    """Each LinkPlayer is counted with the code it got: OK, NOT_FOUND, UNAUTHENTICATED."""
    registry.sandbox.world.add_player("s1mple")
    metrics = registry.metrics.registry

    await registry.stub.LinkPlayer(
        pb.LinkPlayerRequest(discord_user_id=42, faceit_nickname="s1mple")
    )
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await registry.stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=43, faceit_nickname="nobody")
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    strangers = GrpcClients(token="wrong", timeout=5.0)
    try:
        stub = pb_grpc.RegistryServiceStub(strangers.channel(f"127.0.0.1:{registry.server.port}"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.LinkPlayer(pb.LinkPlayerRequest(discord_user_id=44, faceit_nickname="x"))
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        await strangers.close()

    calls = "registry_grpc_calls_total"
    assert _value(metrics, calls, method=LINK_PLAYER, code="OK") == 1
    assert _value(metrics, calls, method=LINK_PLAYER, code="NOT_FOUND") == 1
    assert _value(metrics, calls, method=LINK_PLAYER, code="UNAUTHENTICATED") == 1
    latency = "registry_grpc_call_seconds_count"
    assert _value(metrics, latency, method=LINK_PLAYER) == 3


async def test_faceit_lookups_are_counted_by_endpoint_and_outcome(registry: Registry) -> None:
    """A FACEIT lookup counts its answers: a 200, then 503s when FACEIT fails."""
    registry.sandbox.world.add_player("s1mple")
    metrics = registry.metrics.registry
    await registry.stub.LinkPlayer(
        pb.LinkPlayerRequest(discord_user_id=42, faceit_nickname="s1mple")
    )
    assert _faceit_calls(metrics, "200") >= 1

    registry.sandbox.world.add_player("zywoo")
    registry.sandbox.faults.add_failure(503, 10)
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await registry.stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=43, faceit_nickname="zywoo")
        )
    assert down.value.code() is grpc.StatusCode.UNAVAILABLE
    assert _faceit_calls(metrics, "503") == 2  # the test client's two attempts


async def test_link_outcomes_are_counted_and_served_at_metrics(linking: LinkingRegistry) -> None:
    """StartLink counts a start, signing in a verified link, a replayed callback a failure
    (bad_callback); GET /metrics on the registry's HTTP port shows all three."""
    player = linking.sandbox.world.add_player("s1mple")
    started = await linking.start_link(42, "Alice")
    async with browser() as alice:
        page = await alice.open(started.url)
        departed = await alice.press_continue(started.url, page)
        callback = await alice.sign_in(departed.headers["location"], player.player_id)
        assert (await alice.open(callback)).status == 200
        assert (await alice.open(callback)).status == 400

    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{linking.http_url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert samples[("registry_links_started_total", ())] == 1
    assert samples[("registry_links_verified_total", ())] == 1
    assert samples[("registry_link_failures_total", (("reason", "bad_callback"),))] == 1
    assert samples[("registry_link_failures_total", (("reason", "faceit_down"),))] == 0


async def test_a_stream_the_client_ends_is_counted_cancelled(registry: Registry) -> None:
    """A WatchLinkChanges stream cancelled by its client counts as CANCELLED, never as the
    UNKNOWN the internal-errors alert pages on."""
    registry.sandbox.world.add_player("s1mple")
    metrics = registry.metrics.registry
    async with watching(registry) as changes:
        await registry.stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=42, faceit_nickname="s1mple")
        )
        await take(changes, 1)

    async def counted() -> bool:
        return _value(metrics, "registry_grpc_calls_total", method=WATCH, code="CANCELLED") == 1

    await eventually(counted, what="the ended stream to be counted")
    unknown = _value(metrics, "registry_grpc_calls_total", method=WATCH, code="UNKNOWN")
    assert unknown == 0
