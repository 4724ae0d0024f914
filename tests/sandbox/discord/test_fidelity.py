"""Discord rules an audit against Discord's documentation found the sandbox had wrong (issue 16)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import discord
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig, SandboxError
from sandbox.discord import permissions as p
from sandbox.discord.config import GUILD_MEMBERS_INTENT, GUILD_PRESENCES_INTENT
from tests.sandbox.discord.helpers import TOKEN, Api, GatewayClient, running_bot
from tests.support import eventually

GUILDS = 1 << 0
VOICE = 1 << 7
PLAYER_ALLOW = p.VIEW_CHANNEL | p.CONNECT | p.SPEAK


def private_overwrites(guild: dict, player: str) -> list[dict[str, Any]]:
    return [
        {"id": guild["guild_id"], "type": 0, "allow": "0", "deny": str(p.VIEW_CHANNEL | p.CONNECT)},
        {"id": guild["bot_user_id"], "type": 1, "allow": "17826832", "deny": "0"},
        {"id": player, "type": 1, "allow": str(PLAYER_ALLOW), "deny": "0"},
    ]


async def create_in(api: Api, guild: dict, parent: str, player: str) -> tuple[int, Any]:
    status, body, _ = await api.call(
        "POST",
        f"/guilds/{guild['guild_id']}/channels",
        {
            "name": "Team A",
            "type": 2,
            "parent_id": parent,
            "permission_overwrites": private_overwrites(guild, player),
        },
    )
    return status, body


async def _ready(gateway_connect: Any) -> GatewayClient:
    """A bare gateway client past IDENTIFY and the guild's GUILD_CREATE."""
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await gw.dispatch("GUILD_CREATE")
    return gw


# --- 1. create-channel overwrites ----------------------------------------------------------


