"""Verified linking on the voice side, end to end: /register's sign-in link, the watch of the
registry's link changes (access, moves, the reply edited), restarts of either side, /whoami."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faceitvoice.v1 import registry_service_pb2 as registry_pb

from services.voice.store import VoiceStore
from tests.services.voice.linking import (
    current_reply,
    fields,
    link_button,
    register,
    register_and_sign_in,
    sign_in,
)
from tests.services.voice.system import VoiceSystem, match, voice_system
from tests.support import eventually

MATCH = "1-5a1c0f3e-8d6b-4c2a-9e7f-0b1d2c3e4f50"


@pytest.fixture
async def system(fresh_database: str) -> AsyncIterator[VoiceSystem]:
    """Sandboxes, a faceit_oauth registry and database; voice not yet started."""
    async with voice_system(fresh_database, link_verification="faceit_oauth") as running:
        yield running


async def player(system: VoiceSystem, name: str) -> tuple[int, str]:
    """A guild member and a FACEIT account of the same name, not linked: (user id, player id)."""
    user_id = await system.member(name)
    await system.faceit.create_player(name, player_id=f"p-{name}", skill_level=7)
    return user_id, f"p-{name}"


async def test_register_answers_ephemerally_with_a_sign_in_button(system: VoiceSystem) -> None:
    """/register has no option and answers, to the user alone, a link button (style 5) to the
    registry's /link/{state} page, saying when it expires."""
    await system.start_voice()
    alice, _ = await player(system, "alice")

    reply = await register(system, alice)

    commands = {c["name"]: c for c in await system.control.commands(system.guild_id)}
    assert not commands["register"].get("options")
    assert reply["ephemeral"] is True
    button = link_button(reply)
    assert button["type"] == 2 and button["style"] == 5
    base = f"http://127.0.0.1:{system.running_registry.http_port}/link/"
    assert button["url"].startswith(base) and len(button["url"]) > len(base) + 20
    assert "expires <t:" in reply["content"]


async def test_signing_in_edits_the_reply_gives_access_and_moves_the_player_in(
    system: VoiceSystem,
) -> None:
    """Completing the sign-in makes voice edit the /register reply to the verified profile, open
    the match's team channel to the player and move them in from the lobby, at once; the same
    change applied again changes nothing."""
    await system.start_voice()
    assert system.stub is not None and system.voice is not None
    alice, alice_fc = await player(system, "alice")
    await system.join_lobby(alice)
    await system.stub.OpenMatch(match(MATCH, 1, [alice_fc]))

    reply = await register_and_sign_in(system, alice, alice_fc)

    async def channel_of_alice() -> int | None:
        assert system.voice is not None
        seat = system.voice.cache.seat_of(alice)
        return seat.channel_id if seat is not None else None

    team = await eventually(channel_of_alice, what="alice's team channel")
    assert team is not None
    await system.wait_in(alice, team)
    assert str(alice) in (await system.control.channel_access(team))["connect"]

    async def edited() -> bool:
        return bool(current_reply(system, reply)["embeds"])

    await eventually(edited, what="the /register reply edited")
    message = current_reply(system, reply)
    assert message["components"] == []
    (embed,) = message["embeds"]
    assert embed["title"] == "FACEIT account linked"
    assert fields(embed)["Nickname"] == "alice"
    assert fields(embed)["Verified"].startswith("Yes: signed in with FACEIT <t:")
    assert fields(embed)["Your match"] == f"<#{team}>"

    link = (
        await system.registry.GetPlayerLink(registry_pb.GetPlayerLinkRequest(discord_user_id=alice))
    ).link
    after = (await system.control.audit_log())[-1]["seq"]
    await system.voice.commands.link_changed(
        registry_pb.LinkChange(kind=registry_pb.LinkChange.KIND_LINKED, link=link)
    )
    writes = [c for c in await system.control.audit_log(after=after) if c["method"] != "GET"]
    assert writes == []
    assert await system.voice_of(alice) == team


async def test_whoami_says_the_link_is_verified_and_when(system: VoiceSystem) -> None:
    """/whoami of a signed-in user says the link is verified, with the time of the sign-in."""
    await system.start_voice()
    assert system.voice is not None
    alice, alice_fc = await player(system, "alice")
    await register_and_sign_in(system, alice, alice_fc)
    link = (
        await system.registry.GetPlayerLink(registry_pb.GetPlayerLinkRequest(discord_user_id=alice))
    ).link

    reply = await system.control.run_command(system.guild_id, alice, "whoami")

    (embed,) = reply["embeds"]
    assert fields(embed)["Verified"] == (
        f"Yes: signed in with FACEIT <t:{link.verified_at.seconds}:f>"
    )


