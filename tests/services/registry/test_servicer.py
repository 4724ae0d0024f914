"""RegistryService over real gRPC, with a real Postgres and the in-process FACEIT sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from services.kit.call_wraps import ERROR_DETAILS_KEY
from tests.services.registry.conftest import Registry, running_registry
from tests.services.voice.tcp_proxy import TcpProxy


async def status_of(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error a call ends with (fails the test if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def link(registry: Registry, discord_user_id: int, nickname: str) -> pb.LinkPlayerResponse:
    """LinkPlayer, awaited."""
    request = pb.LinkPlayerRequest(discord_user_id=discord_user_id, faceit_nickname=nickname)
    response: pb.LinkPlayerResponse = await registry.stub.LinkPlayer(request)
    return response


async def test_link_player_links_with_the_faceit_profile(registry: Registry) -> None:
    """LinkPlayer finds the nickname on FACEIT and returns the new link with its profile."""
    made = registry.sandbox.world.add_player("s1mple", skill_level=10, country="ua")

    response = await link(registry, 80351110224678912, "s1mple")

    assert response.created is True
    assert response.link.discord_user_id == 80351110224678912
    assert response.link.faceit_player_id == made.player_id
    assert response.link.faceit_nickname == "s1mple"
    assert response.link.profile.skill_level == 10
    assert response.link.profile.faceit_elo == made.faceit_elo
    assert response.link.profile.country == "ua"
    assert response.link.profile.game == "cs2"
    assert response.link.profile.faceit_url == "https://www.faceit.com/en/players/s1mple"
    assert response.link.linked_at.seconds > 0


async def test_linking_the_same_account_again_changes_nothing(registry: Registry) -> None:
    """A second LinkPlayer for the same account succeeds with created=false and the same link."""
    registry.sandbox.world.add_player("s1mple")
    first = await link(registry, 42, "s1mple")

    again = await link(registry, 42, "s1mple")

    assert again.created is False
    assert again.link == first.link


async def test_account_linked_to_another_user_is_already_exists(registry: Registry) -> None:
    """ALREADY_EXISTS names the nickname that another Discord user holds."""
    registry.sandbox.world.add_player("s1mple")
    await link(registry, 42, "s1mple")

    error = await status_of(link(registry, 43, "s1mple"))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "'s1mple'" in (error.details() or "")
    assert "another Discord user" in (error.details() or "")


async def test_linking_another_account_while_linked_is_failed_precondition(
    registry: Registry,
) -> None:
    """A linked user must unlink first; the existing link stays."""
    registry.sandbox.world.add_player("s1mple")
    registry.sandbox.world.add_player("zywoo")
    first = await link(registry, 42, "s1mple")

    error = await status_of(link(registry, 42, "zywoo"))
    current = await registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest(discord_user_id=42))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "unlink first" in (error.details() or "")
    assert current.link == first.link


async def test_unknown_nickname_is_not_found_with_suggestions(registry: Registry) -> None:
    """An unknown nickname is NOT_FOUND with close nicknames in faceitvoice-suggestions."""
    for name in ("s1mple", "s1mple_fan", "zywoo"):
        registry.sandbox.world.add_player(name)

    error = await status_of(link(registry, 42, "S1MPLE"))
    trailing = dict(error.trailing_metadata() or ())

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert trailing["faceitvoice-suggestions"] == "s1mple,s1mple_fan"


async def test_unknown_nickname_without_close_matches_has_empty_suggestions(
    registry: Registry,
) -> None:
    """With nothing close, the suggestions entry is present and empty."""
    error = await status_of(link(registry, 42, "nobody"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert dict(error.trailing_metadata() or ())["faceitvoice-suggestions"] == ""


@pytest.mark.parametrize("nickname", ["a", "has space", "x" * 33, "semi;colon", "", "ünï"])
async def test_bad_nickname_is_rejected_before_any_faceit_request(
    registry: Registry, nickname: str
) -> None:
    """INVALID_ARGUMENT for a malformed nickname, and the sandbox saw no request at all."""
    error = await status_of(link(registry, 42, nickname))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert registry.sandbox.request_log.entries() == []


async def test_discord_user_id_zero_is_invalid(registry: Registry) -> None:
    """discord_user_id 0 is INVALID_ARGUMENT for LinkPlayer, UnlinkPlayer and GetPlayerLink."""
    registry.sandbox.world.add_player("s1mple")

    errors = [
        await status_of(link(registry, 0, "s1mple")),
        await status_of(registry.stub.UnlinkPlayer(pb.UnlinkPlayerRequest(discord_user_id=0))),
        await status_of(registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest(discord_user_id=0))),
    ]

    assert [error.code() for error in errors] == [grpc.StatusCode.INVALID_ARGUMENT] * 3
    assert registry.sandbox.request_log.entries() == []


async def test_faceit_down_is_unavailable(registry: Registry) -> None:
    """When FACEIT answers 503 beyond the retries, LinkPlayer is UNAVAILABLE."""
    registry.sandbox.world.add_player("s1mple")
    registry.sandbox.faults.add_failure(503, 10)

    error = await status_of(link(registry, 42, "s1mple"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(error) == {"dependency": "faceit"}


async def test_database_down_is_unavailable_without_blaming_faceit(
    registry_database: str,
) -> None:
    """With FACEIT up and the database cut off, LinkPlayer is UNAVAILABLE naming no FACEIT."""
    async with (
        TcpProxy.serving(registry_database) as proxy,
        running_registry(proxy.dsn(registry_database)) as registry,
    ):
        registry.sandbox.world.add_player("s1mple")
        await proxy.down()

        error = await status_of(link(registry, 42, "s1mple"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(error) == {}
    assert "FACEIT" not in (error.details() or "")


def error_details(error: grpc.aio.AioRpcError) -> dict[str, object]:
    """The JSON the kit puts in the `error-details` trailing metadata ({} when absent)."""
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_DETAILS_KEY:
            details: dict[str, object] = json.loads(value)
            return details
    return {}


async def test_faceit_refusing_the_key_is_unavailable(registry: Registry) -> None:
    """A 401 from FACEIT (bad server key) is UNAVAILABLE for the caller, not NOT_FOUND."""
    registry.sandbox.world.add_player("s1mple")
    registry.sandbox.faults.add_failure(401, 1)

    error = await status_of(link(registry, 42, "s1mple"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "API key" in (error.details() or "")
    assert error_details(error) == {"dependency": "faceit"}


async def test_failed_suggestion_search_still_answers_not_found(registry: Registry) -> None:
    """When the fuzzy search is down, an unknown nickname is NOT_FOUND with no suggestions."""
    registry.sandbox.world.add_player("s1mple")
    registry.sandbox.faults.add_failure(503, 10, route="search_players")

    error = await status_of(link(registry, 42, "s1mpl"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert dict(error.trailing_metadata() or ())["faceitvoice-suggestions"] == ""


async def test_unlink_removes_the_link_once(registry: Registry) -> None:
    """UnlinkPlayer returns the removed link; a second unlink is NOT_FOUND; the account is free."""
    registry.sandbox.world.add_player("s1mple")
    made = await link(registry, 42, "s1mple")

    removed = await registry.stub.UnlinkPlayer(pb.UnlinkPlayerRequest(discord_user_id=42))
    again = await status_of(registry.stub.UnlinkPlayer(pb.UnlinkPlayerRequest(discord_user_id=42)))
    relinked = await link(registry, 43, "s1mple")

    assert removed.link == made.link
    assert again.code() == grpc.StatusCode.NOT_FOUND
    assert relinked.created is True


async def test_get_player_link_by_either_side(registry: Registry) -> None:
    """GetPlayerLink finds a link by Discord user or FACEIT player; others are NOT_FOUND."""
    made = await _linked(registry, 42, "s1mple")

    by_user = await registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest(discord_user_id=42))
    by_player = await registry.stub.GetPlayerLink(
        pb.GetPlayerLinkRequest(faceit_player_id=made.faceit_player_id)
    )
    missing = await status_of(
        registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest(faceit_player_id="nope"))
    )
    unset = await status_of(registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest()))

    assert by_user.link == made
    assert by_player.link == made
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert unset.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _linked(registry: Registry, discord_user_id: int, nickname: str) -> pb.PlayerLink:
    registry.sandbox.world.add_player(nickname)
    return (await link(registry, discord_user_id, nickname)).link


async def _seed_links(registry: Registry, count: int) -> list[str]:
    """Insert `count` links straight into the table; their FACEIT player ids."""
    rows = [(1000 + index, f"player-{index:04d}", f"nick{index}") for index in range(count)]
    await registry.pool.executemany(
        "INSERT INTO registry.player_links (discord_user_id, faceit_player_id, faceit_nickname)"
        " VALUES ($1, $2, $3)",
        rows,
    )
    return [row[1] for row in rows]


@pytest.mark.parametrize("asked", [10, 1000])
async def test_resolve_players_is_one_sql_statement(registry: Registry, asked: int) -> None:
    """ResolvePlayers of 10 or 1000 ids (half linked, with duplicates) runs one SQL statement."""
    linked = await _seed_links(registry, asked // 2)
    unlinked = [f"unlinked-{index}" for index in range(asked - len(linked))]
    ids = [*linked, *unlinked]
    registry.statements.clear()

    response = await registry.stub.ResolvePlayers(
        pb.ResolvePlayersRequest(faceit_player_ids=ids[: asked - 5] + ids[:5])
    )

    assert len(registry.registry_statements()) == 1
    assert "ANY" in registry.registry_statements()[0]
    assert [found.faceit_player_id for found in response.links] == linked


async def test_resolve_players_refuses_more_than_1000_ids(registry: Registry) -> None:
    """1001 ids are INVALID_ARGUMENT without any SQL."""
    registry.statements.clear()

    error = await status_of(
        registry.stub.ResolvePlayers(
            pb.ResolvePlayersRequest(faceit_player_ids=[f"p{index}" for index in range(1001)])
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert registry.registry_statements() == []


async def test_list_player_links_visits_every_link_once(registry: Registry) -> None:
    """Paging by 7 through 50 links yields each exactly once, oldest first; the last page ends."""
    seeded = await _seed_links(registry, 50)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await registry.stub.ListPlayerLinks(
            pb.ListPlayerLinksRequest(page_size=7, page_token=token)
        )
        pages += 1
        seen.extend(found.faceit_player_id for found in page.links)
        token = page.next_page_token
        if not token:
            break

    assert sorted(seen) == sorted(seeded)
    assert len(seen) == len(set(seen)) == 50
    assert pages == 8


async def test_list_player_links_orders_by_link_time(registry: Registry) -> None:
    """Links come back in the order they were made, with the default page size."""
    made = [await _linked(registry, 500 - index, f"player{index}") for index in range(3)]

    page = await registry.stub.ListPlayerLinks(pb.ListPlayerLinksRequest())

    assert list(page.links) == made
    assert page.next_page_token == ""


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxfQ", "%%%"])
async def test_list_player_links_rejects_foreign_tokens(registry: Registry, token: str) -> None:
    """A page token ListPlayerLinks did not make is INVALID_ARGUMENT."""
    error = await status_of(
        registry.stub.ListPlayerLinks(pb.ListPlayerLinksRequest(page_token=token))
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_player_links_rejects_oversized_pages(registry: Registry) -> None:
    """page_size above 500 is INVALID_ARGUMENT."""
    error = await status_of(registry.stub.ListPlayerLinks(pb.ListPlayerLinksRequest(page_size=501)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_many_users_racing_for_one_account_exactly_one_wins(registry: Registry) -> None:
    """20 Discord users linking the same account at once: one link, 19 ALREADY_EXISTS."""
    registry.sandbox.world.add_player("s1mple")
    requests = [
        registry.stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=user, faceit_nickname="s1mple")
        )
        for user in range(1, 21)
    ]

    results = await asyncio.gather(*requests, return_exceptions=True)

    wins = [result for result in results if isinstance(result, pb.LinkPlayerResponse)]
    losses = [result for result in results if isinstance(result, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert wins[0].created is True
    assert [loss.code() for loss in losses] == [grpc.StatusCode.ALREADY_EXISTS] * 19
    count = await registry.pool.fetchval("SELECT count(*) FROM registry.player_links")
    assert count == 1


async def test_one_user_racing_to_link_two_accounts_gets_one_link(registry: Registry) -> None:
    """One user linking two accounts 10 times each at once ends with exactly one link."""
    registry.sandbox.world.add_player("s1mple")
    registry.sandbox.world.add_player("zywoo")
    requests = [
        registry.stub.LinkPlayer(pb.LinkPlayerRequest(discord_user_id=42, faceit_nickname=nick))
        for _ in range(10)
        for nick in ("s1mple", "zywoo")
    ]

    results = await asyncio.gather(*requests, return_exceptions=True)

    wins = [result for result in results if isinstance(result, pb.LinkPlayerResponse)]
    losses = [result for result in results if isinstance(result, grpc.aio.AioRpcError)]
    assert len(wins) + len(losses) == 20
    assert sum(win.created for win in wins) == 1
    assert len({win.link.faceit_nickname for win in wins}) == 1
    assert {loss.code() for loss in losses} <= {grpc.StatusCode.FAILED_PRECONDITION}
    rows = await registry.pool.fetch("SELECT faceit_nickname FROM registry.player_links")
    assert [row["faceit_nickname"] for row in rows] == [wins[0].link.faceit_nickname]


async def test_calls_without_the_token_are_unauthenticated(registry: Registry) -> None:
    """With GRPC_AUTH_TOKEN set, a call without the bearer token is UNAUTHENTICATED."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{registry.server.port}") as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        error = await status_of(stub.ResolvePlayers(pb.ResolvePlayersRequest()))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


