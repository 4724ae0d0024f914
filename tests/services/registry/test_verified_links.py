"""Verified links: the linking rules of faceit_oauth mode, StartLink, replicas, migration."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb
from faceitvoice.v1 import registry_service_pb2_grpc as pb_grpc

from sandbox.faceit.server import FaceitSandbox
from services.kit.migrations import apply_migrations
from services.registry.links import FaceitAccount
from services.registry.server import MIGRATIONS, SCHEMA, migrate
from services.registry.store import PlayerLinkRepository
from tests.services.registry.conftest import (
    LinkingRegistry,
    Registry,
    linking_registry,
    register_oauth_client,
    running_registry,
)
from tests.services.registry.link_browser import browser, on

ALICE, MALLORY = 1001, 6666
Kind = pb.LinkChange.Kind


async def unverified(linking: LinkingRegistry, discord_user_id: int, player_id: str) -> None:
    """An unverified link as nickname mode (or the migration) leaves it."""
    account = FaceitAccount(player_id=player_id, nickname="claimed")
    assert await PlayerLinkRepository(linking.pool).insert(discord_user_id, account) is not None


async def link_of(stub: pb_grpc.RegistryServiceStub, discord_user_id: int) -> pb.PlayerLink | None:
    """The user's link, or None."""
    try:
        response = await stub.GetPlayerLink(
            pb.GetPlayerLinkRequest(discord_user_id=discord_user_id)
        )
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return None
    link: pb.PlayerLink = response.link
    return link


async def changes_after(linking: LinkingRegistry, after: int, count: int) -> list[pb.LinkChange]:
    """The first `count` changes after `after`."""
    call = linking.stub.WatchLinkChanges(pb.WatchLinkChangesRequest(after_sequence=after))
    try:
        return [(await asyncio.wait_for(call.read(), 10)).change for _ in range(count)]
    finally:
        call.cancel()


