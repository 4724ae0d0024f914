"""The voice service end to end: real py-cord on the Discord sandbox, real registry, Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from faceitvoice.v1 import registry_service_pb2 as registry_pb
from faceitvoice.v1 import voice_service_pb2 as voice_pb

from sandbox.discord import SandboxConfig
from services.voice.convert import match_from_pb
from services.voice.naming import ChannelNaming
from services.voice.planning import open_intents
from services.voice.startup import StartupError
from services.voice.store import VoiceStore
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.services.voice.tcp_proxy import TcpProxy
from tests.support import eventually

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, registry and database, with the voice service not yet started."""
    async with voice_system(fresh_database) as running:
        yield running


async def test_open_close_cycle_gives_access_moves_and_cleans_up(system: VoiceSystem) -> None:
    """OpenMatch makes private team channels, moves players in voice; CloseMatch removes them."""
    await system.start_voice()
    assert system.stub is not None
    alice = await system.member("alice", faceit_id="p-alice")
    bob = await system.member("bob", faceit_id="p-bob")
    outsider = await system.member("carol")
    await system.control.set_voice(system.guild_id, alice, system.lobby_id)
    await eventually(lambda: _sees_voice(system, alice), what="the bot to see alice in voice")

    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-alice", "p-ghost"], ["p-bob"]))
    assert opened.outcome == voice_pb.OPEN_OUTCOME_OPENED
    channels = {c.faction: c for c in opened.match.channels}
    assert set(channels) == {"faction1", "faction2"}
    assert channels["faction1"].channel_name == "Match 1-d78556"
    outcomes = {p.faceit_player_id: p.outcome for p in opened.placements}
    assert outcomes == {
        "p-alice": voice_pb.PLACEMENT_OUTCOME_MOVED,
        "p-ghost": voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_LINKED,
        "p-bob": voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_IN_VOICE,
    }
    team1 = channels["faction1"].channel_id
    access = await system.control.channel_access(team1)
    assert str(alice) in access["connect"] and str(alice) in access["view"]
    assert str(bob) not in access["view"] and str(outsider) not in access["view"]
    assert str(system.discord.bot_user_id) in access["connect"]
    assert await system.voice_of(alice) == team1

    closed = await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=MATCH, version=2, reason="match_status_finished")
    )
    assert closed.outcome == voice_pb.CLOSE_OUTCOME_CLOSED
    assert set(closed.deleted_channel_ids) == {c.channel_id for c in opened.match.channels}
    assert closed.moved_to_lobby == 1
    assert await system.match_channel_names() == []
    assert await system.voice_of(alice) == system.lobby_id

    stale = await system.stub.OpenMatch(match(MATCH, 2, ["p-alice"], ["p-bob"]))
    assert stale.outcome == voice_pb.OPEN_OUTCOME_STALE
    assert stale.match.state == voice_pb.VOICE_MATCH_STATE_CLOSED
    assert await system.match_channel_names() == []


async def _sees_voice(system: VoiceSystem, user_id: int) -> bool:
    assert system.voice is not None
    return system.voice.discord.voice_channel_of(user_id) is not None


