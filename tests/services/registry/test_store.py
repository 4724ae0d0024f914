"""The player link repository against a real, migrated Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.kit.database import create_pool
from services.registry.change_log import NOTIFY_CHANNEL, ChangeLogReader
from services.registry.links import ChangeKind, FaceitAccount
from services.registry.server import migrate
from services.registry.store import AccountTaken, Cursor, PlayerLinkRepository
from tests.support import eventually


def account(index: int) -> FaceitAccount:
    return FaceitAccount(
        player_id=f"player-{index}",
        nickname=f"nick{index}",
        avatar_url=f"https://a.example/{index}.png",
        country="de",
        game="cs2",
        skill_level=index % 10 + 1,
        faceit_elo=1000 + index,
        faceit_url=f"https://www.faceit.com/en/players/nick{index}",
    )


async def test_insert_stores_every_field(repository: PlayerLinkRepository) -> None:
    """An inserted link reads back whole, by Discord user and by FACEIT player."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    inserted = await repository.insert(2**63 - 1, account(1))

    assert inserted is not None
    assert inserted.discord_user_id == 2**63 - 1
    assert inserted.account == account(1)
    assert inserted.linked_at > before
    assert await repository.by_discord_user(2**63 - 1) == inserted
    assert await repository.by_faceit_player("player-1") == inserted


async def test_second_insert_for_a_user_changes_nothing(
    repository: PlayerLinkRepository,
) -> None:
    """A user who has a link gets None back for any account, and the link stays."""
    first = await repository.insert(10, account(1))

    assert await repository.insert(10, account(1)) is None
    assert await repository.insert(10, account(2)) is None
    assert await repository.by_discord_user(10) == first


async def test_account_held_by_another_user_is_taken(repository: PlayerLinkRepository) -> None:
    """The unique constraint on the FACEIT account raises AccountTaken for a second user."""
    await repository.insert(10, account(1))

    with pytest.raises(AccountTaken):
        await repository.insert(11, account(1))
    assert await repository.by_discord_user(11) is None


async def test_delete_returns_the_removed_link(repository: PlayerLinkRepository) -> None:
    """Delete returns the link once, then None; the account is free again."""
    made = await repository.insert(10, account(1))

    assert await repository.delete(10) == made
    assert await repository.delete(10) is None
    assert await repository.insert(11, account(1)) is not None


async def test_resolve_returns_only_linked_players(repository: PlayerLinkRepository) -> None:
    """Resolve finds the linked players among many ids; no ids costs no query."""
    for index in range(5):
        await repository.insert(100 + index, account(index))

    found = await repository.resolve(["player-1", "player-3", "unknown"])

    assert sorted(link.discord_user_id for link in found) == [101, 103]
    assert await repository.resolve([]) == []


async def test_pages_follow_the_keyset_oldest_first(repository: PlayerLinkRepository) -> None:
    """Pages after a cursor continue strictly after it, ordered by linked_at then user id."""
    made = [await repository.insert(200 + index, account(index)) for index in range(5)]
    assert all(link is not None for link in made)

    first = await repository.page(None, 2)
    after = first[-1]
    rest = await repository.page(Cursor(after.linked_at, after.discord_user_id), 10)

    assert [link.discord_user_id for link in first + rest] == [200, 201, 202, 203, 204]


async def test_the_database_refuses_non_snowflake_ids(pool: asyncpg.Pool) -> None:
    """The check constraint rejects Discord id 0 even if code let it through."""
    with pytest.raises(asyncpg.CheckViolationError):
        await PlayerLinkRepository(pool).insert(0, account(1))


async def test_migrating_twice_applies_nothing_new(registry_database: str) -> None:
    """The registry migrations are recorded; a second run applies none."""
    connection = await asyncpg.connect(registry_database)
    try:
        assert await migrate(connection) == []
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'registry'"
        )
    finally:
        await connection.close()

    assert {row["table_name"] for row in tables} == {
        "player_links",
        "link_states",
        "link_changes",
        "link_changes_horizon",
        "schema_migrations",
    }


async def test_a_verified_link_replacing_a_claim_is_one_statement(
    registry_database: str,
) -> None:
    """link_verified over another user's unverified claim is one statement (the lock, the read
    of both links it may replace, the delete, the write, the change log and the notification
    in one function call); the changes stream in order."""
    sent: list[str] = []

    async def connect(*args: object, **kwargs: object) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        connection.add_query_logger(lambda record: sent.append(record.query))
        return connection

    notified: list[str] = []

    async def notifications(count: int) -> bool:
        return len(notified) == count

    async def logged(name: str) -> bool:
        return any(name in query for query in sent)

    listener = await asyncpg.connect(registry_database)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notified.append(args[2]))
    pool = await create_pool(registry_database, min_size=1, max_size=1, connect=connect)
    try:
        repository = PlayerLinkRepository(pool)
        assert await repository.insert(7, account(1)) is not None
        before = (await ChangeLogReader(pool).bounds())[1]
        await eventually(lambda: notifications(1), what="the insert's notification")
        sent.clear()
        outcome = await repository.link_verified(8, account(1))
        await eventually(lambda: logged("link_verified"), what="the link's statement logged")
        during = list(sent)
        changes = await ChangeLogReader(pool).after(before, 10)
        await eventually(lambda: notifications(2), what="the link's notification")
    finally:
        await pool.close()
        await listener.close()
    # The logger reports a query soon after it ran (the bounds' read may come after the
    # clear); the pool resets a connection when it is released.
    link_statements = [q for q in during if "pruned_through" not in q and "RESET ALL" not in q]
    assert len(link_statements) == 1, during
    assert [link.discord_user_id for link in outcome.removed] == [7]
    assert [(c.kind, c.link.discord_user_id) for c in changes] == [
        (ChangeKind.UNLINKED, 7),
        (ChangeKind.LINKED, 8),
    ]
    assert changes[0].sequence < changes[1].sequence


async def test_a_verified_link_replacing_a_claim_and_ones_own_link_logs_both_unlinks_first(
    repository: PlayerLinkRepository, registry_database: str
) -> None:
    """A verified link that removes another user's claim of the account and the user's own
    link of another account logs the claim's unlink, then the own link's, then the link."""
    await repository.insert(7, account(1))
    await repository.insert(8, account(2))
    pool = await create_pool(registry_database, min_size=1, max_size=1)
    try:
        before = (await ChangeLogReader(pool).bounds())[1]
        outcome = await repository.link_verified(8, account(1))
        changes = await ChangeLogReader(pool).after(before, 10)
    finally:
        await pool.close()

    assert [(link.discord_user_id, link.account.player_id) for link in outcome.removed] == [
        (7, "player-1"),
        (8, "player-2"),
    ]
    assert outcome.link.discord_user_id == 8 and outcome.link.verified
    assert [(c.kind, c.link.discord_user_id, c.link.account.player_id) for c in changes] == [
        (ChangeKind.UNLINKED, 7, "player-1"),
        (ChangeKind.UNLINKED, 8, "player-2"),
        (ChangeKind.LINKED, 8, "player-1"),
    ]
    assert await repository.by_faceit_player("player-2") is None