async def test_only_verified_links_resolve_in_faceit_oauth_mode(linking: LinkingRegistry) -> None:
    """ResolvePlayers leaves unverified links out (they give no channel access); GetPlayerLink
    still shows them, unverified."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    await unverified(linking, MALLORY, "squatted-player")
    async with browser() as alice:
        await alice.link((await linking.start_link(ALICE)).url, alice_fc.player_id)

    resolved = await linking.stub.ResolvePlayers(
        pb.ResolvePlayersRequest(faceit_player_ids=["squatted-player", alice_fc.player_id])
    )
    squatter = await link_of(linking.stub, MALLORY)

    assert [link.discord_user_id for link in resolved.links] == [ALICE]
    assert resolved.links[0].verified
    assert squatter is not None and not squatter.verified and not squatter.HasField("verified_at")


async def test_nickname_mode_resolves_unverified_links(registry: Registry) -> None:
    """With LINK_VERIFICATION=nickname, ResolvePlayers returns unverified links as before."""
    registry.sandbox.world.add_player("s1mple")
    await registry.stub.LinkPlayer(
        pb.LinkPlayerRequest(discord_user_id=1, faceit_nickname="s1mple")
    )
    linked = await link_of(registry.stub, 1)
    assert linked is not None
    player_id = linked.faceit_player_id

    resolved = await registry.stub.ResolvePlayers(
        pb.ResolvePlayersRequest(faceit_player_ids=[player_id])
    )

    assert [(link.discord_user_id, link.verified) for link in resolved.links] == [(1, False)]


async def test_link_by_nickname_is_refused_in_faceit_oauth_mode(linking: LinkingRegistry) -> None:
    """LinkPlayer is FAILED_PRECONDITION saying links are made by signing in with FACEIT."""
    linking.sandbox.world.add_player("s1mple")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await linking.stub.LinkPlayer(
            pb.LinkPlayerRequest(discord_user_id=1, faceit_nickname="s1mple")
        )

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "signing in with FACEIT" in (refused.value.details() or "")
    assert await link_of(linking.stub, 1) is None


async def test_start_link_is_refused_in_nickname_mode(registry: Registry) -> None:
    """StartLink is FAILED_PRECONDITION when link verification is off."""
    request = pb.StartLinkRequest(discord_user_id=1, discord_display_name="Alice")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.stub.StartLink(request)

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "LINK_VERIFICATION=nickname" in (refused.value.details() or "")


@pytest.mark.parametrize(
    ("display_name", "username"),
    [("", "alice"), ("   ", ""), ("A" * 101, ""), ("Alice", "a\x00b"), ("Al\u202eecila", "")],
)
async def test_start_link_refuses_names_the_page_could_not_show_truly(
    linking: LinkingRegistry, display_name: str, username: str
) -> None:
    """A missing, overlong, control-character or bidi-override name is INVALID_ARGUMENT."""
    request = pb.StartLinkRequest(
        discord_user_id=1, discord_display_name=display_name, discord_username=username
    )

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await linking.stub.StartLink(request)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_start_link_gives_a_one_time_url_that_expires(linking: LinkingRegistry) -> None:
    """The URL is under LINK_PUBLIC_BASE_URL, unguessable, and expires LINK_STATE_TTL_S later."""
    before = datetime.now(UTC)
    first = await linking.start_link(ALICE)
    second = await linking.start_link(ALICE + 1)

    assert first.url.startswith(f"{linking.public_base_url}/link/")
    assert len(first.url.rsplit("/", 1)[1]) == 43 and first.url != second.url
    expires = first.expires_at.ToDatetime(tzinfo=UTC)
    assert before + timedelta(seconds=590) < expires < before + timedelta(seconds=610)


async def test_a_new_start_link_ends_the_previous_url(linking: LinkingRegistry) -> None:
    """After a second /register, the first link answers 404; the second works."""
    first = await linking.start_link(ALICE)
    second = await linking.start_link(ALICE)
    async with browser() as alice:
        old = await alice.open(first.url)
        new = await alice.open(second.url)

    assert old.status == 404
    assert new.status == 200


async def test_a_verified_link_removes_another_users_unverified_claim(
    linking: LinkingRegistry,
) -> None:
    """The owner's sign-in removes a squatter's unverified link of the account: the stream says
    UNLINKED for the squatter, then LINKED (verified) for the owner."""
    owner_fc = linking.sandbox.world.add_player("owner_fc")
    await unverified(linking, MALLORY, owner_fc.player_id)
    async with browser() as owner:
        page = await owner.link((await linking.start_link(ALICE)).url, owner_fc.player_id)

    changes = await changes_after(linking, 1, 2)  # after the squatter's own LINKED
    assert page.status == 200
    assert "an unverified claim of this FACEIT account by another Discord account" in page.html
    assert [(c.kind, c.link.discord_user_id, c.link.verified) for c in changes] == [
        (Kind.KIND_UNLINKED, MALLORY, False),
        (Kind.KIND_LINKED, ALICE, True),
    ]
    assert await link_of(linking.stub, MALLORY) is None


async def test_an_account_verified_by_another_user_is_not_taken(linking: LinkingRegistry) -> None:
    """A second Discord user signing in with an account verified by someone else gets a 409
    page; the first link stays."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice, browser() as other:
        await alice.link((await linking.start_link(ALICE, "Alice")).url, alice_fc.player_id)
        before = await link_of(linking.stub, ALICE)
        page = await other.link(
            (await linking.start_link(MALLORY, "Mallory")).url, alice_fc.player_id
        )

    assert page.status == 409
    assert page.heading == "This FACEIT account is linked to another Discord account"
    assert "/unregister" in page.html
    assert await link_of(linking.stub, ALICE) == before
    assert await link_of(linking.stub, MALLORY) is None


async def test_signing_in_with_another_account_replaces_ones_own_link(
    linking: LinkingRegistry,
) -> None:
    """A user linked to one account who proves another is relinked: UNLINKED old, LINKED new."""
    first_fc = linking.sandbox.world.add_player("first_fc")
    second_fc = linking.sandbox.world.add_player("second_fc")
    async with browser() as alice:
        await alice.link((await linking.start_link(ALICE)).url, first_fc.player_id)
        page = await alice.link((await linking.start_link(ALICE)).url, second_fc.player_id)

    changes = await changes_after(linking, 1, 2)
    assert "This replaced the earlier link(s) of FACEIT account first_fc" in page.html
    assert [(c.kind, c.link.faceit_nickname) for c in changes] == [
        (Kind.KIND_UNLINKED, "first_fc"),
        (Kind.KIND_LINKED, "second_fc"),
    ]


