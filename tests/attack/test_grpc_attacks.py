"""Hostile gRPC messages against the three real servers (voice, registry, ingest) of one system.

Every string field of every RPC gets a NUL, a value over its limit and a 3 MB value; rosters get
12,000 players; bodies are garbage, with the token, without it and with wrong ones. Each answer
must be INVALID_ARGUMENT or UNAUTHENTICATED (never INTERNAL or UNKNOWN) with a short message, no
ERROR line may be logged, and every server must still serve afterwards.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import (
    ingest_service_pb2,
    match_pb2,
    registry_service_pb2,
    voice_service_pb2,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.call_wraps import MAX_STATUS_MESSAGE_BYTES
from services.kit.limits import MAX_PLAYERS_PER_TEAM, MAX_TEXT_CHARS
from tests.services.ingest.harness import running_ingest
from tests.services.voice.system import GRPC_TOKEN, VoiceSystem, voice_system

AUTH = (("authorization", f"Bearer {GRPC_TOKEN}"),)
WRONG_TOKENS: list[tuple[tuple[str, str], ...]] = [
    (),
    (("authorization", ""),),
    (("authorization", "Bearer"),),
    (("authorization", "Bearer "),),
    (("authorization", "Bearer wrong"),),
    (("authorization", f"Bearer {GRPC_TOKEN}x"),),
    (("authorization", f"Bearer {GRPC_TOKEN[:-1]}"),),
    (("authorization", GRPC_TOKEN),),
    (("authorization", f"Basic {GRPC_TOKEN}"),),
    (("authorization", f"Bearer {GRPC_TOKEN} {GRPC_TOKEN}"),),
    (("x-authorization", f"Bearer {GRPC_TOKEN}"),),
]
"""Metadata that must not authenticate: none, empty, no token, wrong, near misses, other
schemes, another header."""

NUL = "ok\x00ok"
OVER_EVERY_LIMIT = "𝄞" * (MAX_TEXT_CHARS + 1)
"""1,001 four-byte characters: over every id (bytes) and text (characters) limit."""
THREE_MB = "x" * (3 << 20)
HOSTILE_VALUES = {"NUL": NUL, "over-limit": OVER_EVERY_LIMIT, "3MB": THREE_MB}


@dataclass
class Rpc:
    """One RPC of a server, with a request it would accept; `stream`: a server stream."""

    server: str
    method: str
    request: Message
    stream: bool = False


def _match() -> match_pb2.Match:
    teams = [
        match_pb2.Team(
            faction=f"faction{n}",
            name=f"Team {n}",
            team_id=f"team-{n}",
            roster=[match_pb2.Player(faceit_player_id=f"p{n}", nickname=f"nick{n}")],
        )
        for n in (1, 2)
    ]
    return match_pb2.Match(
        match_id="1-attack",
        version=1,
        organizer_id="org",
        entity=match_pb2.Entity(id="hub", name="Hub", type="hub"),
        game="cs2",
        region="EU",
        teams=teams,
    )


VOICE = "/faceitvoice.v1.VoiceService/"
REGISTRY = "/faceitvoice.v1.RegistryService/"
INGEST = "/faceitvoice.v1.IngestService/"
RPCS = [
    Rpc("voice", VOICE + "OpenMatch", voice_service_pb2.OpenMatchRequest(match=_match())),
    Rpc(
        "voice",
        VOICE + "CloseMatch",
        voice_service_pb2.CloseMatchRequest(match_id="1-attack", version=1, reason="finished"),
    ),
    Rpc("voice", VOICE + "GetMatch", voice_service_pb2.GetMatchRequest(match_id="1-attack")),
    Rpc("voice", VOICE + "ListMatches", voice_service_pb2.ListMatchesRequest(page_token="t")),
    Rpc(
        "registry",
        REGISTRY + "LinkPlayer",
        registry_service_pb2.LinkPlayerRequest(discord_user_id=1, faceit_nickname="nick"),
    ),
    Rpc("registry", REGISTRY + "UnlinkPlayer", registry_service_pb2.UnlinkPlayerRequest()),
    Rpc(
        "registry",
        REGISTRY + "GetPlayerLink",
        registry_service_pb2.GetPlayerLinkRequest(faceit_player_id="p1"),
    ),
    Rpc(
        "registry",
        REGISTRY + "ResolvePlayers",
        registry_service_pb2.ResolvePlayersRequest(faceit_player_ids=["p1", "p2"]),
    ),
    Rpc(
        "registry",
        REGISTRY + "ListPlayerLinks",
        registry_service_pb2.ListPlayerLinksRequest(page_token="t"),
    ),
    Rpc(
        "registry",
        REGISTRY + "StartLink",
        registry_service_pb2.StartLinkRequest(
            discord_user_id=1, discord_display_name="Mallory", discord_username="mallory"
        ),
    ),
    Rpc(
        "registry",
        REGISTRY + "WatchLinkChanges",
        registry_service_pb2.WatchLinkChangesRequest(after_sequence=0),
        stream=True,
    ),
    Rpc(
        "ingest",
        INGEST + "ListEvents",
        ingest_service_pb2.ListEventsRequest(match_id="1-attack", page_token="1"),
    ),
    Rpc("ingest", INGEST + "RetryEvent", ingest_service_pb2.RetryEventRequest(id=1)),
    Rpc("ingest", INGEST + "RunPoll", ingest_service_pb2.RunPollRequest()),
]


def string_paths(descriptor: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every string field of a message type, nested and repeated ones included."""
    for field in descriptor.fields:  # type: ignore[attr-defined]
        path = (*prefix, field.name)
        if field.type == FieldDescriptor.TYPE_STRING:
            yield path
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            yield from string_paths(field.message_type, path)