async def test_duplicate_and_concurrent_opens_make_one_channel_per_team(
    system: VoiceSystem,
) -> None:
    """Concurrent and repeated OpenMatch calls leave exactly one channel per team."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("dave", faceit_id="p-dave")
    await system.member("erin", faceit_id="p-erin")
    request = match(MATCH, 1, ["p-dave"], ["p-erin"], names=("Alpha", "Bravo"))
    answers = await asyncio.gather(*(system.stub.OpenMatch(request) for _ in range(4)))
    again = await system.stub.OpenMatch(request)
    assert sorted(a.outcome for a in answers).count(voice_pb.OPEN_OUTCOME_OPENED) == 1
    assert again.outcome == voice_pb.OPEN_OUTCOME_UPDATED
    assert await system.match_channel_names() == [
        "Match 1-d78556 · Alpha",
        "Match 1-d78556 · Bravo",
    ]


async def test_bad_requests_are_invalid_argument(system: VoiceSystem) -> None:
    """Malformed OpenMatch requests are INVALID_ARGUMENT; an unknown match is NOT_FOUND."""
    await system.start_voice()
    assert system.stub is not None
    for request in (
        voice_pb.OpenMatchRequest(),
        match("", 1, []),
        match(MATCH, -1, []),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await system.stub.OpenMatch(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id="nope"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_intent_without_channel_is_reconciled_on_restart(system: VoiceSystem) -> None:
    """A crash between the intent row and the channel is repaired when the service starts."""
    carl = await system.member("carl", faceit_id="p-carl")
    store = VoiceStore(system.pool)
    spec = match_from_pb(match(MATCH, 1, ["p-carl"]).match)
    await store.record_open(MATCH, system.guild_id, 1, spec.teams)
    await store.add_channel_intents(MATCH, [("faction1", "", "Match 1-d78556", {carl})])
    await system.start_voice()
    assert system.stub is not None
    found = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    (channel,) = found.match.channels
    assert channel.channel_id != 0
    access = await system.control.channel_access(channel.channel_id)
    assert str(carl) in access["connect"]
    assert await system.match_channel_names() == ["Match 1-d78556"]


async def test_an_open_cut_off_before_its_creates_is_finished_on_restart(
    system: VoiceSystem,
) -> None:
    """A crash after the open's statement (the open and intents of unknown members stored),
    before any create: the restarted service asks the registry, makes the team's channel with
    its linked member's access, and drops the intent of the team with nobody linked."""
    cora = await system.member("cora", faceit_id="p-cora")
    spec = match_from_pb(match(MATCH, 1, ["p-cora"], ["p-ghost"]).match)
    intents = open_intents(MATCH, spec.teams, ChannelNaming())
    await VoiceStore(system.pool).open_fresh(MATCH, system.guild_id, 1, spec.teams, intents)

    await system.start_voice()

    assert system.stub is not None
    found = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    (channel,) = found.match.channels
    assert channel.faction == "faction1" and channel.channel_id != 0
    assert list(channel.member_discord_user_ids) == [cora]
    access = await system.control.channel_access(channel.channel_id)
    assert str(cora) in access["connect"] and str(cora) in access["view"]
    assert await system.match_channel_names() == ["Match 1-d78556"]


@pytest.mark.parametrize("manage_roles", [True, False])
async def test_an_open_cut_off_before_its_intents_settled_keeps_access_exact_after_restart(
    system: VoiceSystem, manage_roles: bool
) -> None:
    """A crash after the create reached Discord, before the intents got their members: the
    restart adopts the channel with its access rewritten to the roster's linked members (or,
    when the bot may not edit overwrites, replaces it), so one the lost create let in, now off
    the roster, has no access; a later unlink takes access away."""
    if manage_roles:
        await system.grant_manage_roles()
    cole = await system.member("cole", faceit_id="p-cole")
    dora = await system.member("dora", faceit_id="p-dora")
    await system.start_voice()
    assert system.voice is not None
    spec = match_from_pb(match(MATCH, 1, ["p-cole"]).match)
    intents = open_intents(MATCH, spec.teams, ChannelNaming())
    await VoiceStore(system.pool).open_fresh(MATCH, system.guild_id, 1, spec.teams, intents)
    made = await system.voice.discord.create_private_channel(intents[0][2], [cole, dora])
    await system.stop_voice()

    await system.start_voice()

    assert system.stub is not None
    found = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    (channel,) = found.match.channels
    assert (channel.channel_id == made) is manage_roles
    assert list(channel.member_discord_user_ids) == [cole]
    access = await system.control.channel_access(channel.channel_id)
    assert str(cole) in access["connect"] and str(cole) in access["view"]
    assert str(dora) not in access["connect"] and str(dora) not in access["view"]
    assert await system.match_channel_names() == ["Match 1-d78556"]

    await system.registry.UnlinkPlayer(registry_pb.UnlinkPlayerRequest(discord_user_id=cole))

    async def cole_out() -> bool:
        found = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))  # type: ignore[union-attr]
        now = found.match.channels[0].channel_id
        return str(cole) not in (await system.control.channel_access(now))["view"]

    await eventually(cole_out, what="cole's access taken after the unlink")


