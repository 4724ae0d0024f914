"""Messages in text channels: the store, Discord's validation of content, embeds and components,
and the message objects py-cord parses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.discord import payloads
from sandbox.discord.parsers import snowflake
from sandbox.discord.responses import DiscordError, invalid_form
from sandbox.discord.state import SandboxState, now_iso

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_FIELDS = 25
MAX_NONCE = 25
NONCE_WINDOW_S = 5 * 60.0
"""How long `enforce_nonce` finds an earlier message with the same nonce ("a few minutes")."""
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
FIELD_LIMITS = {"name": 256, "value": 1024}
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
ACTION_ROW, BUTTON = 1, 2
SELECTS = frozenset({3, 5, 6, 7, 8})
LINK_STYLE = 5
BUTTON_STYLES = frozenset({1, 2, 3, 4, 5})


@dataclass
class StoredMessage:
    """One message in a channel, as the bot sent and last edited it."""

    id: int
    channel_id: int
    guild_id: int
    author_id: int
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    created: float
    timestamp: str = field(default_factory=now_iso)
    edited_timestamp: str | None = None
    nonce: str | int | None = None


class MessageStore:
    """Every channel's messages, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_channel: dict[int, list[StoredMessage]] = {}
        self._clock = clock

    def add(self, message: StoredMessage) -> None:
        """Keep a new message at the end of its channel."""
        self._by_channel.setdefault(message.channel_id, []).append(message)

    def of(self, channel_id: int) -> list[StoredMessage]:
        """The channel's messages, oldest first."""
        return list(self._by_channel.get(channel_id, ()))

    def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """One message of the channel, or None."""
        return next((m for m in self._by_channel.get(channel_id, ()) if m.id == message_id), None)

    def with_nonce(self, channel_id: int, author_id: int, nonce: str | int) -> StoredMessage | None:
        """A recent message of the author with this nonce (what `enforce_nonce` returns)."""
        now = self._clock()
        for message in reversed(self._by_channel.get(channel_id, ())):
            if now - message.created > NONCE_WINDOW_S:
                return None
            if message.author_id == author_id and message.nonce == nonce:
                return message
        return None

    def now(self) -> float:
        """The store's clock (for `StoredMessage.created`)."""
        return self._clock()


def message_object(state: SandboxState, message: StoredMessage) -> dict[str, Any]:
    """The message object Discord answers and dispatches (guild_id added for gateway events)."""
    data: dict[str, Any] = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "guild_id": str(message.guild_id),
        "type": 0,
        "content": message.content,
        "author": payloads.user(state.users[message.author_id]),
        "attachments": [],
        "embeds": message.embeds,
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": message.timestamp,
        "edited_timestamp": message.edited_timestamp,
        "flags": 0,
        "components": message.components,
    }
    if message.nonce is not None:
        data["nonce"] = message.nonce
    return data


def parse_nonce(body: dict[str, Any]) -> str | int | None:
    """`nonce`: an integer or a string of at most 25 characters."""
    nonce = body.get("nonce")
    if nonce is None:
        return None
    if isinstance(nonce, bool) or not isinstance(nonce, int | str):
        raise invalid_form("nonce", "BASE_TYPE_STRING", "Must be a string or an integer.")
    if isinstance(nonce, str) and len(nonce) > MAX_NONCE:
        raise invalid_form(
            "nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE} or fewer in length."
        )
    return nonce


def parse_content(body: dict[str, Any]) -> str | None:
    """`content` (at most 2000 characters), or None when absent."""
    if body.get("content") is None:
        return None
    content = body["content"]
    if not isinstance(content, str):
        raise invalid_form("content", "BASE_TYPE_STRING", "Must be a string.")
    if len(content) > MAX_CONTENT:
        raise invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    return content