def with_value(request: Message, path: Sequence[str], value: str) -> Message:
    """A copy of `request` whose field at `path` (first element of repeated ones) is `value`."""
    copy = type(request)()
    copy.CopyFrom(request)
    holder: Message = copy
    for name in path[:-1]:
        child = getattr(holder, name)
        if holder.DESCRIPTOR.fields_by_name[name].is_repeated:
            child = child[0] if len(child) else child.add()
        holder = child
    name = path[-1]
    if holder.DESCRIPTOR.fields_by_name[name].is_repeated:
        field = getattr(holder, name)
        if len(field):
            field[0] = value
        else:
            field.append(value)
    else:
        setattr(holder, name, value)
    return copy


def hostile_requests() -> Iterator[tuple[Rpc, str, Message]]:
    """Every RPC with every string field set to every hostile value, named for the report."""
    for rpc in RPCS:
        for path in string_paths(rpc.request.DESCRIPTOR):
            for label, value in HOSTILE_VALUES.items():
                yield (
                    rpc,
                    f"{rpc.method} {'.'.join(path)}={label}",
                    with_value(rpc.request, path, value),
                )


def garbage_bodies(rpc_type: type[Message], count: int, seed: int) -> list[bytes]:
    """`count` random bodies of 1 to 64 bytes that `rpc_type` cannot decode (a seeded RNG)."""
    rng = random.Random(seed)
    bodies: list[bytes] = []
    while len(bodies) < count:
        body = rng.randbytes(rng.randint(1, 64))
        try:
            rpc_type.FromString(body)
        except DecodeError:
            bodies.append(body)
    return bodies