async def test_channels_of_a_match_closed_while_down_are_deleted_on_start(
    system: VoiceSystem,
) -> None:
    """Channels the bot made whose match closed meanwhile go at start; others are untouched."""
    await system.member("gina", faceit_id="p-gina")
    await system.start_voice()
    assert system.stub is not None
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-gina"]))
    await system.stop_voice()
    await VoiceStore(system.pool).record_close(MATCH, system.guild_id, 2, "finished", 0)
    await system.start_voice()
    assert await system.match_channel_names() == []
    names = [c["name"] for c in (await system.guild_state())["channels"]]
    assert "Lobby" in names and "general" in names
    assert opened.match.channels[0].channel_id not in {
        int(c["id"]) for c in (await system.guild_state())["channels"]
    }


async def test_rate_limits_and_a_gateway_drop_during_open_still_complete(
    system: VoiceSystem,
) -> None:
    """A 429 storm on channel creation and a gateway drop during OpenMatch: it completes."""
    service = await system.start_voice()
    assert system.stub is not None
    await system.member("hank", faceit_id="p-hank")
    await system.member("ivy", faceit_id="p-ivy")
    await system.control.inject_errors(
        429, count=4, method="POST", route="/guilds/{guild_id}/channels", retry_after=0.05
    )
    runs = service.reconciler.runs
    stub = system.stub

    async def open_match() -> voice_pb.OpenMatchResponse:
        return await stub.OpenMatch(match(MATCH, 1, ["p-hank"], ["p-ivy"]))

    opening = asyncio.create_task(open_match())
    await system.control.close_gateway(4000)
    opened = await opening
    assert opened.outcome == voice_pb.OPEN_OUTCOME_OPENED
    assert len(opened.match.channels) == 2

    async def reconnected() -> bool:
        return service.reconciler.runs > runs

    await eventually(reconnected, timeout=30, what="reconciliation after the reconnect")
    assert len(await system.match_channel_names()) == 2


async def test_live_moves_follow_players_but_respect_a_deliberate_switch(
    system: VoiceSystem,
) -> None:
    """Connecting or joining the lobby moves a player in; switching away is left alone."""
    await system.start_voice()
    assert system.stub is not None
    jay = await system.member("jay", faceit_id="p-jay")
    other = int((await system.control.create_channel(system.guild_id, "Chill"))["channel_id"])
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-jay"]))
    team = opened.match.channels[0].channel_id

    async def in_team() -> bool:
        return await system.voice_of(jay) == team

    await system.control.set_voice(system.guild_id, jay, other)
    await eventually(in_team, what="jay to be moved in after connecting")
    await system.control.set_voice(system.guild_id, jay, other)

    async def switched_flag() -> bool:
        assert system.voice is not None
        return system.voice.cache.left_on_purpose(MATCH, jay)

    await eventually(switched_flag, what="the switch away to be remembered")
    assert await system.voice_of(jay) == other
    again = await system.stub.OpenMatch(match(MATCH, 2, ["p-jay"]))
    assert [p.outcome for p in again.placements] == [
        voice_pb.PLACEMENT_OUTCOME_SKIPPED_LEFT_ON_PURPOSE
    ]
    assert await system.voice_of(jay) == other


async def test_joining_the_lobby_moves_the_player_into_the_team_channel(
    system: VoiceSystem,
) -> None:
    """A linked player of a running match who joins the lobby is moved into their channel."""
    await system.start_voice()
    assert system.stub is not None
    kim = await system.member("kim", faceit_id="p-kim")
    opened = await system.stub.OpenMatch(match(MATCH, 1, [], ["p-kim"]))
    team = opened.match.channels[0].channel_id
    await system.control.set_voice(system.guild_id, kim, system.lobby_id)

    async def in_team() -> bool:
        return await system.voice_of(kim) == team

    await eventually(in_team, what="kim to be moved from the lobby")