async def test_proving_ones_unverified_link_verifies_it_in_place(
    linking: LinkingRegistry,
) -> None:
    """An unverified link proved by its own user becomes verified, keeping when it was made."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    await unverified(linking, ALICE, alice_fc.player_id)
    before = await link_of(linking.stub, ALICE)
    async with browser() as alice:
        page = await alice.link((await linking.start_link(ALICE)).url, alice_fc.player_id)
    after = await link_of(linking.stub, ALICE)

    assert page.status == 200 and "replaced" not in page.html
    assert before is not None and after is not None
    assert after.verified and after.linked_at == before.linked_at
    assert after.faceit_nickname == "alice_fc"  # userinfo's nickname, not the claimed one


@asynccontextmanager
async def two_replicas(
    dsn: str,
) -> AsyncIterator[tuple[LinkingRegistry, LinkingRegistry, str]]:
    """Two registries on one database and one FACEIT sandbox, behind the first one's public
    URL (as behind a load balancer), and the player id of a FACEIT account to sign in with."""
    async with FaceitSandbox(api_key="replicas") as sandbox:
        player_id = sandbox.world.add_player("alice_fc").player_id
        async with (
            linking_registry(dsn, sandbox) as first,
            linking_registry(dsn, sandbox, public_base_url=first.public_base_url) as second,
        ):
            register_oauth_client(sandbox, first.public_base_url)
            yield first, second, player_id


async def test_one_replica_starts_the_link_and_another_finishes_it(
    registry_database: str,
) -> None:
    """Two registries on one database behind one public URL: the callback reaching the other
    replica finishes the flow, and the first then refuses the replayed callback."""
    async with two_replicas(registry_database) as (first, second, alice_fc), browser() as alice:
        started = await first.start_link(ALICE)
        finished = await alice.link(started.url, alice_fc, finish_on=second.http_url)
        link = await link_of(second.stub, ALICE)
        state = started.url.rsplit("/", 1)[1]
        replayed = await alice.open(f"{first.http_url}/link/callback?state={state}&code=x")

    assert finished.status == 200, finished.html
    assert link is not None and link.verified
    assert replayed.status == 400


async def test_links_existing_before_verification_are_migrated_unverified(
    fresh_database: str, tmp_path: Path
) -> None:
    """A link made before the verified-links migration reads back unverified after it."""
    first_only = tmp_path / "migrations"
    first_only.mkdir()
    shutil.copy(MIGRATIONS / "0001_player_links.sql", first_only)
    connection = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(connection, SCHEMA, first_only)
        await connection.execute(
            "INSERT INTO registry.player_links (discord_user_id, faceit_player_id, "
            "faceit_nickname) VALUES (7, 'p-7', 'old_timer')"
        )
        applied = await migrate(connection)
    finally:
        await connection.close()
    async with running_registry(fresh_database, link_verification="faceit_oauth") as registry:
        link = await link_of(registry.stub, 7)
        resolved = await registry.stub.ResolvePlayers(
            pb.ResolvePlayersRequest(faceit_player_ids=["p-7"])
        )

    assert applied == sorted(p.name for p in MIGRATIONS.glob("*.sql"))[1:]
    assert link is not None and link.verified is False and not link.HasField("verified_at")
    assert list(resolved.links) == []


async def test_a_callback_raced_on_two_replicas_links_once(registry_database: str) -> None:
    """Ten simultaneous callbacks of one sign-in, split over two replicas: exactly one links
    (the state is consumed in one statement), the others answer 400, one change is written."""
    async with two_replicas(registry_database) as (first, second, alice_fc), browser() as alice:
        started = await first.start_link(ALICE)
        page = await alice.open(started.url)
        departed = await alice.press_continue(started.url, page)
        callback = await alice.sign_in(departed.headers["location"], alice_fc)
        replicas = [first.http_url, second.http_url] * 5
        pages = await asyncio.gather(*(alice.open(on(callback, replica)) for replica in replicas))
        changes = await first.pool.fetchval("SELECT count(*) FROM registry.link_changes")

    assert sorted(page.status for page in pages) == [200] + [400] * 9
    assert changes == 1