async def test_create_overwrites_need_guild_permissions_not_category_ones(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Create Guild Channel: overwrites may only touch permissions the bot has in the guild."""
    gid = guild["guild_id"]
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.VIEW_CHANNEL)
    grant = [{"id": guild["bot_role_id"], "type": 0, "allow": str(p.DEFAULT_BOT), "deny": "0"}]
    category = await control.create_channel(gid, "Matches", type=4, permission_overwrites=grant)
    player = (await control.add_member(gid, "player"))["user_id"]
    status, body = await create_in(api, guild, category["channel_id"], player)
    assert (status, body.get("code")) == (403, 50013)


async def test_category_denying_everyone_speak_does_not_block_create(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Create Guild Channel: overwrites are judged on guild permissions, not the category's."""
    gid = guild["guild_id"]
    deny = [{"id": gid, "type": 0, "allow": "0", "deny": str(p.SPEAK)}]
    category = await control.create_channel(gid, "Quiet", type=4, permission_overwrites=deny)
    player = (await control.add_member(gid, "player"))["user_id"]
    status, body = await create_in(api, guild, category["channel_id"], player)
    assert status == 201, body


async def test_administrator_may_write_any_overwrite(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Create Guild Channel: MANAGE_ROLES in an overwrite is possible for administrators only."""
    gid = guild["guild_id"]
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.ADMINISTRATOR)
    overwrites = [{"id": guild["bot_user_id"], "type": 1, "allow": str(p.MANAGE_ROLES)}]
    status, _, _ = await api.call(
        "POST",
        f"/guilds/{gid}/channels",
        {"name": "x", "type": 2, "permission_overwrites": overwrites},
    )
    assert status == 201


# --- 5. overwrite edits ----------------------------------------------------------------------


async def test_overwrite_edit_is_judged_on_guild_permissions_not_the_channels(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Edit Channel Permissions: only permissions the bot has in the guild or parent channel."""
    gid = guild["guild_id"]
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.DEFAULT_BOT | p.MANAGE_ROLES)
    own = [{"id": guild["bot_user_id"], "type": 1, "allow": "0", "deny": str(p.SPEAK)}]
    channel = await control.create_channel(gid, "Team", permission_overwrites=own)
    player = (await control.add_member(gid, "late"))["user_id"]
    path = f"/channels/{channel['channel_id']}/permissions/{player}"
    status, body, _ = await api.call("PUT", path, {"type": 1, "allow": str(PLAYER_ALLOW)})
    assert status == 204, body
    status, body, _ = await api.call("PUT", path, {"type": 1, "allow": str(p.MANAGE_NICKNAMES)})
    assert (status, body["code"]) == (403, 50013)


async def test_overwrite_edit_may_use_the_parent_categorys_permissions(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Edit Channel Permissions: a permission the bot has in the parent channel may be granted."""
    gid = guild["guild_id"]
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.DEFAULT_BOT | p.MANAGE_ROLES)
    grant = [{"id": guild["bot_role_id"], "type": 0, "allow": str(p.PRIORITY_SPEAKER)}]
    category = await control.create_channel(gid, "Matches", type=4, permission_overwrites=grant)
    channel = await control.create_channel(gid, "Team", parent_id=category["channel_id"])
    player = (await control.add_member(gid, "late"))["user_id"]
    path = f"/channels/{channel['channel_id']}/permissions/{player}"
    status, body, _ = await api.call("PUT", path, {"type": 1, "allow": str(p.PRIORITY_SPEAKER)})
    assert status == 204, body


# --- 2. follow-up after a defer --------------------------------------------------------------


async def _deferred(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect, flags: int
) -> tuple[asyncio.Task[dict[str, Any]], str]:
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await api.call(
        "PUT",
        f"/applications/{guild['bot_user_id']}/guilds/{guild['guild_id']}/commands",
        [{"name": "ping", "description": "p"}],
    )
    run = asyncio.create_task(control.run_command(guild["guild_id"], guild["owner_id"], "ping"))
    interaction = await gw.dispatch("INTERACTION_CREATE")
    token = interaction["token"]
    status, _, _ = await api.call(
        "POST",
        f"/interactions/{interaction['id']}/{token}/callback",
        {"type": 5, "data": {"flags": flags}},
        token=None,
    )
    assert status == 204
    return run, token


async def test_first_follow_up_edits_the_deferred_message_and_keeps_its_flags(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Followup Messages: the first follow-up after a defer edits it, its own flags ignored."""
    run, token = await _deferred(api, control, guild, gateway_connect, flags=0)
    app = guild["bot_user_id"]
    original = f"/webhooks/{app}/{token}/messages/@original"
    _, thinking, _ = await api.call("GET", original, token=None)
    status, first, _ = await api.call(
        "POST", f"/webhooks/{app}/{token}?wait=1", {"content": "secret", "flags": 64}, token=None
    )
    assert status == 200
    assert first["id"] == thinking["id"] and first["flags"] & 64 == 0
    reply = await run
    assert (reply["content"], reply["ephemeral"]) == ("secret", False)
    _, second, _ = await api.call(
        "POST", f"/webhooks/{app}/{token}?wait=1", {"content": "later", "flags": 64}, token=None
    )
    assert second["id"] != first["id"] and second["flags"] & 64
    _, shown, _ = await api.call("GET", original, token=None)
    assert shown["content"] == "secret"


async def test_follow_up_after_an_ephemeral_defer_stays_ephemeral(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Followup Messages: an ephemeral defer makes the edited message ephemeral whatever it says."""
    run, token = await _deferred(api, control, guild, gateway_connect, flags=64)
    status, first, _ = await api.call(
        "POST",
        f"/webhooks/{guild['bot_user_id']}/{token}?wait=1",
        {"content": "done"},
        token=None,
    )
    assert status == 200 and first["flags"] & 64
    assert (await run)["ephemeral"] is True


# --- 5. GET /gateway, 4013, 4007/4009, GUILD_CREATE members, heartbeat ACKs ------------------


async def test_get_gateway_needs_no_authentication(api: Api) -> None:
    """Get Gateway "does not require authentication"; Get Gateway Bot does (401)."""
    status, body, _ = await api.call("GET", "/gateway", token=None)
    assert status == 200 and body["url"].endswith("/gateway")
    status, _, _ = await api.call("GET", "/gateway/bot", token=None)
    assert status == 401


async def test_invalid_intents_close_with_4013(gateway_connect) -> None:
    """Close code 4013 Invalid intent(s): an intent value that is not a known intent."""
    gw: GatewayClient = await gateway_connect()
    await gw.send_identify(intents=1 << 40)
    await gw.ws.receive(timeout=5)
    assert gw.ws.close_code == 4013


@pytest.mark.parametrize("code", [4007, 4009])
async def test_invalid_seq_and_session_timeout_cannot_be_resumed(
    code: int, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Close codes 4007 and 4009: "reconnect and start a new session", so RESUME gets op 9."""
    gw = await _ready(gateway_connect)
    await control.close_gateway(code)
    again: GatewayClient = await gateway_connect()
    await again.frame()
    await again.ws.send_json(
        {"op": 6, "d": {"token": TOKEN, "session_id": gw.session_id, "seq": gw.seq}}
    )
    assert await again.frame() == {"op": 9, "d": False}


async def test_pycord_starts_a_new_session_after_4009(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """Close code 4009 Session timed out: py-cord's resume is refused and it identifies anew."""
    async with running_bot(sandbox.url, guild_ids=[int(guild["guild_id"])]):
        before = (await control.gateway())["sessions"][0]["session_id"]
        await control.close_gateway(4009)

        async def new_session() -> bool:
            sessions = (await control.gateway())["sessions"]
            return any(s["connected"] and s["session_id"] != before for s in sessions)

        await eventually(new_session, what="py-cord identifies with a new session")
        assert all(s["resumes"] == 0 for s in (await control.gateway())["sessions"])


async def test_guild_create_trims_members_without_presences_intent(
    control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Guild Create: without GUILD_PRESENCES only the bot and voice members are sent."""
    await control.add_member(guild["guild_id"], "someone")
    gw: GatewayClient = await gateway_connect()
    await gw.identify(intents=GUILDS | VOICE | GUILD_MEMBERS_INTENT)
    created = await gw.dispatch("GUILD_CREATE")
    assert [m["user"]["id"] for m in created["members"]] == [guild["bot_user_id"]]
    assert created["member_count"] == 3


async def test_guild_create_with_presences_sends_members_up_to_large_threshold(
    control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Guild Create with GUILD_PRESENCES: all members, unless over IDENTIFY's large_threshold."""
    for index in range(48):
        await control.add_member(guild["guild_id"], f"member{index}")
    intents = GUILDS | VOICE | GUILD_PRESENCES_INTENT
    gw: GatewayClient = await gateway_connect()
    await gw.identify(intents=intents)
    created = await gw.dispatch("GUILD_CREATE")
    assert created["member_count"] == len(created["members"]) == 50 and not created["large"]
    await control.add_member(guild["guild_id"], "the 51st")
    small: GatewayClient = await gateway_connect()
    await small.send_identify(intents=intents, large_threshold=50)
    trimmed = await small.dispatch("GUILD_CREATE")
    assert trimmed["large"] and len(trimmed["members"]) == 1


async def test_pycord_resumes_when_heartbeat_acks_stop(
    config: SandboxConfig, sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """Heartbeat: a connection that stops ACKing is zombied; py-cord closes it and resumes."""
    config.heartbeat_interval_ms = 100
    gid = int(guild["guild_id"])
    async with running_bot(sandbox.url, guild_ids=[gid], heartbeat_timeout=0.5) as bot:
        session = (await control.gateway())["sessions"][0]["session_id"]
        await control.stop_heartbeat_acks()

        async def resumed() -> bool:
            sessions = (await control.gateway())["sessions"]
            return [(s["session_id"], s["connected"]) for s in sessions] == [
                (session, True)
            ] and sessions[0]["resumes"] >= 1

        await eventually(resumed, what="py-cord resumes the zombied session")
        made = await control.create_channel(gid, "After")

        async def seen() -> bool:
            return bot.get_channel(int(made["channel_id"])) is not None

        await eventually(seen, what="events flow again after the resume")


# --- 5. default_member_permissions -----------------------------------------------------------


async def test_default_member_permissions_refuse_members_without_them(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Application command permissions: members lacking default_member_permissions cannot run it."""
    gid = guild["guild_id"]
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await api.call(
        "PUT",
        f"/applications/{guild['bot_user_id']}/guilds/{gid}/commands",
        [
            {
                "name": "admin",
                "description": "a",
                "default_member_permissions": str(p.MANAGE_GUILD),
            },
            {"name": "nobody", "description": "n", "default_member_permissions": "0"},
        ],
    )
    member = (await control.add_member(gid, "plain"))["user_id"]
    for command in ("admin", "nobody"):
        with pytest.raises(SandboxError) as refused:
            await control.run_command(gid, member, command)
        assert refused.value.status == 403
    admin_role = await control.create_role(gid, "admins", p.ADMINISTRATOR)
    admin = (await control.add_member(gid, "admin", roles=[admin_role["role_id"]]))["user_id"]
    for user in (guild["owner_id"], admin):
        run = asyncio.create_task(control.run_command(gid, user, "nobody", reply_timeout=5))
        assert (await gw.dispatch("INTERACTION_CREATE"))["data"]["name"] == "nobody"
        run.cancel()


# --- 3. gateway events after the REST answer -------------------------------------------------


async def test_events_after_answer_fault_sends_the_event_after_the_rest_reply(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Fault: CHANNEL_CREATE arrives `delay` seconds after the 201 (Discord gives no order)."""
    gw = await _ready(gateway_connect)
    await control.delay_gateway_events(0.3)
    status, made, _ = await api.call(
        "POST", f"/guilds/{guild['guild_id']}/channels", {"name": "Team", "type": 2}
    )
    answered = time.monotonic()
    assert status == 201
    created = await gw.dispatch("CHANNEL_CREATE")
    assert created["id"] == made["id"] and time.monotonic() - answered >= 0.25


async def test_hidden_new_channel_cannot_be_a_move_target_until_announced(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Fault option: a channel whose CHANNEL_CREATE is not sent yet is 10003 to a move."""
    gid = guild["guild_id"]
    gw = await _ready(gateway_connect)
    member = (await control.add_member(gid, "player"))["user_id"]
    lobby = await control.create_channel(gid, "Lobby")
    await control.set_voice(gid, member, lobby["channel_id"])
    await control.delay_gateway_events(0.5, hide_new_channels=True)
    _, made, _ = await api.call("POST", f"/guilds/{gid}/channels", {"name": "Team", "type": 2})
    move = {"channel_id": made["id"]}
    status, body, _ = await api.call("PATCH", f"/guilds/{gid}/members/{member}", move)
    assert (status, body["code"]) == (404, 10003)
    while (await gw.dispatch("CHANNEL_CREATE"))["id"] != made["id"]:
        continue
    status, body, _ = await api.call("PATCH", f"/guilds/{gid}/members/{member}", move)
    assert status == 200, body


async def test_a_call_is_handled_on_its_way_and_its_event_comes_with_the_answer(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Latency: Discord acts on a call halfway through it; the change's event and the answer
    come back together at its end."""
    gid = guild["guild_id"]
    gw = await _ready(gateway_connect)
    await control.add_latency(1.0, method="POST", route="/guilds/{guild_id}/channels")
    sent = time.monotonic()
    call = asyncio.create_task(api.call("POST", f"/guilds/{gid}/channels", {"name": "Team"}))

    async def event() -> float:
        await gw.dispatch("CHANNEL_CREATE")
        return time.monotonic()

    heard = asyncio.create_task(event())

    async def made() -> bool:
        return any(c["name"] == "Team" for c in (await control.get_guild(gid))["channels"])

    await eventually(made, what="the channel to exist")
    seen = time.monotonic()
    assert not call.done() and not heard.done()
    status, _, _ = await call
    answered = time.monotonic()
    assert status == 201
    assert seen - sent >= 0.4 and abs(await heard - answered) < 0.25


# --- 4. Cloudflare 429 -----------------------------------------------------------------------


async def test_cloudflare_429_is_html_without_via(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Rate limits: a 429 from Cloudflare has no JSON body and no Via header."""
    await control.inject_cloudflare_429(route="/guilds/{guild_id}/channels")
    async with api.http.post(
        f"{api.base}/api/v10/guilds/{guild['guild_id']}/channels",
        json={"name": "x", "type": 2},
        headers={"Authorization": f"Bot {TOKEN}"},
    ) as response:
        assert response.status == 429
        assert response.content_type == "text/html" and "Via" not in response.headers
        assert "Cloudflare" in await response.text()


async def test_pycord_raises_at_once_on_a_cloudflare_429(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """py-cord treats a 429 without Via as a ban and raises HTTPException without retrying."""
    gid = int(guild["guild_id"])
    async with running_bot(sandbox.url, guild_ids=[gid]) as bot:
        py_guild = bot.get_guild(gid)
        assert py_guild is not None
        await control.clear_audit_log()
        await control.inject_cloudflare_429(method="POST", route="/guilds/{guild_id}/channels")
        with pytest.raises(discord.HTTPException) as banned:
            await py_guild.create_voice_channel("Team")
        assert banned.value.status == 429
        assert len(await control.audit_log(method="POST")) == 1


async def test_cloudflare_fault_is_listed_until_consumed(control: DiscordSandboxClient) -> None:
    """A Cloudflare 429 fault hits the next `count` matching calls, then is gone."""
    await control.inject_cloudflare_429(count=2, method="GET", route="/users/@me")
    faults = await control.faults()
    assert faults["errors"][0]["cloudflare"] is True and faults["errors"][0]["count"] == 2
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.get(
                f"{control.base_url}/api/v10/users/@me", headers={"Authorization": f"Bot {TOKEN}"}
            ) as response:
                assert response.status == 429
    assert (await control.faults())["errors"] == []