@dataclass
class ThreeServers:
    """The three real servers of one system and a raw channel to each."""

    channels: dict[str, grpc.aio.Channel]
    voice: VoiceSystem

    async def call(
        self,
        rpc: Rpc,
        body: bytes,
        metadata: Sequence[tuple[str, str]] = AUTH,
    ) -> grpc.StatusCode:
        """The status of `rpc` sent `body` as raw bytes, and its message's length checked (a
        stream's status comes with its end, or is OK at its first message)."""
        channel = self.channels[rpc.server]
        try:
            if rpc.stream:
                async for _ in channel.unary_stream(rpc.method)(
                    body, metadata=metadata, timeout=30
                ):
                    break
            else:
                await channel.unary_unary(rpc.method)(body, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            assert len((error.details() or "").encode()) <= MAX_STATUS_MESSAGE_BYTES
            return error.code()
        return grpc.StatusCode.OK

    async def assert_healthy(self) -> None:
        """Every server reports SERVING and answers a valid list call."""
        for name, channel in self.channels.items():
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
        lists = [
            Rpc("voice", VOICE + "ListMatches", voice_service_pb2.ListMatchesRequest()),
            Rpc(
                "registry",
                REGISTRY + "ListPlayerLinks",
                registry_service_pb2.ListPlayerLinksRequest(),
            ),
            Rpc("ingest", INGEST + "ListEvents", ingest_service_pb2.ListEventsRequest()),
        ]
        for rpc in lists:
            assert await self.call(rpc, rpc.request.SerializeToString()) == grpc.StatusCode.OK


@pytest.fixture
async def servers(fresh_database: str) -> AsyncIterator[ThreeServers]:
    """Registry, voice (on the Discord sandbox) and ingest (delivering to that voice), with the
    token, each on 127.0.0.1:0 over one Postgres."""
    async with voice_system(fresh_database) as system:
        voice = await system.start_voice()
        voice_address = f"127.0.0.1:{voice.grpc.port}"
        async with running_ingest(
            fresh_database, voice_address, GRPC_AUTH_TOKEN=GRPC_TOKEN
        ) as ingest:
            addresses = {
                "voice": voice_address,
                "registry": system.registry_addr,
                "ingest": f"127.0.0.1:{ingest.runtime.grpc_port}",
            }
            channels = {name: grpc.aio.insecure_channel(a) for name, a in addresses.items()}
            try:
                yield ThreeServers(channels, system)
            finally:
                for channel in channels.values():
                    await channel.close()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:200]}" for r in caplog.records if r.levelno >= logging.ERROR
    ]


async def test_hostile_values_in_every_string_field_are_invalid_argument(
    servers: ThreeServers, caplog: pytest.LogCaptureFixture
) -> None:
    """NUL, over-limit and 3 MB values in every string field of every RPC: INVALID_ARGUMENT."""
    caplog.set_level(logging.INFO)
    answers = {}
    for rpc, name, request in hostile_requests():
        answers[name] = await servers.call(rpc, request.SerializeToString())
    wrong = {
        name: code for name, code in answers.items() if code != grpc.StatusCode.INVALID_ARGUMENT
    }
    assert wrong == {}
    assert len(answers) == 28 * len(
        HOSTILE_VALUES
    )  # 24, and the results winner and faction of a Match and a CloseMatch
    assert _errors(caplog) == []
    await servers.assert_healthy()


async def test_oversized_rosters_and_id_lists_are_invalid_argument(
    servers: ThreeServers, caplog: pytest.LogCaptureFixture
) -> None:
    """12,000-player rosters, one player over the team limit, three teams, 12,000 ids to resolve:
    INVALID_ARGUMENT, and nothing is stored."""
    caplog.set_level(logging.INFO)
    open_match = RPCS[0]

    def roster(size: int, prefix: str = "p") -> list[match_pb2.Player]:
        return [
            match_pb2.Player(faceit_player_id=f"{prefix}{i}", nickname="n") for i in range(size)
        ]

    requests = []
    for n in range(40):
        huge = _match()
        huge.match_id = f"1-huge-{n}"
        del huge.teams[0].roster[:]
        huge.teams[0].roster.extend(roster(12_000))
        requests.append(huge)
    one_over = _match()
    one_over.teams[1].roster.extend(roster(MAX_PLAYERS_PER_TEAM, "q"))
    three_teams = _match()
    three_teams.teams.add(faction="faction3", roster=roster(1))
    for match in [*requests, one_over, three_teams]:
        body = voice_service_pb2.OpenMatchRequest(match=match).SerializeToString()
        assert await servers.call(open_match, body) == grpc.StatusCode.INVALID_ARGUMENT
    resolve = RPCS[7]
    for size in (1_001, 12_000):
        body = registry_service_pb2.ResolvePlayersRequest(
            faceit_player_ids=[f"p{i}" for i in range(size)]
        ).SerializeToString()
        assert await servers.call(resolve, body) == grpc.StatusCode.INVALID_ARGUMENT
    listed = voice_service_pb2.ListMatchesResponse.FromString(
        await servers.channels["voice"].unary_unary(VOICE + "ListMatches")(
            b"", metadata=AUTH, timeout=10
        )
    )
    assert list(listed.matches) == []
    assert _errors(caplog) == []
    await servers.assert_healthy()


