"""Control of messages: what a text channel holds, as a test or the demo reads it."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord.control.parsing import channel_by_id
from sandbox.discord.messages import MessageStore
from sandbox.discord.responses import json_response
from sandbox.discord.state import SandboxState


class MessageControl:
    """GET /_sandbox/channels/{cid}/messages: every message, oldest first."""

    def __init__(self, state: SandboxState, store: MessageStore) -> None:
        self._state = state
        self._store = store

    def routes(self) -> list[web.RouteDef]:
        """These routes, without the /_sandbox prefix."""
        return [web.get("/channels/{channel_id}/messages", self.channel_messages)]

    async def channel_messages(self, request: web.Request) -> web.Response:
        """`[{"id", "author_id", "content", "embeds", "components", "edited_timestamp"}]`."""
        channel = channel_by_id(self._state, request.match_info["channel_id"])
        return json_response(
            [
                {
                    "id": str(m.id),
                    "author_id": str(m.author_id),
                    "content": m.content,
                    "embeds": m.embeds,
                    "components": m.components,
                    "edited_timestamp": m.edited_timestamp,
                }
                for m in self._store.of(channel.id)
            ]
        )
