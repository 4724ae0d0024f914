"""End to end with a FACEIT that never retries a webhook and rosters that fill up (issue 16).

Webhooks and the Data API are two sources with versions that cannot be compared (FACEIT's
Data API says 2 where the webhooks say 71): the poller alone must heal whatever was lost.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.sandbox.system_support import Harness, Match, Player
from tests.sandbox.test_system import options

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEALED_S = 20.0
"""How long ingest and voice may take to apply what one RunPoll queued."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_retries(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """A system whose FACEIT sandbox never retries a webhook (each test leaves it running)."""
    log_dir = tmp_path_factory.mktemp("no-retries-system")
    # nickname: these tests are about lost webhooks; their players are linked by RegistryService.
    settings = options(
        log_dir,
        database_url=database_url,
        faceit_args=("--webhook-retries", "0"),
        link_verification="nickname",
    )
    async with Harness.running(settings) as harness:
        yield harness


async def restart_ingest(harness: Harness) -> None:
    """Start ingest again after `stop_ingest`."""
    await harness.system.start_service("ingest")


async def stop_ingest(harness: Harness) -> None:
    """Stop ingest: FACEIT's webhooks fail until it is back, and are never retried."""
    await harness.system.processes["ingest"].stop()


async def test_with_no_faceit_retries_the_poller_heals_every_lost_webhook(
    no_retries: Harness,
) -> None:
    """Webhooks sent while ingest is down are lost for good; RunPoll opens and closes them all.

    Includes the case the poller exists for: READY by webhook, FINISHED webhook lost.
    """
    system = no_retries
    by_webhook, in_outage, stays_open = await system.new_matches(3)
    await system.faceit.set_status(by_webhook.match_id, "READY")
    await system.wait_until_open([by_webhook])

    failed_before = (await system.faceit.wait_for_deliveries())["failed"]
    await stop_ingest(system)
    for match in (in_outage, stays_open):
        await system.faceit.set_status(match.match_id, "READY")
    await system.faceit.set_status(by_webhook.match_id, "FINISHED")
    first_outage = await system.faceit.wait_for_deliveries()
    await restart_ingest(system)
    healed = await system.run_poll()
    await system.wait_until_open([in_outage, stays_open], timeout=HEALED_S)
    await system.wait_until_closed([by_webhook], timeout=HEALED_S)

    await stop_ingest(system)
    await system.faceit.set_status(in_outage.match_id, "CANCELLED")
    second_outage = await system.faceit.wait_for_deliveries()
    await restart_ingest(system)
    closed = await system.run_poll()
    await system.wait_until_closed([in_outage], timeout=HEALED_S)
    await system.wait_until_open([stays_open])

    lost = (first_outage["failed"] - failed_before, second_outage["failed"] - failed_before)
    assert lost == (3, 4)
    assert {a["retry_count"] for a in second_outage["attempts"]} == {0}
    assert (healed.open_events_queued, healed.close_events_queued) == (2, 1), healed
    assert closed.close_events_queued == 1, closed
    assert list(healed.errors) == [] and list(closed.errors) == []
    await system.faceit.set_status(stays_open.match_id, "FINISHED")
    await system.wait_until_closed([stays_open])


async def test_channels_follow_the_rosters_as_they_fill(no_retries: Harness) -> None:
    """Captain pick, polled at each step: each team's channel admits exactly its picks so far."""
    system = no_retries
    teams = [tuple([await system.new_player() for _ in range(4)]) for _ in range(2)]
    captains = {team[0].user_id for team in teams}
    last_picks = {team[-1].user_id for team in teams}
    for user_id in captains | last_picks:
        await system.discord.set_voice(system.guild_id, user_id, system.lobby_id)
    match_id = f"1-{uuid.uuid4()}"
    names = ("Pickers", "Voters")
    created = await system.faceit.create_match(
        [[p.player_id for p in team] for team in teams],
        match_id=match_id,
        hub_id=system.info["hub_id"],
        team_names=list(names),
        fill_rosters=True,
    )
    assert created["rosters"] == [[team[0].player_id] for team in teams]

    def seated(count: int, in_voice: set[str]) -> Match:
        picked: tuple[tuple[Player, ...], tuple[Player, ...]] = (
            teams[0][:count],
            teams[1][:count],
        )
        return Match(match_id, names, picked, frozenset(in_voice))

    for status, count in (("CAPTAIN_PICK", 2), ("CAPTAIN_PICK", 3)):
        await system.faceit.set_status(match_id, status)
        await system.run_poll()
        await system.wait_until_open([seated(count, captains)], timeout=HEALED_S)
    await system.faceit.set_status(match_id, "CONFIGURING")  # a webhook with full rosters
    everyone = seated(4, captains | last_picks)
    await system.wait_until_open([everyone])
    await system.faceit.set_status(match_id, "FINISHED")
    await system.wait_until_closed([everyone])