PUBLIC = [
    Rpc("voice", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest()),
    Rpc("registry", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest()),
    Rpc("ingest", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest()),
]


async def test_garbage_bodies_are_invalid_argument_or_unauthenticated(
    servers: ThreeServers, caplog: pytest.LogCaptureFixture
) -> None:
    """Undecodable bodies: INVALID_ARGUMENT with the token (and on public health), and
    UNAUTHENTICATED without it or with any wrong one; never an ERROR line."""
    caplog.set_level(logging.INFO)
    counts = {"with token": 0, "without": 0, "public": 0}
    for seed, rpc in enumerate(RPCS):
        for body in garbage_bodies(type(rpc.request), 10, seed):
            assert await servers.call(rpc, body) == grpc.StatusCode.INVALID_ARGUMENT
            counts["with token"] += 1
            for metadata in WRONG_TOKENS:
                assert await servers.call(rpc, body, metadata) == grpc.StatusCode.UNAUTHENTICATED
                counts["without"] += 1
    for rpc in PUBLIC:
        for body in garbage_bodies(health_pb2.HealthCheckRequest, 10, 99):
            assert await servers.call(rpc, body, ()) == grpc.StatusCode.INVALID_ARGUMENT
            counts["public"] += 1
    assert counts == {"with token": 140, "without": 140 * len(WRONG_TOKENS), "public": 30}
    assert _errors(caplog) == []
    await servers.assert_healthy()


async def test_valid_requests_with_wrong_tokens_are_unauthenticated(
    servers: ThreeServers, caplog: pytest.LogCaptureFixture
) -> None:
    """A request the server would accept is UNAUTHENTICATED with every wrong token variant."""
    caplog.set_level(logging.INFO)
    for rpc in RPCS:
        for metadata in WRONG_TOKENS:
            body = rpc.request.SerializeToString()
            assert await servers.call(rpc, body, metadata) == grpc.StatusCode.UNAUTHENTICATED
    assert _errors(caplog) == []
    await servers.assert_healthy()


@pytest.fixture
async def oauth_registry(fresh_database: str) -> AsyncIterator[ThreeServers]:
    """The registry alone in faceit_oauth mode (StartLink makes link states), with the token."""
    async with voice_system(fresh_database, link_verification="faceit_oauth") as system:
        channel = grpc.aio.insecure_channel(system.registry_addr)
        try:
            yield ThreeServers({"registry": channel}, system)
        finally:
            await channel.close()


async def test_link_rpcs_refuse_hostile_input_while_links_are_verified(
    oauth_registry: ThreeServers, caplog: pytest.LogCaptureFixture
) -> None:
    """faceit_oauth mode: hostile StartLink names, user id 0 and a negative watch sequence are
    INVALID_ARGUMENT, garbage too, no token UNAUTHENTICATED; a valid StartLink still works."""
    caplog.set_level(logging.INFO)
    start, watch = (rpc for rpc in RPCS if rpc.method.endswith(("StartLink", "WatchLinkChanges")))
    hostile = [request for rpc, _, request in hostile_requests() if rpc is start]
    hostile.append(registry_service_pb2.StartLinkRequest(discord_display_name="Mallory"))
    hostile.append(with_value(start.request, ["discord_display_name"], ""))
    for request in hostile:
        assert await oauth_registry.call(start, request.SerializeToString()) == (
            grpc.StatusCode.INVALID_ARGUMENT
        ), request
    negative = registry_service_pb2.WatchLinkChangesRequest(after_sequence=-1)
    assert await oauth_registry.call(watch, negative.SerializeToString()) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    for seed, rpc in enumerate((start, watch)):
        for body in garbage_bodies(type(rpc.request), 10, seed):
            assert await oauth_registry.call(rpc, body) == grpc.StatusCode.INVALID_ARGUMENT
            assert await oauth_registry.call(rpc, body, ()) == grpc.StatusCode.UNAUTHENTICATED
        valid = rpc.request.SerializeToString()
        assert await oauth_registry.call(rpc, valid, ()) == grpc.StatusCode.UNAUTHENTICATED
    valid_start = start.request.SerializeToString()
    assert await oauth_registry.call(start, valid_start) == grpc.StatusCode.OK
    assert len(hostile) == 8
    assert _errors(caplog) == []