def _text(value: Any, where: str, limit: int, *, required: bool = False) -> int:
    """The length of an embed text (50035 when it is no string, empty when required, too long)."""
    if value is None:
        if required:
            raise invalid_form(where, "BASE_TYPE_REQUIRED", "This field is required")
        return 0
    if not isinstance(value, str):
        raise invalid_form(where, "BASE_TYPE_STRING", "Must be a string.")
    if required and not value.strip():
        raise invalid_form(where, "BASE_TYPE_REQUIRED", "This field is required")
    if len(value) > limit:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def _url(value: Any, where: str) -> None:
    if value is None:
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_form(where, "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def parse_embeds(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """`embeds` with Discord's limits: 10 embeds; title 256, description 4096, 25 fields (name
    256, value 1024), footer 2048, author 256; 6000 characters in all; http(s) URLs."""
    if body.get("embeds") is None:
        return None
    embeds = body["embeds"]
    if not isinstance(embeds, list):
        raise invalid_form("embeds", "BASE_TYPE_LIST", "Must be a list.")
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form(
            "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
        )
    total = 0
    for index, embed in enumerate(embeds):
        where = f"embeds.{index}"
        if not isinstance(embed, dict):
            raise invalid_form(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        for key, limit in EMBED_TEXT_LIMITS.items():
            total += _text(embed.get(key), f"{where}.{key}", limit)
        _url(embed.get("url"), f"{where}.url")
        color = embed.get("color")
        if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
            raise invalid_form(
                f"{where}.color", "NUMBER_TYPE_MAX", "int value should be <= 16777215."
            )
        total += _parts(embed, where)
    if total > MAX_EMBED_TOTAL:
        raise invalid_form(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )
    return embeds


def _parts(embed: dict[str, Any], where: str) -> int:
    """The characters of an embed's fields, footer and author, each checked."""
    total = 0
    fields = embed.get("fields") or []
    if not isinstance(fields, list):
        raise invalid_form(f"{where}.fields", "BASE_TYPE_LIST", "Must be a list.")
    if len(fields) > MAX_FIELDS:
        raise invalid_form(
            f"{where}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FIELDS} or fewer in length."
        )
    for number, item in enumerate(fields):
        at = f"{where}.fields.{number}"
        if not isinstance(item, dict):
            raise invalid_form(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        for key, limit in FIELD_LIMITS.items():
            total += _text(item.get(key), f"{at}.{key}", limit, required=True)
    footer = embed.get("footer")
    if isinstance(footer, dict):
        total += _text(footer.get("text"), f"{where}.footer.text", FOOTER_LIMIT, required=True)
    author = embed.get("author")
    if isinstance(author, dict):
        total += _text(author.get("name"), f"{where}.author.name", AUTHOR_LIMIT, required=True)
        _url(author.get("url"), f"{where}.author.url")
    return total


def parse_components(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """`components`: up to 5 action rows of up to 5 buttons (or one select menu each)."""
    if body.get("components") is None:
        return None
    rows = body["components"]
    if not isinstance(rows, list):
        raise invalid_form("components", "BASE_TYPE_LIST", "Must be a list.")
    if len(rows) > MAX_ROWS:
        raise invalid_form(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length."
        )
    custom_ids: set[str] = set()
    for index, row in enumerate(rows):
        where = f"components.{index}"
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            raise invalid_form(where, "UNION_TYPE_CHOICES", 'Value of field "type" must be 1.')
        children = row.get("components")
        if not isinstance(children, list) or not children:
            raise invalid_form(
                f"{where}.components", "BASE_TYPE_REQUIRED", "This field is required"
            )
        if len(children) > MAX_BUTTONS_PER_ROW or (
            len(children) > 1 and any(c.get("type") in SELECTS for c in children)
        ):
            raise invalid_form(
                f"{where}.components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The row is too wide."
            )
        for number, child in enumerate(children):
            _component(child, f"{where}.components.{number}", custom_ids)
    return rows


def _component(child: Any, where: str, custom_ids: set[str]) -> None:
    if not isinstance(child, dict) or child.get("type") not in {BUTTON, *SELECTS}:
        raise invalid_form(where, "UNION_TYPE_CHOICES", "Value must be a button or a select.")
    if child["type"] == BUTTON:
        style = child.get("style")
        if style not in BUTTON_STYLES:
            raise invalid_form(f"{where}.style", "BASE_TYPE_CHOICES", "Value must be 1 to 5.")
        _text(child.get("label"), f"{where}.label", 80)
        if style == LINK_STYLE:
            if child.get("custom_id") is not None:
                raise invalid_form(
                    f"{where}.custom_id", "BUTTON_LINK_CUSTOM_ID", "A link button has no custom_id."
                )
            _url(child.get("url"), f"{where}.url")
            if child.get("url") is None:
                raise invalid_form(f"{where}.url", "BASE_TYPE_REQUIRED", "This field is required")
            return
    custom_id = child.get("custom_id")
    _text(custom_id, f"{where}.custom_id", 100, required=True)
    if custom_id in custom_ids:
        raise invalid_form(
            f"{where}.custom_id",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id must be unique",
        )
    custom_ids.add(str(custom_id))


def page_query(query: Any) -> tuple[int, int | None, int | None, int | None]:
    """`limit` (1 to 100, default 50) and one of `before`, `after`, `around` (snowflakes)."""
    raw_limit = query.get("limit", "50")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise invalid_form(
            "limit", "NUMBER_TYPE_COERCE", f'Value "{raw_limit}" is not int.'
        ) from None
    if not 1 <= limit <= 100:
        raise invalid_form("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
    anchors = [
        snowflake(query[key], key) if key in query else None
        for key in ("before", "after", "around")
    ]
    if sum(a is not None for a in anchors) > 1:
        raise DiscordError(400, 50035, "Invalid Form Body: only one of before, after, around")
    return limit, anchors[0], anchors[1], anchors[2]


def page(
    messages: list[StoredMessage],
    limit: int,
    before: int | None,
    after: int | None,
    around: int | None,
) -> list[StoredMessage]:
    """One page of a channel's history, newest first, as Discord answers it."""
    ordered = sorted(messages, key=lambda m: m.id)
    if after is not None:
        chosen = [m for m in ordered if m.id > after][:limit]
    elif around is not None:
        older = [m for m in ordered if m.id < around][-(limit // 2) :] if limit > 1 else []
        newer = [m for m in ordered if m.id >= around][: limit - len(older)]
        chosen = older + newer
    else:
        chosen = [m for m in ordered if before is None or m.id < before][-limit:]
    return list(reversed(chosen))
