"""Messages in text channels as Discord has them: create, edit, fetch, history, limits, rights."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from sandbox.discord import DiscordSandbox, DiscordSandboxClient, SandboxConfig
from sandbox.discord import permissions as p
from sandbox.discord.ratelimit import RouteLimit
from tests.sandbox.discord.helpers import Api, running_bot
from tests.support import eventually

MESSAGES = "/channels/{}/messages"


async def text_channel(
    control: DiscordSandboxClient, guild: dict[str, Any], **bot_overwrite: int
) -> str:
    """A text channel; with `bot_overwrite` (allow/deny), an overwrite for the bot's role."""
    overwrites = (
        [{"id": guild["bot_role_id"], "type": 0, **bot_overwrite}] if bot_overwrite else None
    )
    created = await control.create_channel(
        guild["guild_id"], "feed", type=0, permission_overwrites=overwrites
    )
    return str(created["channel_id"])


def embed(**fields: Any) -> dict[str, Any]:
    return {"title": "Match", "description": "Live", **fields}


async def test_create_edit_fetch_and_control_listing(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """A message is created, edited (edited_timestamp set), fetched, and listed oldest first."""
    channel = await text_channel(control, guild)
    status, first, _ = await api.call("POST", MESSAGES.format(channel), {"embeds": [embed()]})
    assert status == 200 and first["author"]["id"] == guild["bot_user_id"]
    assert first["edited_timestamp"] is None and first["channel_id"] == channel
    _, second, _ = await api.call("POST", MESSAGES.format(channel), {"content": "two"})
    status, edited, _ = await api.call(
        "PATCH", f"{MESSAGES.format(channel)}/{first['id']}", {"embeds": [embed(title="Done")]}
    )
    assert status == 200 and edited["embeds"][0]["title"] == "Done"
    assert edited["edited_timestamp"] is not None
    status, fetched, _ = await api.call("GET", f"{MESSAGES.format(channel)}/{first['id']}")
    assert fetched["embeds"][0]["title"] == "Done"
    listed = await control.channel_messages(channel)
    assert [m["id"] for m in listed] == [first["id"], second["id"]]
    assert set(listed[0]) == {
        "id",
        "author_id",
        "content",
        "embeds",
        "components",
        "edited_timestamp",
    }


async def test_history_pages_newest_first_with_before_and_after(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """GET messages answers newest first; limit, before and after pick the page; limit 1-100."""
    channel = await text_channel(control, guild)
    ids = []
    for _ in range(4):
        _, message, _ = await api.call("POST", MESSAGES.format(channel), {"content": "x"})
        ids.append(message["id"])
    _, page, _ = await api.call("GET", MESSAGES.format(channel) + "?limit=2")
    assert [m["id"] for m in page] == [ids[3], ids[2]]
    _, page, _ = await api.call("GET", MESSAGES.format(channel) + f"?before={ids[2]}")
    assert [m["id"] for m in page] == [ids[1], ids[0]]
    _, page, _ = await api.call("GET", MESSAGES.format(channel) + f"?after={ids[0]}&limit=2")
    assert [m["id"] for m in page] == [ids[2], ids[1]]
    status, body, _ = await api.call("GET", MESSAGES.format(channel) + "?limit=101")
    assert (status, body["code"]) == (400, 50035)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"embeds": [embed(title="t" * 257)]}, "embeds.0.title"),
        ({"embeds": [embed(description="d" * 4097)]}, "embeds.0.description"),
        ({"embeds": [embed(fields=[{"name": "n", "value": "v"}] * 26)]}, "embeds.0.fields"),
        ({"embeds": [embed(fields=[{"name": "n" * 257, "value": "v"}])]}, "embeds.0.fields.0.name"),
        (
            {"embeds": [embed(fields=[{"name": "n", "value": "v" * 1025}])]},
            "embeds.0.fields.0.value",
        ),
        ({"embeds": [embed(url="javascript:alert(1)")]}, "embeds.0.url"),
        (
            {
                "embeds": [
                    embed(description="d" * 4000, fields=[{"name": "n", "value": "v" * 1000}] * 2)
                ]
            },
            "embeds",
        ),
        ({"components": [{"type": 2, "style": 1, "custom_id": "a"}]}, "components.0"),
        (
            {"components": [{"type": 1, "components": [{"type": 2, "style": 5, "label": "x"}]}]},
            "components.0.components.0.url",
        ),
        ({"content": "x", "nonce": "n" * 26}, "nonce"),
    ],
)
async def test_invalid_bodies_get_50035_naming_the_field(
    api: Api, control: DiscordSandboxClient, guild: dict, body: dict, field: str
) -> None:
    """Discord's limits: content 2000, title 256, description 4096, 25 fields of 256/1024,
    6000 in all, http(s) URLs, rows of components, link buttons with a URL, nonce 25."""
    channel = await text_channel(control, guild)
    status, answer, _ = await api.call("POST", MESSAGES.format(channel), body)
    assert (status, answer["code"]) == (400, 50035)
    assert field in answer["errors"]
    assert await control.channel_messages(channel) == []


