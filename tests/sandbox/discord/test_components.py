"""Sub-commands, buttons, command permission overrides and role overwrites, as Discord does
them, driven by the real py-cord 2.8 against the in-process sandbox."""

from __future__ import annotations

import asyncio

import discord
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxError
from sandbox.discord import permissions as p
from tests.sandbox.discord.helpers import Api, GatewayClient, running_bot
from tests.support import eventually


class Confirm(discord.ui.View):
    """A confirm button that edits its own message (UPDATE_MESSAGE)."""

    @discord.ui.button(label="Confirm", custom_id="confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, button: discord.ui.Button, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"done by {interaction.user.id}", view=None)

    @discord.ui.button(label="Later", custom_id="later", disabled=True)
    async def later(self, button: discord.ui.Button, interaction: discord.Interaction) -> None:
        raise AssertionError("a disabled button cannot be clicked")


def add_commands(bot: discord.Bot) -> None:
    """/admin ping|ask (MANAGE_CHANNELS by default); ask answers with a Confirm button."""
    admin = bot.create_group(
        "admin",
        "admin tools",
        default_member_permissions=discord.Permissions(manage_channels=True),
    )

    @admin.command(name="ping", description="says which sub-command ran")
    @discord.option("word", str, description="echoed")
    async def ping(ctx: discord.ApplicationContext, word: str) -> None:
        await ctx.respond(f"pong {word}", ephemeral=True)

    @admin.command(name="ask", description="asks to confirm")
    async def ask(ctx: discord.ApplicationContext) -> None:
        await ctx.defer(ephemeral=True)
        await ctx.respond("sure?", view=Confirm(), ephemeral=True)


async def test_sub_commands_reach_pycord_nested(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """A sub-command's options are nested under it in the interaction data, as Discord sends
    them ("Subcommands and Subcommand Groups"); py-cord runs the right callback."""
    gid = guild["guild_id"]
    async with running_bot(sandbox.url, guild_ids=[int(gid)], setup=add_commands):
        await eventually(lambda: control.commands(gid), what="command sync")
        reply = await control.run_command(gid, guild["owner_id"], "admin ping", {"word": "x"})
        assert reply["content"] == "pong x" and reply["ephemeral"] is True
        with pytest.raises(SandboxError) as missing:
            await control.run_command(gid, guild["owner_id"], "admin")
        assert missing.value.status == 400
        with pytest.raises(SandboxError) as unknown:
            await control.run_command(gid, guild["owner_id"], "admin nope")
        assert unknown.value.status == 404


async def test_a_button_click_updates_its_message_for_the_member_it_answered_only(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """A click is INTERACTION_CREATE type 3 with the custom_id and the message; UPDATE_MESSAGE
    edits that message (same id). An ephemeral message is clicked only by its recipient, and
    a disabled button not at all."""
    gid = guild["guild_id"]
    other = (await control.add_member(gid, "other"))["user_id"]
    owner = guild["owner_id"]
    async with running_bot(sandbox.url, guild_ids=[int(gid)], setup=add_commands):
        await eventually(lambda: control.commands(gid), what="command sync")
        asked = await control.run_command(gid, owner, "admin ask")
        buttons = asked["components"][0]["components"]
        assert [b["custom_id"] for b in buttons] == ["confirm", "later"]

        with pytest.raises(SandboxError) as unseen:
            await control.click(other, asked["message_id"], "confirm")
        assert unseen.value.status == 403
        with pytest.raises(SandboxError) as disabled:
            await control.click(owner, asked["message_id"], "later")
        assert disabled.value.status == 400

        done = await control.click(owner, asked["message_id"], "confirm")

        assert done["message_id"] == asked["message_id"]
        assert done["content"] == f"done by {owner}" and done["components"] == []
        assert done["ephemeral"] is True


async def test_update_message_is_refused_for_a_slash_command(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Callback types 6 and 7 are only valid for component interactions (400)."""
    gid = guild["guild_id"]
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await api.call(
        "PUT",
        f"/applications/{guild['bot_user_id']}/guilds/{gid}/commands",
        [{"name": "ping", "description": "p"}],
    )
    run = asyncio.create_task(control.run_command(gid, guild["owner_id"], "ping", reply_timeout=5))
    event = await gw.dispatch("INTERACTION_CREATE")
    status, body, _ = await api.call(
        "POST", f"/interactions/{event['id']}/{event['token']}/callback", {"type": 7, "data": {}}
    )
    assert status == 400 and body["code"] == 50035
    run.cancel()


async def test_guild_overrides_decide_over_default_member_permissions(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """Application Command Permissions: a guild admin's role override lets a member without the
    default permissions use the command, a user override beats it; the listing a member sees
    follows the same rule."""
    gid = guild["guild_id"]
    helpers = await control.create_role(gid, "helpers")
    helper = (await control.add_member(gid, "helper", roles=[helpers["role_id"]]))["user_id"]
    banned = (await control.add_member(gid, "banned", roles=[helpers["role_id"]]))["user_id"]
    plain = (await control.add_member(gid, "plain"))["user_id"]
    async with running_bot(sandbox.url, guild_ids=[int(gid)], setup=add_commands):
        await eventually(lambda: control.commands(gid), what="command sync")
        assert await control.commands(gid, user_id=helper) == []
        await control.set_command_permissions(
            gid,
            "admin",
            [
                {"id": helpers["role_id"], "type": 1, "permission": True},
                {"id": banned, "type": 2, "permission": False},
            ],
        )
        assert [c["name"] for c in await control.commands(gid, user_id=helper)] == ["admin"]
        assert await control.commands(gid, user_id=plain) == []
        reply = await control.run_command(gid, helper, "admin ping", {"word": "ok"})
        assert reply["content"] == "pong ok"
        for refused in (banned, plain):
            with pytest.raises(SandboxError) as error:
                await control.run_command(gid, refused, "admin ping", {"word": "no"})
            assert error.value.status == 403


async def test_role_overwrites_apply_between_everyone_and_the_member(
    control: DiscordSandboxClient, guild: dict
) -> None:
    """Permission Overwrites: @everyone's overwrite, then the member's roles' (allows win over
    denies among them), then the member's own (docs permissions.mdx, "Permission Overwrites")."""
    gid = guild["guild_id"]
    staff = (await control.create_role(gid, "staff"))["role_id"]
    muted = (await control.create_role(gid, "muted"))["role_id"]
    both = (await control.add_member(gid, "both", roles=[staff, muted]))["user_id"]
    denied = (await control.add_member(gid, "denied", roles=[staff]))["user_id"]
    nobody = (await control.add_member(gid, "nobody"))["user_id"]
    hidden = str(p.VIEW_CHANNEL | p.CONNECT)
    made = await control.create_channel(
        gid,
        "Match",
        type=2,
        permission_overwrites=[
            {"id": gid, "type": 0, "allow": "0", "deny": hidden},
            {"id": staff, "type": 0, "allow": hidden, "deny": "0"},
            {"id": muted, "type": 0, "allow": "0", "deny": hidden},
            {"id": denied, "type": 1, "allow": "0", "deny": hidden},
        ],
    )
    access = await control.channel_access(made["channel_id"])
    assert str(both) in access["connect"]
    assert str(denied) not in access["view"] and str(nobody) not in access["view"]
