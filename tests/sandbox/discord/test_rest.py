"""Discord's REST rules, checked with plain HTTP (no py-cord): codes, bodies and headers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig, SandboxError
from sandbox.discord import permissions as p
from tests.sandbox.discord.helpers import TOKEN, Api, FakeClock

CREATE = "/guilds/{guild_id}/channels"


def private_overwrites(guild: dict, player: str) -> list[dict]:
    return [
        {"id": int(guild["guild_id"]), "type": 0, "allow": 0, "deny": 1049600},
        {"id": int(guild["bot_user_id"]), "type": 1, "allow": 17826832, "deny": 0},
        {"id": int(player), "type": 1, "allow": 3146752, "deny": 0},
    ]


async def test_bad_token_is_401_with_discord_body(api: Api) -> None:
    """A wrong bot token gets 401, code 0, "401: Unauthorized"."""
    status, body, headers = await api.call("GET", "/users/@me", token="wrong")
    assert status == 401
    assert body == {"message": "401: Unauthorized", "code": 0}
    assert headers["Content-Type"] == "application/json"


async def test_answers_have_exact_json_content_type_and_rate_limit_headers(api: Api) -> None:
    """Every answer is `application/json` exactly and carries the X-RateLimit-* headers."""
    status, body, headers = await api.call("GET", "/users/@me")
    assert status == 200 and body["bot"] is True
    assert headers["Content-Type"] == "application/json"
    for name in ("Limit", "Remaining", "Reset", "Reset-After", "Bucket"):
        assert f"X-RateLimit-{name}" in headers


async def test_gateway_url_points_at_the_sandbox(api: Api) -> None:
    """GET /gateway and /gateway/bot return the sandbox's WebSocket URL."""
    _, body, _ = await api.call("GET", "/gateway")
    assert body["url"] == api.base.replace("http", "ws", 1) + "/gateway"
    _, bot, _ = await api.call("GET", "/gateway/bot")
    assert bot["shards"] == 1 and bot["session_start_limit"]["max_concurrency"] == 1


async def test_unknown_ids_get_discord_codes(api: Api, guild: dict) -> None:
    """Unknown channel 10003, unknown guild 10004, unknown member 10007, all 404."""
    status, body, _ = await api.call("GET", "/channels/123")
    assert (status, body["code"], body["message"]) == (404, 10003, "Unknown Channel")
    status, body, _ = await api.call("GET", "/guilds/123")
    assert (status, body["code"]) == (404, 10004)
    status, body, _ = await api.call("GET", f"/guilds/{guild['guild_id']}/members/123")
    assert (status, body["code"]) == (404, 10007)