async def test_empty_message_and_category_are_refused(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """An empty message is 50006; a category holds no messages (50008)."""
    channel = await text_channel(control, guild)
    status, body, _ = await api.call("POST", MESSAGES.format(channel), {"content": ""})
    assert (status, body["code"]) == (400, 50006)
    category = await control.create_channel(guild["guild_id"], "cat", type=4)
    status, body, _ = await api.call(
        "POST", MESSAGES.format(category["channel_id"]), {"content": "x"}
    )
    assert (status, body["code"]) == (400, 50008)


@pytest.mark.parametrize(
    ("deny", "body", "code"),
    [
        (p.VIEW_CHANNEL, {"content": "x"}, 50001),
        (p.SEND_MESSAGES, {"content": "x"}, 50013),
        (p.EMBED_LINKS, {"embeds": [{"title": "x"}]}, 50013),
    ],
)
async def test_channel_overwrites_decide_who_may_post(
    api: Api, control: DiscordSandboxClient, guild: dict, deny: int, body: dict, code: int
) -> None:
    """A channel overwrite denying VIEW_CHANNEL, SEND_MESSAGES or EMBED_LINKS (for an embed)
    refuses the post with 403."""
    channel = await text_channel(control, guild, allow=0, deny=deny)
    status, answer, _ = await api.call("POST", MESSAGES.format(channel), body)
    assert (status, answer["code"]) == (403, code)
    assert await control.channel_messages(channel) == []


async def test_without_read_message_history_nothing_is_read_back(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """Denied READ_MESSAGE_HISTORY: the history is empty and one message is 403."""
    channel = await text_channel(control, guild, allow=0, deny=p.READ_MESSAGE_HISTORY)
    _, message, _ = await api.call("POST", MESSAGES.format(channel), {"content": "x"})
    _, page, _ = await api.call("GET", MESSAGES.format(channel))
    assert page == []
    status, body, _ = await api.call("GET", f"{MESSAGES.format(channel)}/{message['id']}")
    assert (status, body["code"]) == (403, 50013)


async def test_enforced_nonce_answers_the_earlier_message(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """A repeat with the same nonce and enforce_nonce gets the first message back, not a new one;
    without enforce_nonce it is a new message."""
    channel = await text_channel(control, guild)
    body = {"content": "x", "nonce": "feed-1", "enforce_nonce": True}
    _, first, _ = await api.call("POST", MESSAGES.format(channel), body)
    _, again, _ = await api.call("POST", MESSAGES.format(channel), body)
    assert again["id"] == first["id"] and first["nonce"] == "feed-1"
    _, other, _ = await api.call("POST", MESSAGES.format(channel), {**body, "enforce_nonce": False})
    assert other["id"] != first["id"]
    assert len(await control.channel_messages(channel)) == 2


async def test_unknown_message_and_foreign_channel_message(
    api: Api, control: DiscordSandboxClient, guild: dict
) -> None:
    """An unknown message id is 404 / 10008, also when it is another channel's."""
    channel = await text_channel(control, guild)
    other = await text_channel(control, guild)
    _, message, _ = await api.call("POST", MESSAGES.format(other), {"content": "x"})
    status, body, _ = await api.call(
        "PATCH", f"{MESSAGES.format(channel)}/{message['id']}", {"content": "y"}
    )
    assert (status, body["code"]) == (404, 10008)


async def test_messages_have_a_bucket_per_channel(
    api: Api, control: DiscordSandboxClient, guild: dict, config: SandboxConfig
) -> None:
    """Five posts per 5 s per channel: the sixth is 429 with Via; another channel is not held."""
    assert config.route_limits[("POST", "/channels/{channel_id}/messages")] == RouteLimit(5, 5.0)
    busy = await text_channel(control, guild)
    quiet = await text_channel(control, guild)
    for _ in range(5):
        status, _, _ = await api.call("POST", MESSAGES.format(busy), {"content": "x"})
        assert status == 200
    status, body, headers = await api.call("POST", MESSAGES.format(busy), {"content": "x"})
    assert status == 429 and body["retry_after"] > 0 and "Via" in headers
    status, _, _ = await api.call("POST", MESSAGES.format(quiet), {"content": "x"})
    assert status == 200


async def test_pycord_sends_edits_and_reads_messages_and_gets_the_events(
    sandbox: DiscordSandbox, control: DiscordSandboxClient, guild: dict
) -> None:
    """Unmodified py-cord posts an embed with a nonce, edits it, reads history, and receives
    MESSAGE_CREATE and MESSAGE_UPDATE (its message cache follows)."""
    channel_id = int(await text_channel(control, guild))
    async with running_bot(sandbox.url, guild_ids=[int(guild["guild_id"])]) as bot:
        channel = bot.get_partial_messageable(channel_id)
        sent = await channel.send(
            embed=discord.Embed(title="Match", description="Live"), nonce="n1", enforce_nonce=True
        )
        await sent.edit(embed=discord.Embed(title="Match", description="Finished"))
        history = [m async for m in channel.history(limit=10)]
        assert [m.id for m in history] == [sent.id]
        assert history[0].embeds[0].description == "Finished"

        async def cached() -> bool:
            message = bot.get_message(sent.id)
            return message is not None and message.edited_at is not None

        await eventually(cached, what="py-cord to see MESSAGE_CREATE and MESSAGE_UPDATE")