async def test_a_voice_restart_mid_way_loses_no_change(system: VoiceSystem) -> None:
    """A sign-in finished while voice is down is applied when it is back, resuming after the
    last change it had applied (that one is not applied again)."""
    service = await system.start_voice()
    assert system.stub is not None
    bob, bob_fc = await player(system, "bob")
    alice, alice_fc = await player(system, "alice")
    await register_and_sign_in(system, bob, bob_fc)
    store = VoiceStore(system.pool)

    async def applied_bob() -> bool:
        return service.link_watch.applied == 1

    await eventually(applied_bob, what="bob's link applied")
    saved = await store.link_sequence()
    await system.join_lobby(alice)
    await system.stub.OpenMatch(match(MATCH, 1, [alice_fc]))
    reply = await register(system, alice)
    await system.stop_voice()

    await sign_in(link_button(reply)["url"], alice_fc)
    restarted = await system.start_voice()

    async def moved_in() -> int | None:
        seat = restarted.cache.seat_of(alice)
        voice = await system.voice_of(alice)
        return voice if seat is not None and voice == seat.channel_id else None

    await eventually(moved_in, what="alice moved into her team channel")

    async def resumed_after_it() -> bool:  # saved once applied: the move may come first
        return restarted.link_watch.applied == 1

    await eventually(resumed_after_it, what="alice's change recorded as applied")
    assert saved > 0 and await store.link_sequence() > saved
    assert restarted.link_watch.applied == 1


async def test_a_registry_restart_under_an_open_stream_loses_no_change(
    system: VoiceSystem,
) -> None:
    """The watcher reconnects to a restarted registry and applies the change made meanwhile."""
    service = await system.start_voice(link_retry_s=0.05)
    assert system.stub is not None
    alice, alice_fc = await player(system, "alice")
    await system.join_lobby(alice)
    await system.stub.OpenMatch(match(MATCH, 1, [alice_fc]))
    reply = await register(system, alice)

    async def connected() -> bool:
        return service.link_watch.connections >= 1

    await eventually(connected, what="the watch connected")
    await system.running_registry.restart()
    await sign_in(link_button(reply)["url"], alice_fc)

    async def moved_in() -> bool:
        seat = service.cache.seat_of(alice)
        return seat is not None and await system.voice_of(alice) == seat.channel_id

    await eventually(moved_in, what="alice moved into her team channel")
    assert service.link_watch.connections >= 2


async def test_nickname_mode_keeps_register_with_a_nickname(fresh_database: str) -> None:
    """With LINK_VERIFICATION=nickname, /register takes the nickname and links at once."""
    async with voice_system(fresh_database, link_verification="nickname") as nickname:
        await nickname.start_voice()
        alice = await nickname.member("alice")
        await nickname.faceit.create_player("alice", player_id="p-alice", skill_level=7)

        reply = await nickname.control.run_command(
            nickname.guild_id, alice, "register", {"faceit_nickname": "alice"}
        )

        commands = {c["name"]: c for c in await nickname.control.commands(nickname.guild_id)}
    assert [o["name"] for o in commands["register"]["options"]] == ["faceit_nickname"]
    (embed,) = reply["embeds"]
    assert embed["title"] == "FACEIT account linked"
    assert fields(embed)["Nickname"] == "alice"


async def test_a_sequence_the_registry_never_issued_resyncs_and_watches_again(
    fresh_database: str,
) -> None:
    """A saved sequence the registry does not know (OUT_OF_RANGE, e.g. another registry
    database) makes voice resync its open matches from the registry and watch from the start."""
    async with voice_system(fresh_database, link_verification="nickname") as nickname:
        await nickname.start_voice()
        assert nickname.stub is not None
        ada = await nickname.member("ada")
        await nickname.join_lobby(ada)
        await nickname.stub.OpenMatch(match(MATCH, 1, ["p-ada"]))
        await nickname.stop_voice()
        await nickname.faceit.create_player("ada", player_id="p-ada", skill_level=7)
        await nickname.registry.LinkPlayer(
            registry_pb.LinkPlayerRequest(discord_user_id=ada, faceit_nickname="ada")
        )
        store = VoiceStore(nickname.pool)
        await store.save_link_sequence(1_000_000)

        service = await nickname.start_voice()

        async def moved_in() -> bool:
            seat = service.cache.seat_of(ada)
            return seat is not None and await nickname.voice_of(ada) == seat.channel_id

        await eventually(moved_in, what="ada moved into her team channel")

        async def watching_again() -> int:
            return service.link_watch.applied

        await eventually(watching_again, what="the watch from the start")
        assert 0 < await store.link_sequence() < 1_000_000
