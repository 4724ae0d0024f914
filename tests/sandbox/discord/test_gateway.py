"""The gateway over a bare WebSocket: handshake, intents, dispatches, resume, chunks."""

from __future__ import annotations

import aiohttp
import pytest

from sandbox.discord import DiscordSandboxClient, SandboxConfig
from sandbox.discord.config import GUILD_MEMBERS_INTENT
from tests.sandbox.discord.helpers import Api, GatewayClient

GUILDS = 1 << 0
VOICE = 1 << 7


async def test_hello_and_heartbeat_ack(gateway_connect) -> None:
    """The server says HELLO with an interval and ACKs every heartbeat."""
    gw: GatewayClient = await gateway_connect()
    hello = await gw.frame()
    assert hello == {"op": 10, "d": {"heartbeat_interval": 41250}}
    await gw.ws.send_json({"op": 1, "d": None})
    assert await gw.frame() == {"op": 11}


async def test_bad_token_closes_with_4004(gateway_connect) -> None:
    """IDENTIFY with a wrong token closes the socket with 4004."""
    gw: GatewayClient = await gateway_connect()
    await gw.frame()
    await gw.ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1}})
    msg = await gw.ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert gw.ws.close_code == 4004


async def test_disallowed_privileged_intent_closes_with_4014(
    config: SandboxConfig, gateway_connect
) -> None:
    """Asking for GUILD_MEMBERS when it is not enabled closes with 4014."""
    config.privileged_intents = 0
    gw: GatewayClient = await gateway_connect()
    await gw.frame()
    await gw.ws.send_json(
        {"op": 2, "d": {"token": "sandbox-bot-token", "intents": GUILD_MEMBERS_INTENT}}
    )
    await gw.ws.receive(timeout=5)
    assert gw.ws.close_code == 4014


