"""The control API under /_sandbox/, through DiscordSandboxClient."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxError
from sandbox.discord import permissions as p
from tests.support import eventually


async def test_new_guild_has_a_correctly_invited_bot(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """The bot is a member with a managed role: view, manage channels, connect, speak, move."""
    state = await control.get_guild(guild["guild_id"])
    bot = next(m for m in state["members"] if m["bot"])
    assert bot["user_id"] == guild["bot_user_id"] and bot["roles"] == [guild["bot_role_id"]]
    role = next(r for r in state["roles"] if r["id"] == guild["bot_role_id"])
    perms = int(role["permissions"])
    assert role["managed"] is True
    assert p.has(perms, p.VIEW_CHANNEL | p.MANAGE_CHANNELS | p.CONNECT | p.SPEAK | p.MOVE_MEMBERS)
    assert not perms & (p.ADMINISTRATOR | p.MANAGE_ROLES)
    assert [c["name"] for c in state["channels"]] == ["general"]
    assert (await control.info())["bot_user_id"] == guild["bot_user_id"]


async def test_access_follows_the_permission_rules(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """A private voice channel: players and the bot see and connect, others neither."""
    gid = guild["guild_id"]
    player = await control.add_member(gid, "player")
    other = await control.add_member(gid, "other")
    channel = await control.create_channel(
        gid,
        "Team A",
        permission_overwrites=[
            {"id": gid, "type": 0, "deny": "1049600"},
            {"id": guild["bot_user_id"], "type": 1, "allow": "17826832"},
            {"id": player["user_id"], "type": 1, "allow": "3146752"},
        ],
    )
    access = await control.channel_access(channel["channel_id"])
    assert set(access["view"]) == {player["user_id"], guild["bot_user_id"], guild["owner_id"]}
    assert set(access["connect"]) == set(access["view"])
    assert other["user_id"] not in access["view"]


async def test_view_without_connect_in_access(control: DiscordSandboxClient, guild: dict) -> None:
    """Denying CONNECT to @everyone leaves view but takes connect (implicit deny keeps view)."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "member")
    channel = await control.create_channel(
        gid, "Stage", permission_overwrites=[{"id": gid, "type": 0, "deny": str(p.CONNECT)}]
    )
    access = await control.channel_access(channel["channel_id"])
    assert member["user_id"] in access["view"] and member["user_id"] not in access["connect"]


async def test_role_overwrites_in_access(control: DiscordSandboxClient, guild: dict) -> None:
    """A role allowed on a hidden channel lets its members in once the role is assigned."""
    gid = guild["guild_id"]
    role = await control.create_role(gid, "Team A")
    member = await control.add_member(gid, "member")
    channel = await control.create_channel(
        gid,
        "Team A",
        permission_overwrites=[
            {"id": gid, "type": 0, "deny": "1049600"},
            {"id": role["role_id"], "type": 0, "allow": "1049600"},
        ],
    )
    assert member["user_id"] not in (await control.channel_access(channel["channel_id"]))["connect"]
    await control.add_member_role(gid, member["user_id"], role["role_id"])
    assert member["user_id"] in (await control.channel_access(channel["channel_id"]))["connect"]
    await control.remove_member_role(gid, member["user_id"], role["role_id"])
    assert member["user_id"] not in (await control.channel_access(channel["channel_id"]))["connect"]


