"""Validation rules of registry requests."""

from __future__ import annotations

import pytest

from services.kit.errors import InvalidArgument
from services.registry.rules import (
    NicknameNotFound,
    distinct_player_ids,
    page_size,
    validate_discord_user_id,
    validate_nickname,
)


@pytest.mark.parametrize("nickname", ["ab", "s1mple", "Zy-w_Oo", "x" * 32, "0123"])
def test_valid_nicknames_pass(nickname: str) -> None:
    """2 to 32 letters, digits, '-' or '_' are accepted unchanged."""
    assert validate_nickname(nickname) == nickname


@pytest.mark.parametrize(
    "nickname",
    ["", "a", "x" * 33, "has space", "semi;colon", "dot.name", "ünï", "tab\t", "nick\n", "../x"],
)
def test_invalid_nicknames_are_rejected(nickname: str) -> None:
    """Anything else is InvalidArgument."""
    with pytest.raises(InvalidArgument, match="faceit_nickname"):
        validate_nickname(nickname)


@pytest.mark.parametrize("discord_user_id", [0, 2**63, 2**64 - 1])
def test_impossible_discord_ids_are_rejected(discord_user_id: int) -> None:
    """Zero and ids beyond BIGINT are InvalidArgument."""
    with pytest.raises(InvalidArgument, match="discord_user_id"):
        validate_discord_user_id(discord_user_id)


def test_real_snowflakes_pass() -> None:
    """A real-sized snowflake and the BIGINT maximum are accepted."""
    assert validate_discord_user_id(80351110224678912) == 80351110224678912
    assert validate_discord_user_id(2**63 - 1) == 2**63 - 1


def test_player_ids_are_deduplicated_in_first_seen_order() -> None:
    """Duplicates collapse, the first occurrence keeps its place."""
    assert distinct_player_ids(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_more_than_1000_ids_or_blank_ids_are_rejected() -> None:
    """1000 ids pass; 1001 or a blank id are InvalidArgument."""
    assert len(distinct_player_ids([f"p{i}" for i in range(1000)])) == 1000
    with pytest.raises(InvalidArgument, match="1000"):
        distinct_player_ids([f"p{i}" for i in range(1001)])
    with pytest.raises(InvalidArgument):
        distinct_player_ids(["ok", " "])


def test_page_size_defaults_and_bounds() -> None:
    """0 means 100; 1 to 500 pass; others are InvalidArgument."""
    assert page_size(0) == 100
    assert page_size(1) == 1
    assert page_size(500) == 500
    for bad in (-1, 501):
        with pytest.raises(InvalidArgument, match="page_size"):
            page_size(bad)


def test_nickname_not_found_carries_suggestions_as_metadata() -> None:
    """The suggestions become one comma-separated trailing metadata entry."""
    error = NicknameNotFound("s1mpel", ["s1mple", "s1mple_fan"])

    assert error.trailing_metadata == (("faceitvoice-suggestions", "s1mple,s1mple_fan"),)
    assert "did you mean s1mple, s1mple_fan" in error.message