async def test_create_private_voice_channel(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """A bot with the invite permissions may create a private channel with its own overwrite."""
    player = await control.add_member(guild["guild_id"], "player")
    status, body, _ = await api.call(
        "POST",
        f"/guilds/{guild['guild_id']}/channels",
        {
            "name": "Team A",
            "type": 2,
            "permission_overwrites": private_overwrites(guild, player["user_id"]),
        },
        headers={"X-Audit-Log-Reason": "match%201"},
    )
    assert status == 201
    assert body["type"] == 2 and body["name"] == "Team A"
    assert {"id": guild["guild_id"], "type": 0, "allow": "0", "deny": "1049600"} in body[
        "permission_overwrites"
    ]
    log = await control.audit_log(method="POST", route=CREATE)
    assert log[-1]["status"] == 201 and log[-1]["reason"] == "match 1"


async def test_overwrite_with_manage_roles_needs_administrator(api: Api, guild: dict) -> None:
    """Putting MANAGE_ROLES in a create-channel overwrite is 403 / 50013 for a non-admin bot."""
    overwrites = [
        {"id": guild["bot_user_id"], "type": 1, "allow": str(p.VIEW_CHANNEL | p.MANAGE_ROLES)}
    ]
    status, body, _ = await api.call(
        "POST",
        f"/guilds/{guild['guild_id']}/channels",
        {"name": "x", "type": 2, "permission_overwrites": overwrites},
    )
    assert (status, body["code"], body["message"]) == (403, 50013, "Missing Permissions")


async def test_overwrite_may_not_grant_what_the_bot_lacks(api: Api, guild: dict) -> None:
    """Granting a permission the bot does not have in the guild is 403 / 50013."""
    overwrites = [{"id": guild["guild_id"], "type": 0, "allow": p.MANAGE_NICKNAMES, "deny": 0}]
    status, body, _ = await api.call(
        "POST",
        f"/guilds/{guild['guild_id']}/channels",
        {"name": "x", "type": 2, "permission_overwrites": overwrites},
    )
    assert (status, body["code"]) == (403, 50013)


async def test_creating_needs_manage_channels(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Without MANAGE_CHANNELS on the bot role, channel creation is 403 / 50013."""
    await control.edit_role(
        guild["guild_id"], guild["bot_role_id"], permissions=p.VIEW_CHANNEL | p.CONNECT
    )
    status, body, _ = await api.call(
        "POST", f"/guilds/{guild['guild_id']}/channels", {"name": "x", "type": 2}
    )
    assert (status, body["code"]) == (403, 50013)


@pytest.mark.parametrize("name", ["", "x" * 101])
async def test_channel_names_must_be_1_to_100_characters(api: Api, guild: dict, name: str) -> None:
    """A name that is empty or over 100 characters is 400 / 50035 on `name`."""
    status, body, _ = await api.call(
        "POST", f"/guilds/{guild['guild_id']}/channels", {"name": name, "type": 2}
    )
    assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
    assert body["errors"]["name"]["_errors"][0]["code"] == "BASE_TYPE_BAD_LENGTH"


async def test_guild_channel_limit_is_30013(config: SandboxConfig, api: Api, guild: dict) -> None:
    """Past the guild's channel limit, creation is 400 / 30013."""
    config.max_channels_per_guild = 3  # #general plus two
    path = f"/guilds/{guild['guild_id']}/channels"
    assert (await api.call("POST", path, {"name": "a", "type": 2}))[0] == 201
    assert (await api.call("POST", path, {"name": "b", "type": 2}))[0] == 201
    status, body, _ = await api.call("POST", path, {"name": "c", "type": 2})
    assert (status, body["code"]) == (400, 30013)
    assert body["message"] == "Maximum number of guild channels reached (3)"


async def test_full_category_is_50035_on_parent_id(
    config: SandboxConfig, api: Api, guild: dict
) -> None:
    """Past the per-category limit: 400 / 50035 with CHANNEL_PARENT_MAX_CHANNELS on parent_id."""
    config.max_channels_per_category = 2
    path = f"/guilds/{guild['guild_id']}/channels"
    _, category, _ = await api.call("POST", path, {"name": "Matches", "type": 4})
    for name in ("a", "b"):
        assert (
            await api.call("POST", path, {"name": name, "type": 2, "parent_id": category["id"]})
        )[0] == 201
    status, body, _ = await api.call(
        "POST", path, {"name": "c", "type": 2, "parent_id": category["id"]}
    )
    assert (status, body["code"]) == (400, 50035)
    error = body["errors"]["parent_id"]["_errors"][0]
    assert error["code"] == "CHANNEL_PARENT_MAX_CHANNELS"
    assert error["message"] == "Maximum number of channels in category reached (2)"


async def test_moving_a_member_not_in_voice_is_40032(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """PATCH member with channel_id for someone not connected is 400 / 40032."""
    member = await control.add_member(guild["guild_id"], "idle")
    channel = await control.create_channel(guild["guild_id"], "Lobby")
    status, body, _ = await api.call(
        "PATCH",
        f"/guilds/{guild['guild_id']}/members/{member['user_id']}",
        {"channel_id": channel["channel_id"]},
    )
    assert (status, body["code"], body["message"]) == (
        400,
        40032,
        "Target user is not connected to voice.",
    )


async def test_move_and_disconnect_a_member_in_voice(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """A member in voice is moved (200 + member object) and disconnected with null."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "mover")
    lobby = await control.create_channel(gid, "Lobby")
    team = await control.create_channel(gid, "Team")
    await control.set_voice(gid, member["user_id"], lobby["channel_id"])
    status, body, _ = await api.call(
        "PATCH", f"/guilds/{gid}/members/{member['user_id']}", {"channel_id": team["channel_id"]}
    )
    assert status == 200 and body["user"]["id"] == member["user_id"]
    assert (await control.get_guild(gid))["voice_states"] == {member["user_id"]: team["channel_id"]}
    status, _, _ = await api.call(
        "PATCH", f"/guilds/{gid}/members/{member['user_id']}", {"channel_id": None}
    )
    assert status == 200
    assert (await control.get_guild(gid))["voice_states"] == {}


async def test_moving_needs_move_members_and_connect_on_target(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Moves need the bot's own CONNECT on the target and MOVE_MEMBERS (else 403 / 50013)."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "player")
    lobby = await control.create_channel(gid, "Lobby")
    hidden = await control.create_channel(
        gid,
        "No bot",
        permission_overwrites=[
            {"id": gid, "type": 0, "deny": 1049600},
            {"id": member["user_id"], "type": 1, "allow": 3146752},
        ],
    )
    await control.set_voice(gid, member["user_id"], lobby["channel_id"])
    path = f"/guilds/{gid}/members/{member['user_id']}"
    status, body, _ = await api.call("PATCH", path, {"channel_id": hidden["channel_id"]})
    assert (status, body["code"]) == (403, 50013)
    team = await control.create_channel(gid, "Team")
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.DEFAULT_BOT & ~p.MOVE_MEMBERS)
    status, body, _ = await api.call("PATCH", path, {"channel_id": team["channel_id"]})
    assert (status, body["code"]) == (403, 50013)


async def test_delete_is_judged_on_the_channels_own_overwrites(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """A private channel without a bot overwrite: hidden is 403/50001, no CONNECT is 403/50013."""
    gid = guild["guild_id"]
    hidden = await control.create_channel(
        gid, "hidden", permission_overwrites=[{"id": gid, "type": 0, "deny": 1049600}]
    )
    status, body, _ = await api.call("DELETE", f"/channels/{hidden['channel_id']}")
    assert (status, body["code"]) == (403, 50001)
    no_connect = await control.create_channel(
        gid, "no connect", permission_overwrites=[{"id": gid, "type": 0, "deny": p.CONNECT}]
    )
    status, body, _ = await api.call("DELETE", f"/channels/{no_connect['channel_id']}")
    assert (status, body["code"]) == (403, 50013)
    status, body, _ = await api.call("DELETE", f"/channels/{hidden['channel_id']}", token="nope")
    assert status == 401


async def test_delete_disconnects_occupants_and_second_delete_is_10003(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Deleting a voice channel returns it, empties it, and a second delete is 404 / 10003."""
    gid = guild["guild_id"]
    member = await control.add_member(gid, "sitter")
    channel = await control.create_channel(gid, "Team")
    await control.set_voice(gid, member["user_id"], channel["channel_id"])
    status, body, _ = await api.call("DELETE", f"/channels/{channel['channel_id']}")
    assert status == 200 and body["id"] == channel["channel_id"]
    assert (await control.get_guild(gid))["voice_states"] == {}
    status, body, _ = await api.call("DELETE", f"/channels/{channel['channel_id']}")
    assert (status, body["code"]) == (404, 10003)


async def test_edit_overwrite_needs_manage_roles(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Editing an overwrite is 403/50013 for the default bot, 204 with MANAGE_ROLES."""
    gid = guild["guild_id"]
    channel = await control.create_channel(gid, "Team")
    member = await control.add_member(gid, "late")
    path = f"/channels/{channel['channel_id']}/permissions/{member['user_id']}"
    body = {"type": 1, "allow": str(p.VIEW_CHANNEL), "deny": "0"}
    status, error, _ = await api.call("PUT", path, body)
    assert (status, error["code"]) == (403, 50013)
    await control.edit_role(gid, guild["bot_role_id"], permissions=p.DEFAULT_BOT | p.MANAGE_ROLES)
    status, _, _ = await api.call("PUT", path, body)
    assert status == 204
    assert member["user_id"] in (await control.channel_access(channel["channel_id"]))["view"]
    status, _, _ = await api.call("DELETE", path)
    assert status == 204


async def test_route_limit_answers_429_with_discord_body_and_headers(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """5 creates per minute per guild: the 6th is 429 with retry_after, Via and scope headers."""
    await control.set_rate_limits(routes=[("POST", CREATE, 5, 60.0)])
    path = f"/guilds/{guild['guild_id']}/channels"
    remaining = []
    for index in range(5):
        status, _, headers = await api.call("POST", path, {"name": f"c{index}", "type": 2})
        assert status == 201
        remaining.append(headers["X-RateLimit-Remaining"])
    assert remaining == ["4", "3", "2", "1", "0"]
    status, body, headers = await api.call("POST", path, {"name": "c5", "type": 2})
    assert status == 429
    assert body["global"] is False and body["message"] == "You are being rate limited."
    assert 0 < body["retry_after"] <= 60
    assert headers["Via"] == "1.1 google"
    assert headers["X-RateLimit-Scope"] == "user"
    assert int(headers["Retry-After"]) >= 1
    assert headers["Content-Type"] == "application/json"
    other = await control.create_guild("Other")
    assert (
        await api.call("POST", f"/guilds/{other['guild_id']}/channels", {"name": "x", "type": 2})
    )[0] == 201


async def test_global_limit_answers_429_global() -> None:
    """Past the global per-second limit, any bot route is 429 with global true."""
    server = DiscordSandbox(
        bot_token=TOKEN, config=SandboxConfig(global_rate_limit=3), clock=FakeClock()
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http=http, base=server.url)
            for _ in range(3):
                assert (await api.call("GET", "/users/@me"))[0] == 200
            status, body, headers = await api.call("GET", "/gateway")
    finally:
        await server.stop()
    assert status == 429
    assert body["global"] is True
    assert headers["X-RateLimit-Global"] == "true"
    assert headers["X-RateLimit-Scope"] == "global"
    assert headers["Via"] == "1.1 google"


async def test_injected_errors_hit_the_next_n_calls_of_a_route(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Two injected 503s and one 429 answer the next three calls, then the route works again."""
    await control.inject_errors(503, count=2, method="GET", route="/guilds/{guild_id}")
    await control.inject_errors(
        429, count=1, method="GET", route="/guilds/{guild_id}", retry_after=0.25
    )
    path = f"/guilds/{guild['guild_id']}"
    first, body, _ = await api.call("GET", path)
    second, _, _ = await api.call("GET", path)
    assert (first, second) == (503, 503)
    assert body["code"] == 0
    status, body, headers = await api.call("GET", path)
    assert status == 429 and body["retry_after"] == 0.25 and headers["Via"] == "1.1 google"
    assert (await api.call("GET", path))[0] == 200
    assert (await api.call("GET", "/users/@me"))[0] == 200
    assert (await control.faults())["errors"] == []


async def test_unknown_routes_are_404_json(api: Api) -> None:
    """A route the sandbox does not know is 404 with Discord's body."""
    status, body, headers = await api.call("GET", "/nope")
    assert status == 404 and body == {"message": "404: Not Found", "code": 0}
    assert headers["Content-Type"] == "application/json"


async def test_members_list_and_get_carry_no_voice_state(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """GET members returns member objects sorted by id, with a limit."""
    gid = guild["guild_id"]
    await control.add_member(gid, "one")
    status, body, _ = await api.call("GET", f"/guilds/{gid}/members?limit=1000")
    assert status == 200
    assert [m["user"]["id"] for m in body] == sorted((m["user"]["id"] for m in body), key=int)
    assert len(body) == 3 and all("channel_id" not in m for m in body)
    status, one, _ = await api.call("GET", f"/guilds/{gid}/members?limit=1")
    assert status == 200 and len(one) == 1


async def test_command_put_reply_has_type_and_id(api: Api, sandbox, guild: dict) -> None:
    """The bulk-overwrite reply echoes each command with `id`, `type` and `guild_id`."""
    app = sandbox.bot_user_id
    cmds = [{"name": "register", "description": "link", "options": []}]
    status, body, _ = await api.call(
        "PUT", f"/applications/{app}/guilds/{guild['guild_id']}/commands", cmds
    )
    assert status == 200
    assert body[0]["type"] == 1 and body[0]["id"] and body[0]["guild_id"] == guild["guild_id"]
    _, again, _ = await api.call(
        "PUT", f"/applications/{app}/guilds/{guild['guild_id']}/commands", cmds
    )
    assert again[0]["id"] == body[0]["id"]
    status, _, _ = await api.call("GET", "/applications/1/commands")
    assert status == 403


async def test_soundboard_default_sounds_is_an_empty_list(api: Api) -> None:
    """py-cord waits for this route before on_ready; it answers []."""
    status, body, _ = await api.call("GET", "/soundboard-default-sounds")
    assert (status, body) == (200, [])


async def test_interaction_callback_defer_then_follow_up(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """A urlencoded defer gets 200 JSON, a second ack 40060, and the follow-up is the reply."""
    gw = await gateway_connect()
    await gw.identify()
    app = guild["bot_user_id"]
    await api.call(
        "PUT",
        f"/applications/{app}/guilds/{guild['guild_id']}/commands",
        [{"name": "ping", "description": "p"}],
    )
    run = asyncio.create_task(control.run_command(guild["guild_id"], guild["owner_id"], "ping"))
    interaction = await gw.dispatch("INTERACTION_CREATE")
    assert interaction["guild_id"] == guild["guild_id"] and interaction["data"]["name"] == "ping"
    callback = (
        f"{api.base}/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"
    )
    form = {"payload_json": json.dumps({"type": 5, "data": {"flags": 64}})}
    async with api.http.post(callback, params={"with_response": "true"}, data=form) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        body = await response.json()
    assert body["interaction"]["response_message_loading"] is True
    assert body["interaction"]["response_message_ephemeral"] is True
    async with api.http.post(callback, params={"with_response": "true"}, data=form) as response:
        assert response.status == 400
        assert (await response.json())["code"] == 40060
    multipart = aiohttp.FormData()
    multipart.add_field("payload_json", json.dumps({"content": "done", "flags": 64}))
    follow_up = f"{api.base}/api/v10/webhooks/{app}/{interaction['token']}"
    async with api.http.post(follow_up, params={"wait": "1"}, data=multipart) as response:
        assert response.status == 200
        message = await response.json()
    assert message["content"] == "done"
    reply = await run
    assert reply["content"] == "done" and reply["ephemeral"] is True and reply["deferred"] is True


async def test_unknown_and_expired_interactions_are_10062(gateway_connect) -> None:
    """A callback for an unknown id, or after the 3 s window, is 404 / 10062."""
    clock = FakeClock()
    server = DiscordSandbox(bot_token=TOKEN, clock=clock)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, DiscordSandboxClient(server.url) as control:
            api = Api(http=http, base=server.url)
            guild = await control.create_guild("Expiry")
            gw = await gateway_connect(server)
            await gw.identify()
            await api.call(
                "PUT",
                f"/applications/{guild['bot_user_id']}/guilds/{guild['guild_id']}/commands",
                [{"name": "ping", "description": "p"}],
            )
            run = asyncio.create_task(
                control.run_command(guild["guild_id"], guild["owner_id"], "ping", reply_timeout=0.5)
            )
            interaction = await gw.dispatch("INTERACTION_CREATE")
            unknown = f"{server.url}/api/v10/interactions/1/{interaction['token']}/callback"
            async with http.post(unknown, data={"payload_json": '{"type": 4}'}) as response:
                assert response.status == 404
                assert (await response.json())["code"] == 10062
            clock.now += 3.5
            callback = (
                f"{server.url}/api/v10/interactions/{interaction['id']}/"
                f"{interaction['token']}/callback"
            )
            async with http.post(
                callback, data={"payload_json": '{"type": 4, "data": {"content": "late"}}'}
            ) as response:
                assert response.status == 404
                assert (await response.json())["code"] == 10062
            with pytest.raises(SandboxError) as timed_out:
                await run
            assert timed_out.value.status == 504
    finally:
        await server.stop()


async def test_deferred_reply_by_editing_original(
    api: Api, control: DiscordSandboxClient, guild: dict, gateway_connect
) -> None:
    """After a JSON defer, PATCH @original is the final reply; DELETE @original is 204."""
    gw = await gateway_connect()
    await gw.identify()
    app = guild["bot_user_id"]
    await api.call("PUT", f"/applications/{app}/commands", [{"name": "slow", "description": "s"}])
    run = asyncio.create_task(control.run_command(guild["guild_id"], guild["owner_id"], "slow"))
    interaction = await gw.dispatch("INTERACTION_CREATE")
    token = interaction["token"]
    status, body, _ = await api.call(
        "POST", f"/interactions/{interaction['id']}/{token}/callback", {"type": 5}, token=None
    )
    assert status == 204 and body is None
    original = f"/webhooks/{app}/{token}/messages/@original"
    status, edited, _ = await api.call("PATCH", original, {"content": "ready"}, token=None)
    assert status == 200 and edited["content"] == "ready"
    reply = await run
    assert (reply["content"], reply["ephemeral"], reply["deferred"]) == ("ready", False, True)
    assert (await api.call("DELETE", original, token=None))[0] == 204
    status, error, _ = await api.call("POST", f"/webhooks/{app}/nope", {"content": "x"}, token=None)
    assert (status, error["code"]) == (404, 10015)