async def test_ready_then_guild_create_with_what_pycord_needs(
    control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """READY names session and guilds; GUILD_CREATE has role colors, the bot and voice states."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "talker")
    quiet = await control.add_member(gid, "quiet")
    lobby = await control.create_channel(gid, "Lobby")
    await control.set_voice(gid, member["user_id"], lobby["channel_id"])
    gw: GatewayClient = await gateway_connect()
    ready = await gw.identify(intents=GUILDS | VOICE)
    assert (
        ready["user"]["id"] == guild["bot_user_id"]
        and ready["application"]["id"] == guild["bot_user_id"]
    )
    assert ready["guilds"] == [{"id": gid, "unavailable": True}]
    assert ready["session_id"] and ready["resume_gateway_url"].startswith("ws://")
    created = await gw.dispatch("GUILD_CREATE")
    assert all("colors" in role for role in created["roles"])
    member_ids = {m["user"]["id"] for m in created["members"]}
    assert member_ids == {guild["bot_user_id"], member["user_id"]}
    assert quiet["user_id"] not in member_ids
    assert created["member_count"] == 4
    assert created["voice_states"][0]["user_id"] == member["user_id"]
    assert created["voice_states"][0]["channel_id"] == lobby["channel_id"]


async def test_guild_created_while_connected_is_dispatched(
    control: DiscordSandboxClient, gateway_connect
) -> None:
    """A guild made after IDENTIFY reaches the bot as GUILD_CREATE."""
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    guild = await control.create_guild("Late Guild")
    created = await gw.dispatch("GUILD_CREATE")
    assert created["id"] == guild["guild_id"] and created["name"] == "Late Guild"


async def test_channel_lifecycle_and_voice_dispatches(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Create, update, move and delete fire CHANNEL_*, VOICE_STATE_UPDATE (null on delete)."""
    gid = guild["guild_id"]
    gw: GatewayClient = await gateway_connect()
    await gw.identify(intents=GUILDS | VOICE | GUILD_MEMBERS_INTENT)
    member = await control.add_member(gid, "player")
    lobby = await control.create_channel(gid, "Lobby")
    assert (await gw.dispatch("CHANNEL_CREATE"))["id"] == lobby["channel_id"]
    await control.set_voice(gid, member["user_id"], lobby["channel_id"])
    assert (await gw.dispatch("VOICE_STATE_UPDATE"))["channel_id"] == lobby["channel_id"]
    _, team, _ = await api.call("POST", f"/guilds/{gid}/channels", {"name": "Team", "type": 2})
    assert (await gw.dispatch("CHANNEL_CREATE"))["id"] == team["id"]
    await api.call("PATCH", f"/channels/{team['id']}", {"name": "Team A"})
    assert (await gw.dispatch("CHANNEL_UPDATE"))["name"] == "Team A"
    await api.call(
        "PATCH", f"/guilds/{gid}/members/{member['user_id']}", {"channel_id": team["id"]}
    )
    moved = await gw.dispatch("VOICE_STATE_UPDATE")
    assert (moved["user_id"], moved["channel_id"], moved["guild_id"]) == (
        member["user_id"],
        team["id"],
        gid,
    )
    assert (await gw.dispatch("GUILD_MEMBER_UPDATE"))["user"]["id"] == member["user_id"]
    await api.call("DELETE", f"/channels/{team['id']}")
    left = await gw.dispatch("VOICE_STATE_UPDATE")
    assert (left["user_id"], left["channel_id"]) == (member["user_id"], None)
    assert (await gw.dispatch("CHANNEL_DELETE"))["id"] == team["id"]


async def test_resume_replays_missed_dispatches(
    control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """After a drop, RESUME replays what was sent meanwhile and ends with RESUMED."""
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await gw.dispatch("GUILD_CREATE")
    closed = await control.close_gateway(4000)
    assert closed["closed"] == 1
    missed = await control.create_channel(guild["guild_id"], "Missed")
    again: GatewayClient = await gateway_connect()
    await again.frame()
    await again.ws.send_json(
        {"op": 6, "d": {"token": "sandbox-bot-token", "session_id": gw.session_id, "seq": gw.seq}}
    )
    replayed = await again.dispatch("CHANNEL_CREATE")
    assert replayed["id"] == missed["channel_id"]
    await again.dispatch("RESUMED")
    session = (await control.gateway())["sessions"][0]
    assert session["connected"] and session["resumes"] == 1


async def test_resume_of_unknown_session_is_invalid_session(
    control: DiscordSandboxClient, gateway_connect
) -> None:
    """RESUME with a session the sandbox dropped gets op 9 with d=false."""
    gw: GatewayClient = await gateway_connect()
    await gw.identify()
    await control.close_gateway(4000, invalidate=True)
    again: GatewayClient = await gateway_connect()
    await again.frame()
    await again.ws.send_json(
        {"op": 6, "d": {"token": "sandbox-bot-token", "session_id": gw.session_id, "seq": 1}}
    )
    assert await again.frame() == {"op": 9, "d": False}


async def test_request_guild_members_answers_chunks(
    control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """Op 8 gets GUILD_MEMBERS_CHUNK with the matching members and the nonce."""
    await control.add_member(guild["guild_id"], "alice")
    await control.add_member(guild["guild_id"], "bob")
    gw: GatewayClient = await gateway_connect()
    await gw.identify(intents=GUILDS | GUILD_MEMBERS_INTENT)
    await gw.ws.send_json(
        {"op": 8, "d": {"guild_id": guild["guild_id"], "query": "al", "limit": 0, "nonce": "n1"}}
    )
    chunk = await gw.dispatch("GUILD_MEMBERS_CHUNK")
    assert [m["user"]["username"] for m in chunk["members"]] == ["alice"]
    assert (chunk["chunk_index"], chunk["chunk_count"], chunk["nonce"]) == (0, 1, "n1")


async def test_opcodes_before_identify_close_with_4003(gateway_connect) -> None:
    """Anything but heartbeat/identify/resume before IDENTIFY closes with 4003."""
    gw: GatewayClient = await gateway_connect()
    await gw.frame()
    await gw.ws.send_json({"op": 8, "d": {"guild_id": "1"}})
    await gw.ws.receive(timeout=5)
    assert gw.ws.close_code == 4003


async def test_held_connections_wait_for_release(
    control: DiscordSandboxClient, gateway_connect
) -> None:
    """While held, a new connection gets no HELLO; release lets it proceed."""
    await control.close_gateway(4000, hold=True)
    gw: GatewayClient = await gateway_connect()
    assert (await control.gateway())["held"] is True
    with pytest.raises(TimeoutError):
        await gw.ws.receive(timeout=0.1)
    await control.release_gateway()
    assert (await gw.frame())["op"] == 10


async def test_new_identify_drops_disconnected_sessions(
    control: DiscordSandboxClient, gateway_connect
) -> None:
    """A bot that re-identifies leaves one session, not a pile of dead ones."""
    first: GatewayClient = await gateway_connect()
    await first.identify()
    await control.close_gateway(4000)
    second: GatewayClient = await gateway_connect()
    ready = await second.identify()
    sessions = (await control.gateway())["sessions"]
    assert [s["session_id"] for s in sessions] == [ready["session_id"]]