async def test_register_command_links_and_gives_access_to_the_running_match(
    system: VoiceSystem,
) -> None:
    """/register links the account, answers with the profile, and opens the match channel."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("lee", faceit_id="p-lee")
    mo = await system.member("mo")
    await system.faceit.create_player("mo_faceit", player_id="p-mo", skill_level=9, faceit_elo=2100)
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-lee", "p-mo"]))
    before = opened.match.channels[0].channel_id
    await system.control.set_voice(system.guild_id, mo, system.lobby_id)

    reply = await system.control.run_command(
        system.guild_id, mo, "register", {"faceit_nickname": "mo_faceit"}
    )
    assert reply["ephemeral"] is True
    (embed,) = reply["embeds"]
    values = {field["name"]: field["value"] for field in embed["fields"]}
    assert values["Nickname"] == "mo_faceit"
    assert values["Level"] == "9" and values["Elo"] == "2100"
    now = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    team = now.match.channels[0].channel_id
    assert team != before  # without MANAGE_ROLES, access changes replace the channel
    assert await system.match_channel_names() == ["Match 1-d78556"]
    access = await system.control.channel_access(team)
    assert str(mo) in access["connect"]

    async def moved() -> bool:
        return await system.voice_of(mo) == team

    await eventually(moved, what="mo to be moved in after registering")

    whoami = await system.control.run_command(system.guild_id, mo, "whoami")
    (me,) = whoami["embeds"]
    assert f"<#{team}>" in [field["value"] for field in me["fields"]]


async def test_register_command_explains_each_failure(system: VoiceSystem) -> None:
    """/register says unknown (with suggestions), already registered, account taken."""
    await system.start_voice()
    nia = await system.member("nia", faceit_id="p-nia")
    oz = await system.member("oz")
    await system.faceit.create_player("nia_alt", player_id="p-nia-alt")

    unknown = await system.control.run_command(
        system.guild_id, oz, "register", {"faceit_nickname": "nia_altt"}
    )
    assert "No FACEIT player" in unknown["content"] and "nia_alt" in unknown["content"]
    taken = await system.control.run_command(
        system.guild_id, oz, "register", {"faceit_nickname": "nia"}
    )
    assert "another Discord user" in taken["content"]
    again = await system.control.run_command(
        system.guild_id, nia, "register", {"faceit_nickname": "nia_alt"}
    )
    assert "/unregister" in again["content"]
    gone = await system.control.run_command(system.guild_id, nia, "unregister")
    assert "nia" in gone["content"] and "unregistered" in gone["content"]
    nothing = await system.control.run_command(system.guild_id, nia, "whoami")
    assert "/register" in nothing["content"]


async def test_start_is_refused_with_a_bad_token(system: VoiceSystem) -> None:
    """A token Discord refuses stops the start with a message naming DISCORD_TOKEN."""
    service = system.build(discord_token="not-the-bot-token")
    with pytest.raises(StartupError, match="DISCORD_TOKEN"):
        await service.check_discord()
    await service.bot.close()


async def test_start_is_refused_for_an_unknown_guild(system: VoiceSystem) -> None:
    """A guild the bot is not in stops the start with a message naming DISCORD_GUILD_ID."""
    service = system.build(discord_guild_id=123456789)
    with pytest.raises(StartupError, match="DISCORD_GUILD_ID"):
        await service.check_discord()
    await service.bot.close()


async def test_start_is_refused_when_permissions_are_missing(system: VoiceSystem) -> None:
    """A bot without MOVE_MEMBERS in the guild is refused, naming the permission."""
    weak = await system.control.create_guild(
        "weak", bot_permissions=(1 << 10) | (1 << 4) | (1 << 20)
    )
    service = system.build(discord_guild_id=int(weak["guild_id"]))
    with pytest.raises(StartupError, match="MOVE_MEMBERS"):
        await service.check_discord()
    await service.bot.close()


async def test_delayed_close_deletes_after_the_grace_period(system: VoiceSystem) -> None:
    """With VOICE_CLOSE_DELAY_S the close is SCHEDULED and the channels go later by themselves."""
    await system.start_voice(voice_close_delay_s=0.3)
    assert system.stub is not None
    await system.member("pat", faceit_id="p-pat")
    await system.stub.OpenMatch(match(MATCH, 1, ["p-pat"]))
    closed = await system.stub.CloseMatch(
        voice_pb.CloseMatchRequest(match_id=MATCH, version=2, reason="match_status_finished")
    )
    assert closed.outcome == voice_pb.CLOSE_OUTCOME_SCHEDULED
    assert closed.match.state == voice_pb.VOICE_MATCH_STATE_CLOSED

    async def gone() -> bool:
        return await system.match_channel_names() == []

    await eventually(gone, what="the channels to go after the grace period")


async def test_missing_discord_permission_is_permission_denied(system: VoiceSystem) -> None:
    """When Discord answers 403 the RPC fails PERMISSION_DENIED naming the permission."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("quin", faceit_id="p-quin")
    await system.control.edit_role(system.guild_id, system.bot_role_id, permissions=1 << 10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await system.stub.OpenMatch(match(MATCH, 1, ["p-quin"]))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "MANAGE_CHANNELS" in (caught.value.details() or "")


async def test_full_category_falls_back_to_no_category(fresh_database: str) -> None:
    """Discord's "category full" (50035) is retried without it, then remembered until a delete."""
    async with voice_system(fresh_database, SandboxConfig(max_channels_per_category=1)) as system:
        category = await system.control.create_channel(system.guild_id, "Matches", type=4)
        category_id = int(category["channel_id"])
        filler = await system.control.create_channel(
            system.guild_id, "filler", parent_id=category_id
        )
        service = await system.start_voice(discord_category_id=category_id)
        assert system.stub is not None
        await system.member("ray", faceit_id="p-ray")
        await system.control.clear_audit_log()

        async def parent_of(match_id: str) -> str | None:
            opened = await system.stub.OpenMatch(match(match_id, 1, ["p-ray"]))  # type: ignore[union-attr]
            channel_id = opened.match.channels[0].channel_id
            channels = (await system.guild_state())["channels"]
            (made,) = [c for c in channels if int(c["id"]) == channel_id]
            return made["parent_id"]

        assert await parent_of("m-1") is None
        assert await parent_of("m-2") is None
        creates = await system.control.audit_log(method="POST", route="/guilds/{guild_id}/channels")
        assert sorted(e["status"] for e in creates) == [201, 201, 400]

        await system.control.delete_channel(filler["channel_id"])

        async def forgotten() -> bool:
            return service.bot.get_channel(int(filler["channel_id"])) is None

        await eventually(forgotten, what="the bot to see the filler deleted")
        assert await parent_of("m-3") == category["channel_id"]


async def test_a_category_full_by_the_cache_costs_no_refused_create(system: VoiceSystem) -> None:
    """With the category at 49 of 50 channels, one match channel goes in, the rest without a 400."""
    category = await system.control.create_channel(system.guild_id, "Matches", type=4)
    category_id = int(category["channel_id"])
    for i in range(49):
        await system.control.create_channel(system.guild_id, f"filler{i}", parent_id=category_id)
    await system.start_voice(discord_category_id=category_id)
    assert system.stub is not None
    for name in ("tia", "uma", "vic", "wes"):
        await system.member(name, faceit_id=f"p-{name}")
    await system.control.clear_audit_log()
    first = system.stub.OpenMatch(match("m-1", 1, ["p-tia"], ["p-uma"]))
    second = system.stub.OpenMatch(match("m-2", 1, ["p-vic"], ["p-wes"]))
    await asyncio.gather(first, second)

    creates = await system.control.audit_log(method="POST", route="/guilds/{guild_id}/channels")
    assert [e["status"] for e in creates] == [201] * 4
    channels = (await system.guild_state())["channels"]
    in_category = [c for c in channels if c["name"].startswith("Match ")]
    assert sorted(c["parent_id"] is not None for c in in_category) == [False, False, False, True]


async def test_channels_go_under_the_configured_category(system: VoiceSystem) -> None:
    """With DISCORD_CATEGORY_ID set the match channels are created in that category."""
    category = await system.control.create_channel(system.guild_id, "Matches", type=4)
    await system.start_voice(discord_category_id=int(category["channel_id"]))
    assert system.stub is not None
    await system.member("sam", faceit_id="p-sam")
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-sam"]))
    channel_id = opened.match.channels[0].channel_id
    (made,) = [c for c in (await system.guild_state())["channels"] if int(c["id"]) == channel_id]
    assert made["parent_id"] == category["channel_id"]


async def test_no_match_is_judged_while_the_gateway_is_down_and_reconnect_heals(
    system: VoiceSystem,
) -> None:
    """Gateway down: NOT_SERVING, OpenMatch waits for it; on ready waiting players are moved."""
    service = await system.start_voice()
    assert system.stub is not None
    stub = system.stub
    kim = await system.member("kim", faceit_id="p-kim")
    lee = await system.member("lee", faceit_id="p-lee")
    first = await stub.OpenMatch(match(MATCH, 1, ["p-kim"]))
    assert [p.outcome for p in first.placements] == [
        voice_pb.PLACEMENT_OUTCOME_SKIPPED_NOT_IN_VOICE
    ]
    assert await system.health_status() == "SERVING"
    runs = service.reconciler.runs

    await system.control.close_gateway(4000, hold=True, invalidate=True)

    async def not_serving() -> bool:
        return await system.health_status() == "NOT_SERVING"

    await eventually(not_serving, what="health NOT_SERVING while the gateway is down")
    await system.control.set_voice(system.guild_id, kim, system.lobby_id)
    await system.control.set_voice(system.guild_id, lee, system.lobby_id)
    second = asyncio.ensure_future(stub.OpenMatch(match("2-second", 1, ["p-lee"])))
    await system.control.release_gateway()

    opened = await second
    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED]

    async def healed() -> bool:
        return (
            service.reconciler.runs > runs
            and await system.voice_of(kim) == first.match.channels[0].channel_id
        )

    await eventually(healed, timeout=30, what="kim moved in by the reconciliation on ready")
    assert await system.health_status() == "SERVING"


