"""The page tokens every List call gives out."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from services.kit.errors import InvalidArgument
from services.kit.paging import decode_page_token, encode_page_token


def test_tokens_round_trip_to_the_microsecond() -> None:
    """A key survives encoding, including microseconds and the largest snowflake."""
    key = (datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), 2**63 - 1, "match-1")

    assert decode_page_token(encode_page_token(*key), datetime, int, str) == key


def test_tokens_are_url_safe_without_padding() -> None:
    """A token can travel in a URL or a form as it is."""
    token = encode_page_token("a?b/c", 1)

    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        _b64(b"not json"),
        _b64(b'{"v":2,"k":[1,1]}'),
        _b64(b'{"v":1,"k":["x",1]}'),
        _b64(b'{"v":1,"k":[1]}'),
        _b64(b'{"v":1,"k":[1,true]}'),
        _b64(b'{"v":1,"k":[1e400,1]}'),
        _b64(b"[1,2]"),
        "17",
        "ü",
    ],
)
def test_foreign_tokens_are_invalid_arguments(token: str) -> None:
    """Anything encode_page_token did not make for a key of that shape is InvalidArgument."""
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_page_token(token, datetime, int)