HOSTILE_PLAYER_IDS = ["p\x00", "𝄞" * 33, "x" * (3 << 20)]
"""A NUL, 132 bytes of four-byte characters, 3 MB: none can be a FACEIT player id."""


@pytest.mark.parametrize("player_id", HOSTILE_PLAYER_IDS, ids=["nul", "4-byte", "3MB"])
async def test_hostile_player_ids_are_invalid_argument(registry: Registry, player_id: str) -> None:
    """GetPlayerLink and ResolvePlayers refuse such ids with a short INVALID_ARGUMENT."""
    calls = [
        registry.stub.GetPlayerLink(pb.GetPlayerLinkRequest(faceit_player_id=player_id)),
        registry.stub.ResolvePlayers(pb.ResolvePlayersRequest(faceit_player_ids=["a", player_id])),
    ]
    for call in calls:
        error = await status_of(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(error.details() or "") < 200
    assert registry.registry_statements() == []


@pytest.mark.parametrize("nickname", ["s1mple\x00", "n" * (3 << 20)], ids=["nul", "3MB"])
async def test_hostile_nicknames_are_invalid_argument_echoed_short(
    registry: Registry, nickname: str
) -> None:
    """LinkPlayer refuses them, quoting at most a short prefix of the nickname."""
    request = pb.LinkPlayerRequest(discord_user_id=1, faceit_nickname=nickname)
    error = await status_of(registry.stub.LinkPlayer(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.details() or "") < 200


@pytest.mark.parametrize("token", ["a\x00", "A" * 2000], ids=["nul", "long"])
async def test_hostile_page_tokens_are_invalid_argument(registry: Registry, token: str) -> None:
    """ListPlayerLinks refuses a token with NUL, or longer than any it gives out."""
    request = pb.ListPlayerLinksRequest(page_token=token)
    error = await status_of(registry.stub.ListPlayerLinks(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (error.details() or "")
