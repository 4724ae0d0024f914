"""The inbox's single-statement store: committed on return, deduplicated, NOTIFY on new pending."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from faceitvoice.v1 import match_pb2
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.events import Action, InboundEvent, Source
from services.ingest.store import NOTIFY_CHANNEL, Inbox, StoreBusy, create_store_pool
from services.kit.match_json import match_from_json, match_to_json
from tests.support import eventually


def _event(match_id: str, *, event_id: str | None = None, version: int = 1) -> InboundEvent:
    return InboundEvent(
        event_id=event_id or f"{match_id}-ready-{version}",
        event="match_status_ready",
        action=Action.OPEN,
        source=Source.WEBHOOK,
        match_id=match_id,
        version=version,
        match_json=match_to_json(match_pb2.Match(match_id=match_id, version=version)),
    )


@pytest.fixture
async def notifications(fresh_database: str, pool: asyncpg.Pool) -> AsyncIterator[list[str]]:
    """The payloads of NOTIFY on the inbox channel, seen by a separate listening connection."""
    received: list[str] = []
    listener = await asyncpg.connect(fresh_database)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: received.append(args[3]))
    try:
        yield received
    finally:
        await listener.close()


async def test_store_commits_before_it_returns(fresh_database: str, pool: asyncpg.Pool) -> None:
    """Once store returns, another connection sees the row: it is committed, not pending."""
    result = await Inbox(pool).store(_event("m-commit"))
    other = await asyncpg.connect(fresh_database)
    try:
        row = await other.fetchrow(
            "SELECT id, status, match FROM ingest.events WHERE match_id = 'm-commit'"
        )
    finally:
        await other.close()
    assert result.duplicate is False
    assert row is not None
    assert (row["id"], row["status"]) == (result.row_id, "PENDING")
    # A plain connection has no jsonb codec: the column comes back as JSON text.
    stored = match_from_json(json.loads(row["match"]))
    assert stored == match_pb2.Match(match_id="m-commit", version=1)


async def test_a_repeat_is_a_duplicate_and_stores_nothing(pool: asyncpg.Pool) -> None:
    """The same event_id, or the same match, event and version, is answered duplicate."""
    inbox = Inbox(pool)
    first = await inbox.store(_event("m-dup"))
    same_id = await inbox.store(_event("m-dup"))
    same_version = await inbox.store(_event("m-dup", event_id="another-id"))
    assert first.duplicate is False and first.row_id is not None
    assert (same_id.duplicate, same_id.row_id) == (True, None)
    assert (same_version.duplicate, same_version.row_id) == (True, None)
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 1


async def test_poll_events_are_told_apart_by_event_id_alone(pool: asyncpg.Pool) -> None:
    """Poll events at a webhook's match, event and version are new: they carry voice's version."""
    inbox = Inbox(pool)
    webhook = await inbox.store(_event("m-poll"))
    polls = [
        await inbox.store(replace(_event("m-poll", event_id=f"poll-{n}"), source=Source.POLL))
        for n in range(2)
    ]
    assert webhook.duplicate is False
    assert [result.duplicate for result in polls] == [False, False]
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 3


async def test_only_new_pending_events_notify(pool: asyncpg.Pool, notifications: list[str]) -> None:
    """A new pending event notifies its match id; an ignored one and a duplicate notify nobody."""
    inbox = Inbox(pool)
    await inbox.store(_event("m-first"))
    await inbox.store(_event("m-ignored"), ignored="not for us")
    await inbox.store(_event("m-first"))
    await inbox.store(_event("m-last"))

    async def both() -> bool:
        return len(notifications) >= 2

    await eventually(both, what="two notifications")
    # Notifications come in commit order, so anything sent between the two would be in here.
    assert notifications == ["m-first", "m-last"]


async def test_concurrent_stores_of_one_event_store_it_once(pool: asyncpg.Pool) -> None:
    """Many concurrent stores of the same event: exactly one is new, the others are duplicates."""
    inbox = Inbox(pool, acquire_timeout_s=30.0)
    results = await asyncio.gather(*(inbox.store(_event("m-race")) for _ in range(20)))
    assert sorted(r.duplicate for r in results) == [False] + [True] * 19
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 1


async def test_the_store_pool_has_every_writers_connection_open_before_a_webhook(
    fresh_database: str,
) -> None:
    """The webhooks' own pool opens each writer's connection with it, not on a burst."""
    store_pool = await create_store_pool(fresh_database, size=2)
    try:
        assert store_pool.get_size() == 2
    finally:
        await store_pool.close()


async def test_store_is_busy_at_once_when_no_connection_frees_up(pool: asyncpg.Pool) -> None:
    """With every connection held, store raises StoreBusy after its acquire timeout, not later."""
    inbox = Inbox(pool, acquire_timeout_s=0.2)
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        began = time.monotonic()
        with pytest.raises(StoreBusy):
            await inbox.store(_event("m-busy"))
        waited = time.monotonic() - began
    finally:
        for connection in held:
            await pool.release(connection)
    assert 0.2 <= waited < 2.0
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 0
    assert (await inbox.store(_event("m-busy"))).duplicate is False


async def test_store_is_busy_at_once_when_too_many_wait(pool: asyncpg.Pool) -> None:
    """Past `max_waiting` stores waiting for a connection, the next is refused without waiting."""
    inbox = Inbox(pool, acquire_timeout_s=30.0, max_waiting=2)
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    waiting = [asyncio.create_task(inbox.store(_event(f"m-wait-{n}"))) for n in range(2)]
    try:
        await eventually(lambda: _waiting(inbox, 2), what="two stores waiting")
        began = time.monotonic()
        with pytest.raises(StoreBusy, match="2 events already wait"):
            await inbox.store(_event("m-refused"))
        assert time.monotonic() - began < 0.5
    finally:
        for connection in held:
            await pool.release(connection)
    assert [(await task).duplicate for task in waiting] == [False, False]
    assert await pool.fetchval("SELECT count(*) FROM ingest.events") == 2


async def _waiting(inbox: Inbox, count: int) -> bool:
    return inbox.waiting == count


_text = st.text(max_size=8)
_players = st.builds(match_pb2.Player, faceit_player_id=_text, nickname=_text)
_teams = st.builds(
    match_pb2.Team,
    faction=_text,
    name=_text,
    roster=st.lists(_players, max_size=3),
    team_id=_text,
)
_matches = st.builds(
    match_pb2.Match,
    match_id=_text,
    version=st.integers(min_value=0, max_value=2**63 - 1),
    organizer_id=_text,
    entity=st.none() | st.builds(match_pb2.Entity, id=_text, name=_text, type=_text),
    game=_text,
    region=_text,
    status=st.sampled_from(list(match_pb2.MatchStatus.values())),
    teams=st.lists(_teams, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(match=_matches)
def test_match_json_is_protobufs_json_mapping(match: match_pb2.Match) -> None:
    """The hand-built jsonb of a Match equals MessageToDict's and parses back to the Match."""
    expected = json_format.MessageToDict(match, preserving_proto_field_name=True)
    assert match_to_json(match) == expected
    assert match_from_json(match_to_json(match)) == match
