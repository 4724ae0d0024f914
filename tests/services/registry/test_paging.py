"""ListPlayerLinks page tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from services.kit.errors import InvalidArgument
from services.registry.paging import Cursor, decode_page_token, encode_page_token


def test_tokens_round_trip_to_the_microsecond() -> None:
    """A cursor survives encoding, including microseconds and the largest snowflake."""
    cursor = Cursor(datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), 2**63 - 1)

    assert decode_page_token(encode_page_token(cursor)) == cursor


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"v":2,"t":1,"d":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"t":"x","d":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"t":1}').decode(),
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        "ü",
    ],
)
def test_foreign_tokens_are_invalid_arguments(token: str) -> None:
    """Anything encode_page_token did not make is InvalidArgument."""
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_page_token(token)
