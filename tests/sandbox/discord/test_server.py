"""End to end: the real, unmodified py-cord 2.8 bot against an in-process sandbox."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient
from tests.sandbox.discord.helpers import running_bot
from tests.support import eventually

CREATE = "/guilds/{guild_id}/channels"


def add_commands(bot: discord.Bot) -> None:
    """A direct reply, a deferred ephemeral reply and a Member option."""

    @bot.slash_command(name="hello", description="answers at once")
    async def hello(ctx: discord.ApplicationContext) -> None:
        await ctx.respond("hi there")

    @bot.slash_command(name="register", description="answers after a defer")
    @discord.option("player", discord.Member, description="who")
    async def register(ctx: discord.ApplicationContext, player: discord.Member) -> None:
        await ctx.defer(ephemeral=True)
        in_voice = player.voice is not None and player.voice.channel is not None
        await ctx.respond(f"registered {player.name} voice={in_voice}", ephemeral=True)


async def test_pycord_connects_and_syncs_commands(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """py-cord logs in, gets READY/GUILD_CREATE, fires on_ready and registers its commands."""
    gid = int(guild["guild_id"])
    async with running_bot(sandbox.url, guild_ids=[gid], setup=add_commands) as bot:
        assert bot.user is not None and bot.user.id == sandbox.bot_user_id
        py_guild = bot.get_guild(gid)
        assert py_guild is not None and py_guild.me is not None
        assert py_guild.me.guild_permissions.move_members
        assert not py_guild.me.guild_permissions.administrator
        commands = await eventually(lambda: control.commands(gid), what="command sync")
        assert sorted(c["name"] for c in commands) == ["hello", "register"]
        sounds = await control.audit_log(route="/soundboard-default-sounds")
        assert sounds and sounds[0]["status"] == 200


async def test_slash_commands_answer_directly_and_deferred(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """A direct respond and a defer(ephemeral) + respond both reach the control API."""
    gid = guild["guild_id"]
    player = await control.add_member(gid, "player1")
    lobby = await control.create_channel(gid, "Lobby")
    await control.set_voice(gid, player["user_id"], lobby["channel_id"])
    async with running_bot(sandbox.url, guild_ids=[int(gid)], setup=add_commands):
        await eventually(lambda: control.commands(gid), what="command sync")
        direct = await control.run_command(gid, player["user_id"], "hello")
        assert direct["content"] == "hi there"
        assert direct["ephemeral"] is False and direct["deferred"] is False
        deferred = await control.run_command(
            gid, player["user_id"], "register", {"player": player["user_id"]}
        )
        assert deferred["content"] == "registered player1 voice=True"
        assert deferred["ephemeral"] is True and deferred["deferred"] is True
    callbacks = await control.audit_log(
        route="/interactions/{interaction_id}/{interaction_token}/callback"
    )
    assert [c["status"] for c in callbacks] == [200, 200]


async def test_private_channel_move_and_delete(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """py-cord makes a private channel, moves voice members (40032 for others) and deletes it."""
    gid = int(guild["guild_id"])
    p1 = await control.add_member(gid, "p1")
    p2 = await control.add_member(gid, "p2")
    idle = await control.add_member(gid, "idle")
    outsider = await control.add_member(gid, "outsider")
    lobby = await control.create_channel(gid, "Lobby")
    for member in (p1, p2):
        await control.set_voice(gid, member["user_id"], lobby["channel_id"])
    intents = discord.Intents.default()
    intents.members = True
    async with running_bot(sandbox.url, guild_ids=[gid], intents=intents) as bot:
        py_guild = bot.get_guild(gid)
        assert py_guild is not None
        players = [discord.Object(int(m["user_id"])) for m in (p1, p2, idle)]
        overwrites: dict[Any, discord.PermissionOverwrite] = {
            py_guild.default_role: discord.PermissionOverwrite(view_channel=False, connect=False),
            py_guild.me: discord.PermissionOverwrite(
                view_channel=True, connect=True, move_members=True, manage_channels=True
            ),
            **{
                p: discord.PermissionOverwrite(view_channel=True, connect=True, speak=True)
                for p in players
            },
        }
        channel = await py_guild.create_voice_channel(
            "Match 1 - Team A", overwrites=overwrites, reason="match 1"
        )
        access = await control.channel_access(channel.id)
        assert (
            outsider["user_id"] not in access["view"]
            and outsider["user_id"] not in access["connect"]
        )
        assert {p1["user_id"], p2["user_id"], guild["bot_user_id"]} <= set(access["connect"])
        for member in (p1, p2):
            voice_member = py_guild.get_member(int(member["user_id"]))
            assert voice_member is not None
            await voice_member.move_to(channel, reason="match 1")
        idle_member = await py_guild.fetch_member(int(idle["user_id"]))
        with pytest.raises(discord.HTTPException) as not_in_voice:
            await idle_member.move_to(channel)
        assert not_in_voice.value.status == 400 and not_in_voice.value.code == 40032
        state = await control.get_guild(gid)
        assert state["voice_states"] == {
            p1["user_id"]: str(channel.id),
            p2["user_id"]: str(channel.id),
        }

        async def moved() -> bool:
            cached = py_guild.get_channel(channel.id)
            return isinstance(cached, discord.VoiceChannel) and len(cached.members) == 2

        await eventually(moved, what="py-cord sees the moves")
        await channel.delete(reason="match over")

        async def emptied() -> bool:
            member = py_guild.get_member(int(p1["user_id"]))
            return bot.get_channel(channel.id) is None and (member is None or member.voice is None)

        await eventually(emptied, what="CHANNEL_DELETE and VOICE_STATE_UPDATE null reach py-cord")
    assert (await control.get_guild(gid))["voice_states"] == {}
    reasons = [e["reason"] for e in await control.audit_log(method="PATCH")]
    assert reasons[:2] == ["match 1", "match 1"]


async def test_pycord_gets_through_a_429_storm(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """Three injected 429s on channel creation: py-cord waits retry_after and succeeds."""
    gid = int(guild["guild_id"])
    async with running_bot(sandbox.url, guild_ids=[gid]) as bot:
        py_guild = bot.get_guild(gid)
        assert py_guild is not None
        await control.inject_errors(429, count=3, method="POST", route=CREATE, retry_after=0.05)
        channel = await py_guild.create_voice_channel("after the storm")
        assert channel.name == "after the storm"
    statuses = [e["status"] for e in await control.audit_log(method="POST", route=CREATE)]
    assert statuses == [429, 429, 429, 201]


async def test_pycord_paced_by_a_scarce_route_limit(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """With 2 creates per 0.2 s, py-cord honours the headers and every create succeeds."""
    gid = int(guild["guild_id"])
    await control.set_rate_limits(routes=[("POST", CREATE, 2, 0.2)])
    async with running_bot(sandbox.url, guild_ids=[gid]) as bot:
        py_guild = bot.get_guild(gid)
        assert py_guild is not None
        for index in range(5):
            await py_guild.create_voice_channel(f"paced {index}")
    statuses = [e["status"] for e in await control.audit_log(method="POST", route=CREATE)]
    assert statuses.count(201) == 5


async def test_pycord_resumes_after_a_gateway_drop(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """A dispatch sent while the gateway is down is replayed on RESUME; no new IDENTIFY."""
    gid = int(guild["guild_id"])
    async with running_bot(sandbox.url, guild_ids=[gid]) as bot:
        await control.close_gateway(4000, hold=True)
        missed = await control.create_channel(gid, "made while down")
        info = await control.gateway()
        assert len(info["sessions"]) == 1 and not info["sessions"][0]["connected"]
        assert bot.get_channel(int(missed["channel_id"])) is None
        await control.release_gateway()

        async def replayed() -> bool:
            return bot.get_channel(int(missed["channel_id"])) is not None

        await eventually(replayed, what="the missed CHANNEL_CREATE")
        info = await control.gateway()
        assert len(info["sessions"]) == 1
        assert info["sessions"][0]["resumes"] == 1 and info["sessions"][0]["connected"]


async def test_bad_token_fails_with_login_failure(sandbox: DiscordSandbox, guild: dict) -> None:
    """py-cord with a wrong token raises LoginFailure from start()."""
    with pytest.raises(discord.LoginFailure):
        async with running_bot(sandbox.url, guild_ids=[int(guild["guild_id"])], token="wrong"):
            pass