async def test_members_cannot_join_voice_they_may_not_connect_to(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """set_voice refuses a channel the member cannot connect to, unless forced."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "member")
    private = await control.create_channel(
        gid, "Private", permission_overwrites=[{"id": gid, "type": 0, "deny": "1049600"}]
    )
    with pytest.raises(SandboxError) as refused:
        await control.set_voice(gid, member["user_id"], private["channel_id"])
    assert refused.value.status == 403 and refused.value.body["code"] == 50013
    await control.set_voice(gid, member["user_id"], private["channel_id"], force=True)
    assert (await control.get_guild(gid))["voice_states"] == {
        member["user_id"]: private["channel_id"]
    }
    await control.set_voice(gid, member["user_id"], None)
    assert (await control.get_guild(gid))["voice_states"] == {}


async def test_set_voice_rejects_text_channels_and_unknown_members(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """Only voice channels of the guild, only members of the guild."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "member")
    text = await control.create_channel(gid, "chat", type=0)
    with pytest.raises(SandboxError) as not_voice:
        await control.set_voice(gid, member["user_id"], text["channel_id"])
    assert not_voice.value.status == 400
    with pytest.raises(SandboxError) as unknown:
        await control.set_voice(gid, "42", None)
    assert unknown.value.status == 404


async def test_interaction_without_a_bot_times_out_with_504(
    control: DiscordSandboxClient, guild: dict, api
) -> None:
    """Running a registered command nobody answers gives a 504 JSON error."""
    app = guild["bot_user_id"]
    await api.call("PUT", f"/applications/{app}/commands", [{"name": "ping", "description": "p"}])
    with pytest.raises(SandboxError) as timed_out:
        await control.run_command(guild["guild_id"], guild["owner_id"], "ping", reply_timeout=0.05)
    assert timed_out.value.status == 504
    assert timed_out.value.body["acknowledged"] is False


async def test_unknown_command_and_bad_options_are_refused(
    control: DiscordSandboxClient, guild: dict, api
) -> None:
    """Commands must be registered; options must be declared, required ones present."""
    gid = guild["guild_id"]
    with pytest.raises(SandboxError) as unknown:
        await control.run_command(gid, guild["owner_id"], "nope")
    assert unknown.value.status == 404
    options = [{"name": "who", "description": "w", "type": 6, "required": True}]
    await api.call(
        "PUT",
        f"/applications/{guild['bot_user_id']}/guilds/{gid}/commands",
        [{"name": "reg", "description": "r", "options": options}],
    )
    with pytest.raises(SandboxError) as missing:
        await control.run_command(gid, guild["owner_id"], "reg")
    assert missing.value.status == 400
    with pytest.raises(SandboxError) as extra:
        await control.run_command(gid, guild["owner_id"], "reg", {"who": guild["owner_id"], "x": 1})
    assert extra.value.status == 400


async def test_faults_and_rate_limits_can_be_listed_and_cleared(
    control: DiscordSandboxClient,
) -> None:
    """Faults and limits set at runtime show up and can be removed."""
    await control.add_latency(0.01, route="/api/v10/channels/{channel_id}")
    await control.inject_errors(502, count=2, method="delete", route="/channels/{channel_id}")
    faults = await control.faults()
    assert faults["latency"][0]["route"] == "/channels/{channel_id}"
    assert faults["errors"][0]["method"] == "DELETE" and faults["errors"][0]["count"] == 2
    assert (await control.clear_faults()) == {
        "latency": [],
        "errors": [],
        "events_after_answer": {},
    }
    limits = await control.set_rate_limits(
        global_limit=10, default=(20, 2.0), routes=[("POST", "/guilds/{guild_id}/channels", 5, 1.0)]
    )
    assert limits["global"] == 10 and limits["default"] == {"limit": 20, "per": 2.0}
    assert limits["routes"] == [
        {"method": "POST", "route": "/channels/{channel_id}/messages", "limit": 5, "per": 5.0},
        {"method": "POST", "route": "/guilds/{guild_id}/channels", "limit": 5, "per": 1.0},
    ]
    with pytest.raises(SandboxError):
        await control.inject_errors(404)


async def test_latency_fault_delays_matching_calls(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, api
) -> None:
    """Added latency applies to the chosen route only."""
    await control.add_latency(0.3, route="/gateway")
    loop_time = asyncio.get_running_loop().time
    start = loop_time()
    await api.call("GET", "/gateway")
    slow = loop_time() - start
    start = loop_time()
    await api.call("GET", "/users/@me")
    fast = loop_time() - start
    assert slow >= 0.3 and fast < 0.3


async def test_audit_log_filters_and_clears(control: DiscordSandboxClient, api) -> None:
    """Every REST call is logged with method, route template, status and code."""
    await api.call("GET", "/channels/1")
    await api.call("GET", "/users/@me", token="bad")
    log = await control.audit_log()
    assert [(e["method"], e["route"], e["status"], e["code"]) for e in log] == [
        ("GET", "/channels/{channel_id}", 404, 10003),
        ("GET", "/users/@me", 401, 0),
    ]
    assert len(await control.audit_log(route="/users/@me")) == 1
    assert await control.audit_log(after=log[-1]["seq"]) == []
    await control.clear_audit_log()
    assert await control.audit_log() == []


async def test_audit_log_counts_calls_of_a_route_in_flight(
    control: DiscordSandboxClient, api
) -> None:
    """Calls of one route answered at the same time say how many were in flight together."""
    await control.add_latency(0.2, route="/gateway")
    await asyncio.gather(*(api.call("GET", "/gateway") for _ in range(3)))
    await api.call("GET", "/gateway")
    flights = [e["in_flight"] for e in await control.audit_log(route="/gateway")]
    assert sorted(flights[:3]) == [1, 2, 3] and flights[3] == 1


async def test_calls_waiting_out_a_latency_are_listed_in_flight_until_answered(
    control: DiscordSandboxClient, api
) -> None:
    """A call held by an injected latency is listed in flight (filtered by route) until its
    answer, then only in the audit log."""
    await control.add_latency(0.3, route="/gateway")
    call = asyncio.ensure_future(api.call("GET", "/gateway"))

    async def listed() -> list[dict[str, Any]]:
        return await control.in_flight(method="GET", route="/gateway")

    waiting = await eventually(listed, what="the call to be in flight")
    assert [(c["method"], c["route"]) for c in waiting] == [("GET", "/gateway")]
    assert await control.in_flight(route="/users/@me") == []
    await call
    assert await control.in_flight() == []
    assert len(await control.audit_log(route="/gateway")) == 1


async def test_audit_log_times_each_call_on_the_shared_monotonic_clock(
    control: DiscordSandboxClient, api
) -> None:
    """A call's received_at and answered_at bracket its latency, on this process's clock too."""
    await control.add_latency(0.1, route="/gateway")
    before = time.monotonic()
    await api.call("GET", "/gateway")
    after = time.monotonic()
    (entry,) = await control.audit_log(route="/gateway")
    assert before <= entry["received_at"] <= entry["answered_at"] <= after
    assert entry["answered_at"] - entry["received_at"] >= 0.1


async def test_deleting_a_category_orphans_its_children(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """As on Discord, children of a deleted category stay, with parent_id null."""
    gid = guild["guild_id"]
    category = await control.create_channel(gid, "Matches", type=4)
    child = await control.create_channel(gid, "Team", parent_id=category["channel_id"])
    await control.delete_channel(category["channel_id"])
    channels = {c["id"]: c for c in (await control.get_guild(gid))["channels"]}
    assert category["channel_id"] not in channels
    assert channels[child["channel_id"]]["parent_id"] is None
