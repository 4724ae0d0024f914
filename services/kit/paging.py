"""The one page-token format of every List call.

A token holds the keyset position of the last row sent: unpadded base64url of the compact JSON
`{"v": 1, "k": [...]}`, moments as integer microseconds since the epoch (exact, no time zone).
Tokens are opaque to callers; anything this module did not make is InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kit.errors import InvalidArgument

Part = int | str | datetime
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_part(part: Part) -> int | str:
    if isinstance(part, datetime):
        return (part - _EPOCH) // timedelta(microseconds=1)
    return part


def _decode_part(value: object, kind: type[Part]) -> Part:
    if kind is datetime:
        if type(value) is not int:
            raise ValueError("a moment must be an integer")
        return _EPOCH + timedelta(microseconds=value)
    if type(value) is not kind:
        raise ValueError(f"expected {kind.__name__}")
    return value


def encode_page_token(*key: Part) -> str:
    """The opaque token for the page after the row whose sort key is `key`."""
    body = {"v": _VERSION, "k": [_encode_part(part) for part in key]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, *kinds: type[Part]) -> tuple[Any, ...]:
    """The key `token` holds, one part of each of `kinds`; InvalidArgument for a token that
    encode_page_token did not make for a key of that shape."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown token version")
        parts = body.get("k")
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError("wrong key shape")
        return tuple(_decode_part(value, kind) for value, kind in zip(parts, kinds, strict=True))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument(f"page_token is not one this service gave out: {error}") from None