async def test_open_match_is_unavailable_when_the_gateway_stays_down(system: VoiceSystem) -> None:
    """OpenMatch and CloseMatch answer UNAVAILABLE after the bounded wait for the gateway."""
    await system.start_voice(gateway_wait_s=0.2)
    assert system.stub is not None
    await system.member("max", faceit_id="p-max")
    await system.control.close_gateway(4000, hold=True, invalidate=True)

    async def not_serving() -> bool:
        return await system.health_status() == "NOT_SERVING"

    await eventually(not_serving, what="health NOT_SERVING while the gateway is down")
    with pytest.raises(grpc.aio.AioRpcError) as opened:
        await system.stub.OpenMatch(match(MATCH, 1, ["p-max"]))
    assert opened.value.code() is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await system.stub.CloseMatch(voice_pb.CloseMatchRequest(match_id=MATCH, version=2))
    assert closed.value.code() is grpc.StatusCode.UNAVAILABLE
    await system.control.release_gateway()

    async def serving() -> bool:
        return await system.health_status() == "SERVING"

    await eventually(serving, timeout=30, what="health SERVING once the gateway is back")


MEMBER_ROUTE = "/guilds/{guild_id}/members/{user_id}"


async def _players_in_lobby(system: VoiceSystem, count: int) -> list[int]:
    users = []
    for i in range(count):
        user = await system.member(f"mover{i}", faceit_id=f"p-mover{i}")
        await system.control.set_voice(system.guild_id, user, system.lobby_id)
        users.append(user)
    return users


