"""POST /faceit-webhook: authentication, size and shape checks, storing, duplicates, filters."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from faceitvoice.v1 import ingest_service_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.settings import IngestSettings
from services.ingest.webhook import MAX_BODY_BYTES
from services.kit.logging import ContextFilter
from services.kit.settings import ConfigurationError, load_settings
from tests.services.ingest.harness import (
    HEADER,
    SECRET,
    IngestHarness,
    real_delivery,
    running_ingest,
    simple_event,
)
from tests.services.ingest.voice_double import VoiceDouble, VoiceDoubleServer
from tests.services.voice.tcp_proxy import TcpProxy
from tests.support import eventually


async def test_right_secret_in_header_stores_the_event(ingest: IngestHarness) -> None:
    """The real delivery with the right header secret is stored, answered 200 with its event."""
    response = await ingest.post(real_delivery())
    assert response.status_code == 200
    assert response.json() == {"status": "success", "event": "match_status_ready"}
    events = await ingest.events()
    assert [(e.event_id, e.source) for e in events] == [
        ("7d18cfed-155b-4221-8259-3316d0b4c0b8", ingest_service_pb2.EVENT_SOURCE_WEBHOOK)
    ]


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({HEADER: "wrong"}, ""),
        ({HEADER: SECRET + "x"}, ""),
        ({"X-Other-Header": SECRET}, ""),
        ({}, f"?token={SECRET}"),
    ],
    ids=["missing", "wrong", "longer", "other-header", "query-not-configured"],
)
async def test_missing_or_wrong_secret_is_refused(
    ingest: IngestHarness, headers: dict[str, str], query: str
) -> None:
    """Without the right secret in the configured header the answer is 401 and nothing is stored."""
    response = await ingest.http.post(
        "/faceit-webhook" + query, content=json.dumps(real_delivery()), headers=headers
    )
    assert response.status_code == 401
    assert await ingest.events() == []


@pytest.fixture
async def query_ingest(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> AsyncIterator[IngestHarness]:
    """Ingest configured to also accept the secret in the `token` query parameter."""
    async with running_ingest(
        fresh_database, voice_server.address, FACEIT_WEBHOOK_QUERY_PARAM="token"
    ) as harness:
        yield harness


@pytest.mark.parametrize(
    ("query", "status"),
    [(f"?token={SECRET}", 200), ("?token=nope", 401), (f"?other={SECRET}", 401), ("", 401)],
)
async def test_secret_in_the_query_parameter(
    query_ingest: IngestHarness, query: str, status: int
) -> None:
    """With FACEIT_WEBHOOK_QUERY_PARAM set, the secret may come in that query parameter."""
    response = await query_ingest.http.post(
        "/faceit-webhook" + query, content=json.dumps(real_delivery())
    )
    assert response.status_code == status


async def test_header_still_works_when_a_query_parameter_is_configured(
    query_ingest: IngestHarness,
) -> None:
    """The header secret is accepted even when a query parameter is configured."""
    assert (await query_ingest.post(real_delivery())).status_code == 200


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"not json", 400),
        (b'{"unterminated": ', 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"42", 400),
        (b"{}", 422),
        (b'{"event": "match_status_ready"}', 422),
        (b"[" * 100000 + b"]" * 100000, 400),
    ],
    ids=["text", "truncated", "binary", "array", "string", "number", "empty", "no-match", "deep"],
)
async def test_malformed_bodies_get_4xx(ingest: IngestHarness, content: bytes, status: int) -> None:
    """Not JSON or not an object is 400; an object that is no FACEIT event is 422."""
    response = await ingest.http.post("/faceit-webhook", content=content, headers={HEADER: SECRET})
    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert await ingest.events() == []


async def test_body_declared_over_one_mib_is_413(ingest: IngestHarness) -> None:
    """A Content-Length over 1 MiB is refused with 413."""
    body = {"event": "match_status_ready", "match_id": "m", "pad": "x" * MAX_BODY_BYTES}
    response = await ingest.post(body)
    assert response.status_code == 413
    assert await ingest.events() == []


async def test_streamed_body_over_one_mib_is_413(ingest: IngestHarness) -> None:
    """A chunked body without Content-Length is cut off at 1 MiB with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"event": "match_status_ready", "match_id": "m", "pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = await ingest.http.post("/faceit-webhook", content=chunks(), headers={HEADER: SECRET})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_body_just_under_one_mib_is_accepted(ingest: IngestHarness) -> None:
    """A body of exactly 1 MiB is within the limit."""
    body = simple_event("match_demo_ready", "m-big")
    body["pad"] = ""
    size = len(json.dumps(body))
    body["pad"] = "x" * (MAX_BODY_BYTES - size)
    assert len(json.dumps(body)) == MAX_BODY_BYTES
    assert (await ingest.post(body)).status_code == 200


