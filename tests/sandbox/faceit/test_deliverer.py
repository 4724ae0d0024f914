"""HTTP tests of webhook delivery: real envelope, secrets, retries, duplicate/reorder/drop."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sandbox.faceit.client import FaceitSandboxClient
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import (
    API_KEY,
    Receiver,
    fast_options,
    load_fixture,
    make_match,
)
from tests.support import eventually


async def received(receiver: Receiver, count: int) -> list[str]:
    """Wait until the receiver has `count` deliveries; their events."""
    await eventually(lambda: _at_least(receiver, count), what=f"{count} webhooks")
    return receiver.events()


async def _at_least(receiver: Receiver, count: int) -> bool:
    return len(receiver.received) >= count


async def test_ready_delivery_has_the_real_envelope_and_header(
    faceit: FaceitSandbox, control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """A status change POSTs FACEIT's envelope (fixture keys) with the security header."""
    fixture = load_fixture()
    subscription = await control.subscribe(
        receiver.url, header_name="X-Faceit-Signature", header_value="s3cret"
    )
    created = await make_match(control)
    step = await control.set_status(created["match_id"], "READY")
    assert step["event"] == "match_status_ready"
    assert [w["state"] for w in step["webhooks"]] == ["queued"]
    assert await received(receiver, 2) == ["match_object_created", "match_status_ready"]
    hook = receiver.received[1]
    body = hook.body
    assert hook.headers["X-Faceit-Signature"] == "s3cret"
    assert body.keys() == fixture.keys()
    assert body["payload"].keys() == fixture["payload"].keys()
    assert body["payload"]["teams"][0].keys() == fixture["payload"]["teams"][0].keys()
    roster_keys = fixture["payload"]["teams"][0]["roster"][0].keys()
    assert body["payload"]["teams"][1]["roster"][0].keys() == roster_keys
    assert body["event_id"] == step["webhooks"][0]["event_id"]
    assert uuid.UUID(body["event_id"]) and uuid.UUID(body["transaction_id"])
    assert body["third_party_id"] == subscription["third_party_id"]
    assert body["app_id"] == faceit.deliverer.app_id
    assert (body["retry_count"], body["version"]) == (0, 1)
    assert body["payload"]["id"] == created["match_id"]
    assert body["payload"]["version"] == step["version"]
    assert body["timestamp"].endswith("Z")


async def test_created_event_has_no_teams(control: FaceitSandboxClient, receiver: Receiver) -> None:
    """`match_object_created` is sent on creation, version 1, without teams."""
    await control.subscribe(receiver.url)
    created = await make_match(control)
    assert created["webhooks"][0]["event"] == "match_object_created"
    await received(receiver, 1)
    payload = receiver.received[0].body["payload"]
    assert "teams" not in payload
    assert (payload["id"], payload["version"]) == (created["match_id"], 1)


