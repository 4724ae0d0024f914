"""Registry: ResolvePlayers of 10 ids (latency, SQL statements per call) beside a bare RPC."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.harness import Where, running_system
from bench.stats import latency_summary, ratio
from sandbox.faceit.client import FaceitSandboxClient
from services.kit.faceit_api import FaceitApiClient
from services.kit.grpc_client import GrpcClients
from services.kit.settings import load_settings
from services.registry.server import build_server
from services.registry.settings import RegistrySettings

TOKEN = "bench-registry-token"


@dataclass(frozen=True)
class RegistrySizes:
    """Calls timed (after `warmup` untimed ones), ids per call (half linked)."""

    calls: int = 2000
    warmup: int = 200
    ids: int = 10


QUICK = RegistrySizes(calls=50, warmup=10)


async def _timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - began)
    return samples


async def run(where: Where, sizes: RegistrySizes) -> dict[str, Any]:
    """An in-process registry on the run's database, its statements logged by asyncpg."""
    async with running_system(where, "registry") as system:
        info = system.info
        statements: list[str] = []

        async def log_queries(connection: asyncpg.Connection) -> None:
            connection.add_query_logger(lambda record: statements.append(record.query))

        pool = await asyncpg.create_pool(
            info["database_url"], min_size=1, max_size=10, init=log_queries
        )
        settings = load_settings(
            RegistrySettings,
            _env_file=None,
            grpc_host="127.0.0.1",
            grpc_port=0,
            grpc_auth_token=TOKEN,
            faceit_api_key=info["faceit_api_key"],
            faceit_api_base=info["faceit_api_base"],
            link_verification="nickname",
        )
        faceit = FaceitApiClient(info["faceit_api_key"], base_url=info["faceit_api_base"])
        server = build_server(settings, pool, faceit)
        port = await server.start()
        clients = GrpcClients(token=TOKEN, timeout=10.0)
        try:
            channel = clients.channel(f"127.0.0.1:{port}")
            stub = pb_grpc.RegistryServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            linked = []
            async with FaceitSandboxClient(info["faceit_url"]) as sandbox:
                for index in range(sizes.ids // 2):
                    player = await sandbox.create_player(f"bench_reg_{index}")
                    await stub.LinkPlayer(
                        pb.LinkPlayerRequest(
                            discord_user_id=10_000 + index, faceit_nickname=f"bench_reg_{index}"
                        )
                    )
                    linked.append(player["player_id"])
            ids = linked + [f"unlinked-{i}" for i in range(sizes.ids - len(linked))]
            request = pb.ResolvePlayersRequest(faceit_player_ids=ids)
            check = health_pb2.HealthCheckRequest()

            async def resolve() -> None:
                response = await stub.ResolvePlayers(request)
                if len(response.links) != len(linked):
                    raise AssertionError(f"resolved {len(response.links)} of {len(linked)}")

            async def bare() -> None:
                await health.Check(check)

            await _timed(resolve, sizes.warmup)
            await _timed(bare, sizes.warmup)
            statements.clear()
            resolve_s = await _timed(resolve, sizes.calls)
            touching = [s for s in statements if "registry." in s]
            bare_s = await _timed(bare, sizes.calls)
        finally:
            await clients.close()
            await server.stop(0)
            await faceit.close()
            await pool.close()
    per_call = len(touching) / sizes.calls
    resolve_latency = latency_summary(resolve_s)
    bare_latency = latency_summary(bare_s)
    return {
        "sizes": asdict(sizes),
        "resolve_players": resolve_latency,
        "health_check_reference": bare_latency,
        "p50_ratio": ratio(resolve_latency["p50_ms"], bare_latency["p50_ms"]),
        "p99_ratio": ratio(resolve_latency["p99_ms"], bare_latency["p99_ms"]),
        "sql_statements_per_call": per_call,
        "sql_statement": touching[0] if touching else "",
        "targets": {
            "one_sql_statement_per_call": {
                "target": "exactly 1 SQL statement per ResolvePlayers",
                "value": per_call,
                "pass": per_call == 1,
            }
        },
    }