async def test_repeats_are_answered_as_duplicates(ingest: IngestHarness) -> None:
    """The same event_id again, or the same match, event and version, is a duplicate."""
    first = await ingest.post(real_delivery())
    again = await ingest.post(real_delivery())
    retried = await ingest.post(real_delivery(event_id="another-id", retry_count=1))
    assert first.json() == {"status": "success", "event": "match_status_ready"}
    assert again.json() == {"status": "success", "event": "match_status_ready", "duplicate": True}
    assert retried.json()["duplicate"] is True
    assert len(await ingest.events()) == 1


async def test_events_needing_no_action_are_stored_as_ignored(ingest: IngestHarness) -> None:
    """A demo-ready event is answered 200 with the reason and stored IGNORED."""
    response = await ingest.post(real_delivery(event="match_demo_ready", event_id="demo-1"))
    assert response.status_code == 200
    assert response.json()["ignored"] == "match_demo_ready needs no action"
    (event,) = await ingest.events()
    assert event.status == ingest_service_pb2.EVENT_STATUS_IGNORED
    assert event.last_error == "match_demo_ready needs no action"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"FACEIT_HUB_IDS": "hub-a,hub-b"}, "hub 42e160fc-2651-4fa5-9a9b-829199e27adb is not in"),
        ({"FACEIT_ORGANIZER_IDS": "org-x"}, "organizer faceit is not in FACEIT_ORGANIZER_IDS"),
    ],
)
async def test_events_outside_the_configured_hubs_and_organizers_are_ignored(
    fresh_database: str,
    voice_server: VoiceDoubleServer,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    """Events of other hubs or organizers get 200 and are stored IGNORED, never delivered."""
    async with running_ingest(fresh_database, voice_server.address, **overrides) as harness:
        response = await harness.post(real_delivery())
        assert response.status_code == 200
        assert response.json()["ignored"].startswith(expected)
        (event,) = await harness.events()
        assert event.status == ingest_service_pb2.EVENT_STATUS_IGNORED
    assert voice_server.double.calls == []


async def test_events_of_configured_hubs_are_delivered(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """An event of a hub in FACEIT_HUB_IDS goes through to voice."""
    hub = "42e160fc-2651-4fa5-9a9b-829199e27adb"
    async with running_ingest(
        fresh_database, voice_server.address, FACEIT_HUB_IDS=f"other,{hub}"
    ) as harness:
        response = await harness.post(real_delivery())
        assert "ignored" not in response.json()
        await eventually(lambda: _calls(voice_server.double), what="OpenMatch")


async def _calls(voice: VoiceDouble) -> int:
    return len(voice.calls)


def test_settings_refuse_to_start_without_a_secret() -> None:
    """Without FACEIT_WEBHOOK_SECRET and without the explicit opt-out, settings fail clearly."""
    with pytest.raises(ConfigurationError) as failure:
        load_settings(IngestSettings, _env_file=None)
    assert "FACEIT_WEBHOOK_SECRET" in failure.value.message
    assert "FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED" in failure.value.message


async def test_unauthenticated_mode_accepts_anything_and_warns_at_start(
    fresh_database: str, voice_server: VoiceDoubleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED=true and no secret, start warns and accepts."""
    caplog.set_level(logging.WARNING, logger="services.ingest.server")
    async with running_ingest(
        fresh_database,
        voice_server.address,
        FACEIT_WEBHOOK_SECRET=None,
        FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED=True,
    ) as harness:
        assert any("FACEIT_WEBHOOK_SECRET is not set" in r.message for r in caplog.records)
        response = await harness.http.post("/faceit-webhook", json=real_delivery())
        assert response.status_code == 200


async def test_database_down_is_503_and_nothing_half_written(
    fresh_database: str, voice_server: VoiceDoubleServer
) -> None:
    """While the database cannot be reached the webhook answers 503; a retry after stores once."""
    voice = voice_server.double
    proxy = TcpProxy.for_dsn(fresh_database)
    await proxy.up()
    try:
        async with running_ingest(proxy.dsn(fresh_database), voice_server.address) as ingest:
            await proxy.down()
            body = simple_event("match_status_ready", "m-down", version=1)
            for _ in range(3):
                response = await ingest.post(body)
                assert response.status_code == 503
                assert "could not be stored" in response.json()["error"]
            ready = await ingest.http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unreachable")
            assert ready.json()["checks"]["voice"] == "ok"
            unavailable = ingest.runtime.webhook.metrics.webhook_events.labels(
                event="match_status_ready", outcome="unavailable"
            )
            assert unavailable._value.get() == 3
            await proxy.up()
            response = await eventually(
                lambda: _stored(ingest, body), what="the retried webhook stored"
            )
            assert response.json() == {"status": "success", "event": "match_status_ready"}
            events = await ingest.events()
            assert [e.match_id for e in events] == ["m-down"]
            await eventually(lambda: _calls(voice), what="the event delivered after the outage")
            assert [(c.rpc, c.match_id) for c in voice.calls] == [("OpenMatch", "m-down")]
    finally:
        await proxy.down()


async def _stored(ingest: IngestHarness, body: dict[str, Any]) -> Any:
    response = await ingest.post(body)
    return response if response.status_code == 200 else None


_text = st.text(max_size=20) | st.text(
    alphabet=st.characters(categories=["Cs", "Cc", "Zs", "Ll"]), max_size=5
)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _text
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_event_names = (
    st.sampled_from(
        ["match_status_ready", "match_object_created", "match_status_finished", "hub_user_added"]
    )
    | _text
)
_roster = st.lists(
    st.fixed_dictionaries({"id": _json | _text, "nickname": _json | _text}), max_size=3
)
_faceit_like = st.fixed_dictionaries(
    {"event": _event_names, "event_id": _text | _json},
    optional={
        "payload": st.fixed_dictionaries(
            {"id": _text | _json},
            optional={
                "version": st.integers() | _json,
                "teams": st.lists(st.fixed_dictionaries({}, optional={"roster": _roster})),
                "entity": _json,
            },
        )
        | _json,
        "match_id": _text | _json,
        "version": st.integers() | _json,
        "entity": st.fixed_dictionaries(
            {},
            optional={
                "teams": st.dictionaries(
                    _text,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "roster": st.lists(
                                st.fixed_dictionaries({"player_id": _text | _json}), max_size=2
                            )
                        },
                    ),
                )
            },
        )
        | _json,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_json | _faceit_like)
async def test_no_json_body_gets_a_5xx(ingest: IngestHarness, body: Any) -> None:
    """Whatever JSON is posted (with the right secret), the answer is never a server error."""
    response = await ingest.post(body)
    assert response.status_code in (200, 400, 422), response.text


async def test_a_bad_roster_entry_is_dropped_with_a_warning_and_the_rest_delivered(
    ingest: IngestHarness, voice: VoiceDouble, caplog: pytest.LogCaptureFixture
) -> None:
    """A blank player id and a third team are left out with a warning; the match is delivered."""
    caplog.set_level(logging.WARNING, logger="services.ingest.webhook")
    caplog.handler.addFilter(ContextFilter())
    body = real_delivery()
    teams = body["payload"]["teams"]
    teams[0]["roster"][0]["id"] = "  "
    teams.append({"id": "team-three", "roster": [{"id": "p-three"}]})
    response = await ingest.post(body)
    assert response.status_code == 200
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.match_id == body["payload"]["id"]  # type: ignore[attr-defined]
    assert "faction1 player 1: blank id" in warning.getMessage()
    assert "team 3 (id team-three, 1 players)" in warning.getMessage()
    await eventually(lambda: _calls(voice), what="OpenMatch")
    (call,) = voice.calls
    teams = call.request.match.teams  # type: ignore[attr-defined]
    assert [team.faction for team in teams] == ["faction1", "faction2"]
    assert [len(team.roster) for team in teams] == [4, 5]
    assert all(player.faceit_player_id.strip() for team in teams for player in team.roster)


async def test_a_match_id_over_the_index_limit_is_422_and_nothing_stored(
    ingest: IngestHarness,
) -> None:
    """A match id of 1,000 four-byte characters is refused with 422, not echoed, not stored."""
    match_id = "\U0001f600" * 1000
    response = await ingest.post(real_delivery(payload={"id": match_id}))
    assert response.status_code == 422
    assert response.json()["error"] == (
        "not a FACEIT match payload: id: String should have at most 128 characters"
    )
    assert await ingest.events() == []


async def test_a_roster_of_12000_players_is_422_and_nothing_stored(ingest: IngestHarness) -> None:
    """A team of 12,000 players is refused with 422 and nothing is stored."""
    body = real_delivery()
    body["payload"]["teams"][0]["roster"] = [{"id": f"p-{n}"} for n in range(12_000)]
    response = await ingest.post(body)
    assert response.status_code == 422
    assert "at most 99 items" in response.json()["error"]
    assert await ingest.events() == []


async def test_a_statement_refused_for_another_reason_is_500_logged_once(
    ingest: IngestHarness, fresh_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store Postgres refuses (not an outage) is 500, one ERROR with traceback, no 503 metric."""
    admin = await asyncpg.connect(fresh_database)
    try:
        await admin.execute(
            "ALTER TABLE ingest.events ADD CONSTRAINT refuses_one CHECK (match_id <> 'm-refused')"
        )
    finally:
        await admin.close()
    caplog.set_level(logging.ERROR)
    response = await ingest.post(simple_event("match_status_ready", "m-refused", version=1))
    assert response.status_code == 500
    assert response.json() == {"status": "error", "error": "the event could not be stored"}
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], asyncpg.CheckViolationError)
    counted = ingest.runtime.webhook.metrics.webhook_events
    assert counted.labels(event="match_status_ready", outcome="error")._value.get() == 1
    assert counted.labels(event="match_status_ready", outcome="unavailable")._value.get() == 0
    assert await ingest.events() == []
    accepted = await ingest.post(simple_event("match_status_ready", "m-fine", version=1))
    assert accepted.status_code == 200