async def test_secret_can_be_sent_as_a_query_param(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """A query-string subscription gets its token in the URL and no header."""
    await control.subscribe(receiver.url, query_param="token", query_value="q-secret")
    await make_match(control)
    await received(receiver, 1)
    assert receiver.received[0].query == {"token": "q-secret"}


async def test_every_subscription_gets_each_event(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Two subscriptions each get the event, each with its own third_party_id."""
    first = await control.subscribe(receiver.url, header_name="X-Sub", header_value="one")
    second = await control.subscribe(receiver.url, header_name="X-Sub", header_value="two")
    await make_match(control)
    await received(receiver, 2)
    by_header = {hook.headers["X-Sub"]: hook.body["third_party_id"] for hook in receiver.received}
    assert by_header == {"one": first["third_party_id"], "two": second["third_party_id"]}


async def test_non_2xx_is_retried_with_growing_retry_count(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """After two 500s the third attempt succeeds; retry_count goes 0, 1, 2, same event_id."""
    receiver.statuses = [500, 500]
    await control.subscribe(receiver.url)
    await make_match(control)
    snapshot = await control.wait_for_deliveries()
    assert [hook.body["retry_count"] for hook in receiver.received] == [0, 1, 2]
    assert len({hook.body["event_id"] for hook in receiver.received}) == 1
    attempts = snapshot["attempts"]
    assert [(a["retry_count"], a["status"]) for a in attempts] == [(0, 500), (1, 500), (2, 200)]
    assert attempts[0]["event"] == "match_object_created"
    assert snapshot["failed"] == 0


async def test_delivery_gives_up_after_its_retries(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """With retries 1 and a receiver that keeps failing, two attempts are made."""
    receiver.statuses = [503] * 5
    await control.set_faults(webhooks={"retries": 1, "backoff_ms": 1})
    await control.subscribe(receiver.url)
    await make_match(control)
    snapshot = await control.wait_for_deliveries()
    assert [a["status"] for a in snapshot["attempts"]] == [503, 503]
    assert snapshot["failed"] == 1


async def test_connection_errors_are_retried(control: FaceitSandboxClient) -> None:
    """An unreachable receiver is retried with growing retry_count, then given up."""
    closed = Receiver()
    await closed.start()
    await closed.stop()  # its port now refuses connections
    await control.set_faults(webhooks={"retries": 2, "backoff_ms": 1})
    await control.subscribe(closed.url)
    await make_match(control)
    snapshot = await control.wait_for_deliveries()
    attempts = snapshot["attempts"]
    assert [a["retry_count"] for a in attempts] == [0, 1, 2]
    assert all(a["status"] is None and a["error"] for a in attempts)
    assert snapshot["failed"] == 1


async def test_status_call_does_not_wait_for_the_receiver(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """The control call answers while the receiver is still holding the delivery."""
    receiver.gate = asyncio.Event()
    await control.subscribe(receiver.url)
    created = await make_match(control)
    assert (await control.deliveries())["pending"] == 1
    receiver.gate.set()
    await control.wait_for_deliveries()
    assert receiver.events() == ["match_object_created"]
    assert created["status"] == "CHECK_IN"


async def test_duplicate_sends_each_delivery_n_times(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """With duplicate=3 every event arrives three times with the same event_id."""
    await control.set_faults(webhooks={"duplicate": 3, "concurrency": 1})
    await control.subscribe(receiver.url)
    created = await make_match(control)
    await control.set_status(created["match_id"], "CONFIGURING")
    await control.wait_for_deliveries()
    events = receiver.events()
    assert events == ["match_object_created"] * 3 + ["match_status_configuring"] * 3
    assert len({hook.body["event_id"] for hook in receiver.received}) == 2


async def test_reverse_reorder_holds_a_lifecycle_until_it_ends(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """With reorder=reverse a match's events are held, then sent newest first when it ends."""
    await control.set_faults(webhooks={"reorder": "reverse", "concurrency": 1})
    await control.subscribe(receiver.url)
    created = await make_match(control)
    assert created["webhooks"][0]["state"] == "held"
    steps = await control.play(created["match_id"], ["CONFIGURING", "READY", "FINISHED"])
    assert [s["webhooks"][0]["state"] for s in steps] == ["held", "held", "queued"]
    await control.wait_for_deliveries()
    assert receiver.events() == [
        "match_status_finished",
        "match_status_ready",
        "match_status_configuring",
        "match_object_created",
    ]
    versions = [hook.body["payload"]["version"] for hook in receiver.received]
    assert versions == sorted(versions, reverse=True)


async def test_flush_releases_held_deliveries(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Held deliveries of an unfinished match go out when flushed."""
    await control.set_faults(webhooks={"reorder": "reverse", "concurrency": 1})
    await control.subscribe(receiver.url)
    created = await make_match(control)
    await control.set_status(created["match_id"], "CONFIGURING")
    assert (await control.deliveries())["held"] == 2
    assert await control.flush_deliveries() == 2
    await control.wait_for_deliveries()
    assert receiver.events() == ["match_status_configuring", "match_object_created"]


async def shuffled_events(seed: int) -> list[str]:
    """The arrival order of one lifecycle's events with reorder=shuffle and `seed`."""
    sandbox = FaceitSandbox(
        api_key=API_KEY,
        webhook_options=fast_options(reorder="shuffle", seed=seed, concurrency=1),
    )
    hook_receiver = Receiver()
    await sandbox.start()
    await hook_receiver.start()
    try:
        async with FaceitSandboxClient(sandbox.url) as client:
            await client.subscribe(hook_receiver.url)
            created = await make_match(client)
            await client.play(created["match_id"], ["CONFIGURING", "READY", "CANCELLED"])
            await client.wait_for_deliveries()
        return hook_receiver.events()
    finally:
        await hook_receiver.stop()
        await sandbox.stop()


async def test_shuffle_reorder_is_deterministic_per_seed() -> None:
    """A shuffled lifecycle arrives in the same order for the same seed, all events present."""
    first = await shuffled_events(seed=11)
    assert first == await shuffled_events(seed=11)
    assert sorted(first) == sorted(
        [
            "match_object_created",
            "match_status_configuring",
            "match_status_ready",
            "match_status_cancelled",
        ]
    )
    orders = {tuple(await shuffled_events(seed)) for seed in range(4)}
    assert len(orders) > 1


async def dropped_run(seed: int) -> tuple[list[str], list[str]]:
    """Events delivered and events dropped for one lifecycle with drop_rate 0.5 and `seed`."""
    sandbox = FaceitSandbox(api_key=API_KEY, webhook_options=fast_options(drop_rate=0.5, seed=seed))
    hook_receiver = Receiver()
    await sandbox.start()
    await hook_receiver.start()
    try:
        async with FaceitSandboxClient(sandbox.url) as client:
            await client.subscribe(hook_receiver.url)
            created = await make_match(client)
            await client.play(created["match_id"], ["CONFIGURING", "READY", "FINISHED"])
            snapshot = await client.wait_for_deliveries()
        return hook_receiver.events(), [d["event"] for d in snapshot["dropped"]]
    finally:
        await hook_receiver.stop()
        await sandbox.stop()


async def test_drop_rate_drops_a_seeded_deterministic_subset() -> None:
    """Half the deliveries are dropped, the same ones for the same seed, and reported."""
    delivered, dropped = await dropped_run(seed=3)
    assert (delivered, dropped) == await dropped_run(seed=3)
    assert delivered and dropped
    assert len(delivered) + len(dropped) == 4


async def test_statuses_without_a_confirmed_event_send_nothing(
    faceit: FaceitSandbox, control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """ONGOING has no webhook, and `webhook: false` changes the match silently."""
    await control.subscribe(receiver.url)
    created = await make_match(control, webhook=False)
    silent = await control.set_status(created["match_id"], "CONFIGURING", webhook=False)
    ongoing = await control.set_status(created["match_id"], "ONGOING")
    assert (silent["webhooks"], ongoing["event"], ongoing["webhooks"]) == ([], None, [])
    snapshot: dict[str, Any] = await control.wait_for_deliveries()
    assert snapshot["attempts"] == [] and receiver.received == []
    assert (await control.get_match(created["match_id"]))["status"] == "ONGOING"


async def test_cancelled_webhook_carries_reason_and_afk(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """A cancel with reason AFK delivers reason, afk ids and players."""
    await control.subscribe(receiver.url)
    created = await make_match(control, webhook=False)
    afk = created["teams"][1]["player_ids"][0]
    await control.set_status(created["match_id"], "CANCELLED", reason="AFK", afk=[afk])
    await received(receiver, 1)
    payload = receiver.received[0].body["payload"]
    assert (payload["reason"], payload["afk"]) == ("AFK", [afk])
    assert len(payload["players"]) == 4


async def test_switching_reorder_off_releases_held_in_original_order(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Turning reorder back to none sends the held events oldest first."""
    await control.set_faults(webhooks={"reorder": "reverse", "concurrency": 1})
    await control.subscribe(receiver.url)
    created = await make_match(control)
    await control.set_status(created["match_id"], "CONFIGURING")
    await control.set_faults(webhooks={"reorder": "none"})
    snapshot = await control.wait_for_deliveries()
    assert snapshot["held"] == 0
    assert receiver.events() == ["match_object_created", "match_status_configuring"]


async def test_no_retries_means_one_attempt(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """With retries 0 a failed delivery is attempted once, then counted as failed."""
    receiver.statuses = [500]
    await control.set_faults(webhooks={"retries": 0})
    await control.subscribe(receiver.url)
    await make_match(control)
    snapshot = await control.wait_for_deliveries()
    assert [(a["retry_count"], a["status"]) for a in snapshot["attempts"]] == [(0, 500)]
    assert (snapshot["failed"], receiver.events()) == (1, ["match_object_created"])


async def test_a_retry_waits_for_the_backoff(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """The first retry of a failed delivery comes no sooner than `backoff_ms` after it."""
    receiver.statuses = [500]
    await control.set_faults(webhooks={"retries": 1, "backoff_ms": 200})
    await control.subscribe(receiver.url)
    await make_match(control)
    first, retry = (await control.wait_for_deliveries())["attempts"]
    assert (first["status"], retry["status"]) == (500, 200)
    assert retry["at"] - first["at"] >= 0.2


async def test_deliveries_to_one_subscription_run_concurrently_up_to_the_bound(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """With concurrency 3 and a slow receiver, three of five deliveries are in flight at once."""
    receiver.gate = asyncio.Event()
    await control.set_faults(webhooks={"concurrency": 3})
    await control.subscribe(receiver.url)
    for _ in range(5):
        await make_match(control)

    async def three_in_flight() -> bool:
        return receiver.in_flight == 3

    await eventually(three_in_flight, what="three deliveries in flight")
    assert (await control.deliveries())["pending"] == 5
    receiver.gate.set()
    snapshot = await control.wait_for_deliveries()
    assert (len(snapshot["attempts"]), receiver.most_in_flight) == (5, 3)


async def test_a_higher_concurrency_applies_to_waiting_deliveries(
    control: FaceitSandboxClient, receiver: Receiver
) -> None:
    """Raising the bound at runtime lets deliveries already waiting for a slot go out."""
    receiver.gate = asyncio.Event()
    await control.set_faults(webhooks={"concurrency": 1})
    await control.subscribe(receiver.url)
    for _ in range(3):
        await make_match(control)

    async def in_flight(count: int) -> bool:
        return receiver.in_flight == count

    await eventually(lambda: in_flight(1), what="one delivery in flight")
    await control.set_faults(webhooks={"concurrency": 3})
    await eventually(lambda: in_flight(3), what="three deliveries in flight")
    receiver.gate.set()
    await control.wait_for_deliveries()
