"""The voice store's reads and writes of one match, and the statements they send."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.database import create_pool, open_connections
from services.voice.model import MatchState, Player, Team, TeamChannel
from services.voice.server import migrate
from services.voice.store import VoiceStore, prepare_repairs

BIG = 2**62  # Discord ids are snowflakes near 2^60: beyond a double's exact integers


async def _logged_pool(dsn: str, sent: list[str]) -> asyncpg.Pool:
    """A one-connection pool that appends each query it runs to `sent`, soon after it ran."""

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        connection.add_query_logger(lambda record: sent.append(record.query))
        return connection

    return await create_pool(dsn, min_size=1, max_size=1, connect=connect)


async def test_a_match_is_read_with_its_channels_and_leavers_in_one_statement(
    fresh_database: str,
) -> None:
    """get_match sends one statement per match and returns the match, its channels in faction order
    (one complete, one being replaced) with exact ids, and who left on purpose."""
    sent: list[str] = []
    pool = await _logged_pool(fresh_database, sent)
    teams = (
        Team("faction1", "Alpha", (Player("p1", "one"),)),
        Team("faction2", "Bravo", (Player("p2", "two"),)),
    )
    try:
        await migrate(pool)
        store = VoiceStore(pool)
        await store.record_open("m1", 42, 3, teams)
        await store.add_channel_intents(
            "m1",
            [
                ("faction2", "Bravo", "Match Bravo", [BIG + 2]),
                ("faction1", "Alpha", "Match Alpha", [BIG + 1, 5]),
            ],
        )
        await store.complete_channel("m1", "faction1", 2**63 - 1, [BIG + 1, 5])
        await store.complete_channel("m1", "faction2", BIG + 9, [BIG + 2])
        await store.begin_replacement("m1", "faction2", [BIG + 2])
        await store.set_left_on_purpose("m1", BIG + 1, True)
        sent.clear()
        record = await store.get_match("m1")
        assert await store.get_match("unknown") is None
    finally:
        await pool.close()
    # The logger reports a query soon after it ran (the writes above may come after the clear):
    # count the reads of voice's tables, for the known match and the unknown one.
    statements = [q for q in sent if q.lstrip().startswith("SELECT") and "voice." in q]
    assert len(statements) == 2
    assert record is not None
    assert (record.match_id, record.guild_id, record.state, record.version) == (
        "m1",
        42,
        MatchState.OPEN,
        3,
    )
    assert record.teams == teams
    assert record.opened_at is not None
    assert record.channels == (
        TeamChannel("faction1", "Alpha", "Match Alpha", 2**63 - 1, frozenset({BIG + 1, 5})),
        TeamChannel("faction2", "Bravo", "Match Bravo", None, frozenset({BIG + 2}), BIG + 9),
    )
    assert record.left_on_purpose == frozenset({BIG + 1})


async def test_channel_intents_are_written_in_one_statement(fresh_database: str) -> None:
    """add_channel_intents writes every team's intent in one statement (one round trip, no
    transaction around it) and keeps the row of a team that has one."""
    sent: list[str] = []
    pool = await _logged_pool(fresh_database, sent)
    teams = (Team("faction1", "Alpha", ()), Team("faction2", "Bravo", ()))
    try:
        await migrate(pool)
        store = VoiceStore(pool)
        await store.record_open("m1", 42, 3, teams)
        await store.add_channel_intents("m1", [("faction1", "Alpha", "Match Alpha", [BIG + 1])])
        await store.complete_channel("m1", "faction1", 7, [1])
        sent.clear()
        await store.add_channel_intents(
            "m1",
            [
                ("faction1", "Alpha", "Match Alpha", [BIG + 1, 5]),
                ("faction2", "Bravo", "Match Bravo", [BIG + 2, 6]),
            ],
        )
    finally:
        await pool.close()
    # The logger reports a query soon after it ran (the update above may come after the clear).
    statements = [q.split()[0] for q in sent]
    assert [q for q in statements if q.startswith(("INSERT", "BEGIN", "COMMIT"))] == ["INSERT"]
    pool = await create_pool(fresh_database, min_size=1, max_size=1)
    try:
        record = await VoiceStore(pool).get_match("m1")
    finally:
        await pool.close()
    assert record is not None
    assert record.channels == (
        TeamChannel("faction1", "Alpha", "Match Alpha", 7, frozenset({1})),
        TeamChannel("faction2", "Bravo", "Match Bravo", None, frozenset({BIG + 2, 6})),
    )


async def test_the_writes_prepared_ahead_are_those_the_repairs_run(fresh_database: str) -> None:
    """Connections opened ahead with `prepare_repairs` hold the writes that recreate a lost
    channel prepared, having changed no row; the recreate then prepares nothing more."""
    pool = await create_pool(fresh_database, min_size=1, max_size=1)
    prepared = r"SELECT statement FROM pg_prepared_statements WHERE statement ~ '^\s*UPDATE'"
    try:
        await migrate(pool)
        store = VoiceStore(pool)
        await store.record_open("m1", 42, 3, (Team("faction1", "Alpha", ()),))
        await store.add_channel_intents("m1", [("faction1", "Alpha", "Match Alpha", [5])])
        await store.complete_channel("m1", "faction1", 7, [5])
        before = await store.get_match("m1")
        await pool.expire_connections()

        await open_connections(pool, prepare=prepare_repairs)

        ahead = {row["statement"] for row in await pool.fetch(prepared)}
        assert await store.get_match("m1") == before
        await store.begin_replacement("m1", "faction1", [5])
        await store.complete_recreates("m1", [("faction1", 7, 8, [5])])
        after = {row["statement"] for row in await pool.fetch(prepared)}
        record = await store.get_match("m1")
    finally:
        await pool.close()
    assert len(ahead) == 2
    assert after == ahead
    assert record is not None
    assert record.channels == (TeamChannel("faction1", "Alpha", "Match Alpha", 8, frozenset({5})),)
