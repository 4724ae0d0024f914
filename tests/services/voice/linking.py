"""Helpers of the verified-linking tests: /register in faceit_oauth mode, its link button, and
the sign-in through the registry's link page and the FACEIT sandbox, as a browser does it."""

from __future__ import annotations

from typing import Any

from tests.services.registry.link_browser import Page, browser
from tests.services.voice.system import VoiceSystem


def link_button(reply: dict[str, Any]) -> dict[str, Any]:
    """The one button of the reply's one action row."""
    (row,) = reply["messages"][0]["components"]
    assert row["type"] == 1
    (button,) = row["components"]
    return dict(button)


async def register(system: VoiceSystem, user_id: int) -> dict[str, Any]:
    """/register (faceit_oauth mode) as the member; the final reply."""
    return await system.control.run_command(system.guild_id, user_id, "register")


async def sign_in(url: str, player_id: str) -> Page:
    """Follow the link page and FACEIT's sign-in as `player_id`; the result page."""
    async with browser() as person:
        page = await person.link(url, player_id)
    assert page.status == 200, page.html
    return page


async def register_and_sign_in(system: VoiceSystem, user_id: int, player_id: str) -> dict[str, Any]:
    """/register, then the whole sign-in with the button's URL; the /register reply."""
    reply = await register(system, user_id)
    await sign_in(link_button(reply)["url"], player_id)
    return reply


def current_reply(system: VoiceSystem, reply: dict[str, Any]) -> dict[str, Any]:
    """The /register reply as it stands now (after edits), from the sandbox's state."""
    interaction = system.discord.state.interactions[int(reply["interaction_id"])]
    return dict(interaction.messages[0])


def fields(embed: dict[str, Any]) -> dict[str, str]:
    """An embed's fields by name."""
    return {field["name"]: field["value"] for field in embed.get("fields", [])}