async def test_the_moves_of_a_match_go_out_concurrently(system: VoiceSystem) -> None:
    """With 0.4 s of Discord latency per move, the six moves of a match are in flight together."""
    await system.start_voice()
    assert system.stub is not None
    users = await _players_in_lobby(system, 6)
    await system.control.add_latency(0.4, method="PATCH", route=MEMBER_ROUTE)
    await system.control.clear_audit_log()
    opened = await system.stub.OpenMatch(match(MATCH, 1, [f"p-mover{i}" for i in range(6)]))
    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED] * 6
    team = opened.match.channels[0].channel_id
    assert [await system.voice_of(u) for u in users] == [team] * 6
    moves = await system.control.audit_log(method="PATCH", route=MEMBER_ROUTE)
    assert max(m["in_flight"] for m in moves) >= 3, moves


async def test_moves_honour_429s_and_the_bucket_limit(system: VoiceSystem) -> None:
    """Moves retried after 429s, and kept within a 2-per-second bucket, all land."""
    await system.start_voice()
    assert system.stub is not None
    users = await _players_in_lobby(system, 5)
    await system.control.set_rate_limits(routes=[("PATCH", MEMBER_ROUTE, 2, 0.5)])
    await system.control.inject_errors(429, count=2, method="PATCH", route=MEMBER_ROUTE)
    await system.control.clear_audit_log()
    opened = await system.stub.OpenMatch(match(MATCH, 1, [f"p-mover{i}" for i in range(5)]))
    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED] * 5
    team = opened.match.channels[0].channel_id
    assert [await system.voice_of(u) for u in users] == [team] * 5
    statuses = [e["status"] for e in await system.control.audit_log(method="PATCH")]
    assert statuses.count(429) == 2, statuses


