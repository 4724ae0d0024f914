"""Interaction responses: the callback, then follow-ups and edits through the webhook token."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.config import SandboxConfig
from sandbox.discord.parsers import read_payload, snowflake
from sandbox.discord.responses import DiscordError, invalid_form, json_response, unknown
from sandbox.discord.state import Interaction, SandboxState, now_iso

log = logging.getLogger(__name__)

EPHEMERAL = 1 << 6
LOADING = 1 << 7
"""The flag of a deferred response's "thinking" message until it is edited."""
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE = 6
UPDATE_MESSAGE = 7


class InteractionRoutes:
    """POST /interactions/{id}/{token}/callback and the /webhooks/{app}/{token} message routes."""

    def __init__(
        self,
        state: SandboxState,
        config: SandboxConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._config = config
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the API prefix."""
        message = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
        return [
            web.post(
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self.interaction_callback,
            ),
            web.post("/webhooks/{webhook_id}/{webhook_token}", self.execute_webhook),
            web.get(message, self.get_webhook_message),
            web.patch(message, self.edit_webhook_message),
            web.delete(message, self.delete_webhook_message),
        ]

    async def interaction_callback(self, request: web.Request) -> web.Response:
        """POST /interactions/{id}/{token}/callback: the first response, within 3 s."""
        interaction = self._interaction(
            snowflake(request.match_info["interaction_id"], "interaction_id"),
            request.match_info["interaction_token"],
        )
        body = await read_payload(request)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if self._clock() - interaction.created_at > self._config.interaction_ack_timeout:
            raise unknown("interaction", 10062)
        response_type = body.get("type")
        if response_type not in (
            CHANNEL_MESSAGE,
            DEFERRED_CHANNEL_MESSAGE,
            DEFERRED_UPDATE,
            UPDATE_MESSAGE,
        ):
            raise invalid_form("type", "BASE_TYPE_CHOICES", "Value must be one of (4, 5, 6, 7).")
        data = body.get("data") or {}
        if response_type in (DEFERRED_UPDATE, UPDATE_MESSAGE) and interaction.source is None:
            raise invalid_form(
                "type",
                "INTERACTION_CALLBACK_TYPE_INVALID",
                "Only valid for component interactions.",
            )
        interaction.acknowledged = True
        if response_type in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            message_id = self._update_source(interaction, response_type, data)
        else:
            interaction.ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
            message_id = self._state.new_id()
        if response_type == CHANNEL_MESSAGE:
            self._add_message(interaction, data, message_id)
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            interaction.deferred = True
            self._add_placeholder(interaction, message_id)
        log.info("interaction %s acknowledged with type %s", interaction.id, response_type)
        if request.query.get("with_response", "").lower() != "true":
            return web.Response(status=204)
        return json_response(
            {
                "interaction": {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "response_message_id": str(message_id),
                    "response_message_loading": response_type == DEFERRED_CHANNEL_MESSAGE,
                    "response_message_ephemeral": interaction.ephemeral,
                },
                "resource": {"type": response_type},
            }
        )

    def _update_source(
        self, interaction: Interaction, response_type: int, data: dict[str, Any]
    ) -> int:
        """UPDATE_MESSAGE edits the clicked message now; DEFERRED_UPDATE lets a later edit of
        `@original` do it (the clicked message is the interaction's original, its flags kept)."""
        source = interaction.source
        assert source is not None
        interaction.ephemeral = bool(source["flags"] & EPHEMERAL)
        interaction.messages.insert(0, source)
        if response_type == UPDATE_MESSAGE:
            self._edit_message(interaction, source, data)
        else:
            interaction.deferred = True
        return int(source["id"])

    async def execute_webhook(self, request: web.Request) -> web.Response:
        """POST /webhooks/{app}/{token}: an interaction follow-up.

        The first one after a deferred response edits the "thinking" message and keeps its
        flags, ignoring its own (Discord's "Followup Messages"); later ones are new messages.
        """
        interaction = self._webhook_interaction(request)
        body = await read_payload(request)
        if not (body.get("content") or body.get("embeds") or body.get("components")):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        thinking = interaction.messages[0] if interaction.messages else None
        if thinking is not None and thinking["flags"] & LOADING:
            message = self._edit_message(interaction, thinking, body)
        else:
            message = self._add_message(interaction, body, self._state.new_id())
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message)
        return web.Response(status=204)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self._webhook_interaction(request)
        return json_response(self._webhook_message(interaction, request.match_info["message_id"]))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}: edits (and completes a defer)."""
        interaction = self._webhook_interaction(request)
        body = await read_payload(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        return json_response(self._edit_message(interaction, message, body))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        interaction.messages.remove(message)
        return web.Response(status=204)

    def _interaction(self, interaction_id: int, token: str) -> Interaction:
        interaction = self._state.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise unknown("interaction", 10062)
        return interaction

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        webhook_id = snowflake(request.match_info["webhook_id"], "webhook_id")
        interaction = self._state.interaction_by_token(request.match_info["webhook_token"])
        if webhook_id != self._state.bot.id or interaction is None or not interaction.acknowledged:
            raise unknown("Webhook", 10015)
        if self._clock() - interaction.created_at > self._config.interaction_token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    def _webhook_message(self, interaction: Interaction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            if interaction.messages:
                return interaction.messages[0]
            if interaction.deferred:
                return self._add_placeholder(interaction, self._state.new_id())
        for message in interaction.messages:
            if message["id"] == message_id:
                return message
        raise unknown("Message", 10008)

    def _add_message(
        self, interaction: Interaction, data: dict[str, Any], message_id: int
    ) -> dict[str, Any]:
        message = self._new_message(interaction, data, message_id)
        interaction.messages.append(message)
        self._complete(interaction, message)
        return message

    def _add_placeholder(self, interaction: Interaction, message_id: int) -> dict[str, Any]:
        """The "thinking..." message a deferred response shows until it is edited."""
        message = self._new_message(
            interaction, {"flags": EPHEMERAL if interaction.ephemeral else 0}, message_id
        )
        message["flags"] |= LOADING
        interaction.messages.insert(0, message)
        return message

    def _new_message(
        self, interaction: Interaction, body: dict[str, Any], message_id: int
    ) -> dict[str, Any]:
        return payloads.message(
            self._state,
            message_id=message_id,
            channel_id=interaction.channel_id,
            body=body,
            application_id=self._state.bot.id,
            interaction_id=interaction.id,
        )

    def _edit_message(
        self, interaction: Interaction, message: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit content, embeds and components; the flags stay (an edit cannot change them)."""
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = now_iso()
        self._complete(interaction, message)
        return message

    def _complete(self, interaction: Interaction, message: dict[str, Any]) -> None:
        """The first final message is the reply `POST /_sandbox/interactions` waits for."""
        if not interaction.reply.done():
            interaction.reply.set_result(
                {
                    "content": message["content"],
                    "embeds": message["embeds"],
                    "components": message["components"],
                    "ephemeral": bool(message["flags"] & EPHEMERAL),
                    "deferred": interaction.deferred,
                    "message_id": message["id"],
                    "interaction_id": str(interaction.id),
                }
            )
