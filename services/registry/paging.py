"""Opaque ListPlayerLinks page tokens: base64 of the keyset cursor (linked_at, discord_user_id)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.kit.errors import InvalidArgument

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VERSION = 1


@dataclass(frozen=True)
class Cursor:
    """The last link of a page; the next page starts strictly after it."""

    linked_at: datetime
    discord_user_id: int


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def encode_page_token(cursor: Cursor) -> str:
    """The opaque token naming `cursor`."""
    body = {
        "v": _VERSION,
        "t": _microseconds(cursor.linked_at),
        "d": cursor.discord_user_id,
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> Cursor:
    """The cursor a token names; InvalidArgument for anything encode_page_token did not make."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown token version")
        micros, discord_user_id = body["t"], body["d"]
        if not isinstance(micros, int) or not isinstance(discord_user_id, int):
            raise ValueError("cursor fields must be integers")
        return Cursor(_EPOCH + timedelta(microseconds=micros), discord_user_id)
    except (ValueError, KeyError, OverflowError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument(f"page_token is not a token from ListPlayerLinks: {error}") from None