CREATE_ROUTE = "/guilds/{guild_id}/channels"


async def test_the_channel_creates_of_a_match_go_out_concurrently(system: VoiceSystem) -> None:
    """Once the create bucket's limits are known, both teams' creates are in flight together."""
    await system.start_voice()
    assert system.stub is not None
    for name in ("abe", "bea", "cal", "dee"):
        await system.member(name, faceit_id=f"p-{name}")
    # The first create of a bucket goes alone: its answer tells how many may be in flight.
    await system.stub.OpenMatch(match("m-warm", 1, ["p-abe"], ["p-bea"]))
    await system.control.add_latency(0.5, method="POST", route=CREATE_ROUTE)
    await system.control.clear_audit_log()
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-cal"], ["p-dee"]))
    assert len(opened.match.channels) == 2
    creates = await system.control.audit_log(method="POST", route=CREATE_ROUTE)
    assert sorted(c["in_flight"] for c in creates) == [1, 2], creates


async def test_channel_creates_keep_within_a_scarce_route_limit(system: VoiceSystem) -> None:
    """Six creates under a 2-per-0.5 s create limit all land, none sent beyond the limit."""
    await system.start_voice()
    assert system.stub is not None
    names = ["eli", "fay", "gus", "hal", "ida", "jon"]
    for name in names:
        await system.member(name, faceit_id=f"p-{name}")
    await system.control.set_rate_limits(routes=[("POST", CREATE_ROUTE, 2, 0.5)])
    await system.control.clear_audit_log()
    opened = await asyncio.gather(
        *(
            system.stub.OpenMatch(match(f"m-{i}", 1, [f"p-{a}"], [f"p-{b}"]))
            for i, (a, b) in enumerate(zip(names[::2], names[1::2], strict=True))
        )
    )
    assert [len(o.match.channels) for o in opened] == [2, 2, 2]
    assert len(await system.match_channel_names()) == 6
    creates = await system.control.audit_log(method="POST", route=CREATE_ROUTE)
    assert [e["status"] for e in creates] == [201] * 6


async def test_a_global_429_on_create_is_waited_out(system: VoiceSystem) -> None:
    """A global 429 answering a channel create is retried after retry_after and the match opens."""
    await system.start_voice()
    assert system.stub is not None
    await system.member("kim", faceit_id="p-kim")
    await system.member("lou", faceit_id="p-lou")
    await system.control.inject_errors(
        429, count=1, method="POST", route=CREATE_ROUTE, retry_after=0.2, is_global=True
    )
    await system.control.clear_audit_log()
    opened = await system.stub.OpenMatch(match(MATCH, 1, ["p-kim"], ["p-lou"]))
    assert len(opened.match.channels) == 2
    statuses = sorted(e["status"] for e in await system.control.audit_log(method="POST"))
    assert statuses == [201, 201, 429], statuses


async def test_in_place_edit_moves_who_lost_access_to_the_lobby(system: VoiceSystem) -> None:
    """With MANAGE_ROLES the overwrite is edited in place and an unregistered player moved out."""
    await system.grant_manage_roles()
    await system.start_voice()
    assert system.stub is not None
    ada, ben, team = await system.pair_in_team_channel(MATCH)

    await system.control.run_command(system.guild_id, ben, "unregister")

    assert await system.voice_of(ben) == system.lobby_id
    now = await system.stub.GetMatch(voice_pb.GetMatchRequest(match_id=MATCH))
    assert now.match.channels[0].channel_id == team  # edited, not replaced
    assert str(ben) not in (await system.control.channel_access(team))["view"]
    assert await system.voice_of(ada) == team
    assert await system.trespassers() == []


