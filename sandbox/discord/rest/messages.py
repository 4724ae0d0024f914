"""Channel messages: create (nonce, enforce_nonce), edit, fetch one, list a page of history."""

from __future__ import annotations

import logging

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord import permissions as perm
from sandbox.discord.gateway import GUILD_MESSAGES_INTENT, Gateway
from sandbox.discord.messages import (
    MessageStore,
    StoredMessage,
    message_object,
    page,
    page_query,
    parse_components,
    parse_content,
    parse_embeds,
    parse_nonce,
)
from sandbox.discord.parsers import read_object, snowflake
from sandbox.discord.responses import DiscordError, json_response, missing_permissions, unknown
from sandbox.discord.rest.lookups import bot_in, visible_channel
from sandbox.discord.state import CATEGORY, Channel, Guild, SandboxState, now_iso

log = logging.getLogger(__name__)

MESSAGES = "/channels/{channel_id}/messages"


class MessageRoutes:
    """/channels/{cid}/messages and /channels/{cid}/messages/{mid}, with Discord's checks."""

    def __init__(self, state: SandboxState, store: MessageStore, gateway: Gateway) -> None:
        self._state = state
        self._store = store
        self._gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        return [
            web.post(MESSAGES, self.create_message),
            web.get(MESSAGES, self.list_messages),
            web.get(MESSAGES + "/{message_id}", self.get_message),
            web.patch(MESSAGES + "/{message_id}", self.edit_message),
        ]

    def _text_channel(self, request: web.Request) -> tuple[Guild, Channel, int]:
        """The channel (visible to the bot, able to hold messages) and the bot's permissions."""
        guild, channel = visible_channel(self._state, request)
        if channel.type == CATEGORY:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        return guild, channel, bot_in(self._state, guild, channel)

    async def create_message(self, request: web.Request) -> web.Response:
        """POST: SEND_MESSAGES (and EMBED_LINKS for embeds); a repeated enforced nonce answers
        the earlier message; MESSAGE_CREATE."""
        guild, channel, perms = self._text_channel(request)
        body = await read_object(request)
        content = parse_content(body)
        embeds = parse_embeds(body)
        components = parse_components(body)
        nonce = parse_nonce(body)
        if not perms & perm.SEND_MESSAGES or (embeds and not perms & perm.EMBED_LINKS):
            raise missing_permissions()
        if not (content or embeds or components):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        bot_id = self._state.bot.id
        if body.get("enforce_nonce") and nonce is not None:
            earlier = self._store.with_nonce(channel.id, bot_id, nonce)
            if earlier is not None:
                log.info("message %s returned again for nonce %r", earlier.id, nonce)
                return json_response(message_object(self._state, earlier))
        message = StoredMessage(
            id=self._state.new_id(),
            channel_id=channel.id,
            guild_id=guild.id,
            author_id=bot_id,
            content=content or "",
            embeds=embeds or [],
            components=components or [],
            created=self._store.now(),
            nonce=nonce,
        )
        self._store.add(message)
        return self._announce("MESSAGE_CREATE", guild, message)

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH: only the author's own message; content, embeds, components; MESSAGE_UPDATE."""
        guild, channel, perms = self._text_channel(request)
        message = self._message(channel, request)
        body = await read_object(request)
        if message.author_id != self._state.bot.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        content = parse_content(body)
        embeds = parse_embeds(body)
        components = parse_components(body)
        if embeds and not perms & perm.EMBED_LINKS:
            raise missing_permissions()
        content = message.content if content is None else content
        embeds = message.embeds if embeds is None else embeds
        components = message.components if components is None else components
        if not (content or embeds or components):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        message.content, message.embeds, message.components = content, embeds, components
        message.edited_timestamp = now_iso()
        return self._announce("MESSAGE_UPDATE", guild, message)

    async def get_message(self, request: web.Request) -> web.Response:
        """GET one: needs READ_MESSAGE_HISTORY (403 / 50013 without), 404 / 10008 if unknown."""
        _, channel, perms = self._text_channel(request)
        if not perms & perm.READ_MESSAGE_HISTORY:
            raise missing_permissions()
        return json_response(message_object(self._state, self._message(channel, request)))

    async def list_messages(self, request: web.Request) -> web.Response:
        """GET a page, newest first; without READ_MESSAGE_HISTORY no message is returned."""
        _, channel, perms = self._text_channel(request)
        limit, before, after, around = page_query(request.query)
        if not perms & perm.READ_MESSAGE_HISTORY:
            return json_response([])
        chosen = page(self._store.of(channel.id), limit, before, after, around)
        return json_response([message_object(self._state, m) for m in chosen])

    def _message(self, channel: Channel, request: web.Request) -> StoredMessage:
        message_id = snowflake(request.match_info["message_id"], "message_id")
        message = self._store.get(channel.id, message_id)
        if message is None:
            raise unknown("Message", 10008)
        return message

    def _announce(self, event: str, guild: Guild, message: StoredMessage) -> web.Response:
        """Dispatch the message event (with the author's guild member) and answer the message."""
        data = message_object(self._state, message)
        member = payloads.member(self._state, guild.members[message.author_id], with_user=False)
        self._gateway.dispatch(event, {**data, "member": member}, intent=GUILD_MESSAGES_INTENT)
        return json_response(data)