async def test_replacement_takes_only_allowed_players_into_the_new_channel(
    system: VoiceSystem,
) -> None:
    """Without MANAGE_ROLES a dropped player and a non-player go to the lobby, not the new one."""
    await system.start_voice()
    assert system.stub is not None
    ada, ben, old = await system.pair_in_team_channel(MATCH)
    boss = await system.admin("boss")  # may sit anywhere, but is no player of the match
    await system.put_in_voice(boss, old)

    again = await system.stub.OpenMatch(match(MATCH, 2, ["p-ada"]))

    new = again.match.channels[0].channel_id
    assert new != old
    assert await system.voice_of(ada) == new
    assert await system.voice_of(ben) == system.lobby_id
    assert await system.voice_of(boss) == system.lobby_id
    assert await system.trespassers() == []


async def test_without_a_lobby_who_lost_access_is_disconnected(system: VoiceSystem) -> None:
    """Without DISCORD_LOBBY_CHANNEL_ID a player who lost access is disconnected from voice."""
    await system.grant_manage_roles()
    await system.start_voice(discord_lobby_channel_id=None)
    assert system.stub is not None
    ada, ben, team = await system.pair_in_team_channel(MATCH)

    await system.stub.OpenMatch(match(MATCH, 2, ["p-ada"]))

    assert await system.voice_of(ben) is None
    assert await system.voice_of(ada) == team


async def test_one_put_in_a_team_channel_without_access_is_moved_out(
    system: VoiceSystem,
) -> None:
    """A member moved into a team channel they may not join (by a moderator) is moved out;
    an administrator is left where they are."""
    await system.start_voice()
    _, _, team = await system.pair_in_team_channel(MATCH)
    stranger = await system.member("stranger")
    boss = await system.admin("boss")
    await system.put_in_voice(boss, team)

    await system.control.set_voice(system.guild_id, stranger, team, force=True)

    await system.wait_in(stranger, system.lobby_id)
    assert await system.voice_of(boss) == team
    assert await system.trespassers() == []


async def test_register_and_whoami_in_a_registry_database_outage_say_unavailable(
    fresh_database: str,
) -> None:
    """With the registry's database down, the replies say unavailable and do not blame FACEIT."""
    async with (
        TcpProxy.serving(fresh_database) as proxy,
        voice_system(fresh_database, registry_database_url=proxy.dsn(fresh_database)) as system,
    ):
        await system.start_voice()
        eve = await system.member("eve")
        await system.faceit.create_player("eve_faceit", player_id="p-eve")
        await proxy.down()

        replies = [
            await system.control.run_command(
                system.guild_id, eve, "register", {"faceit_nickname": "eve_faceit"}
            ),
            await system.control.run_command(system.guild_id, eve, "whoami"),
            await system.control.run_command(system.guild_id, eve, "unregister"),
        ]

    for reply in replies:
        assert "FACEIT" not in reply["content"]
        assert "unavailable" in reply["content"]


async def test_register_while_faceit_is_down_says_faceit_cannot_be_reached(
    system: VoiceSystem,
) -> None:
    """When FACEIT itself fails, /register says FACEIT cannot be reached."""
    await system.start_voice()
    fay = await system.member("fay")
    await system.faceit.create_player("fay_faceit", player_id="p-fay")
    await system.faceit.fail_next(503, 10)

    reply = await system.control.run_command(
        system.guild_id, fay, "register", {"faceit_nickname": "fay_faceit"}
    )

    assert "FACEIT cannot be reached" in reply["content"]


async def test_moves_keep_within_discords_global_limit_without_429s(system: VoiceSystem) -> None:
    """60 moves, with only the global limit (50 a second) binding, draw no global 429."""
    await system.start_voice()
    assert system.stub is not None
    await _players_in_lobby(system, 60)
    await system.control.set_rate_limits(routes=[("PATCH", MEMBER_ROUTE, 1000, 1.0)])

    async def global_window_over() -> bool:
        # Voice's start-up calls (login, guild, commands) count in the sandbox's global window.
        calls = await system.control.audit_log()
        return not calls or time.monotonic() - calls[-1]["answered_at"] > 1.0

    await eventually(global_window_over, what="a global window without voice's start-up calls")
    await system.control.clear_audit_log()
    opened = await system.stub.OpenMatch(match(MATCH, 1, [f"p-mover{i}" for i in range(60)]))
    assert [p.outcome for p in opened.placements] == [voice_pb.PLACEMENT_OUTCOME_MOVED] * 60
    statuses = [e["status"] for e in await system.control.audit_log()]
    assert 429 not in statuses, statuses
