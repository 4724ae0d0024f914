"""Tests of the request field checks every gRPC servicer shares."""

from __future__ import annotations

import pytest

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_ID_BYTES, MAX_NAME_CHARS
from services.kit.validation import PREVIEW_CHARS, check_count, check_id, check_text, preview


def test_an_id_at_the_byte_limit_passes_and_one_byte_more_is_refused() -> None:
    """Ids are measured in UTF-8 bytes: 32 four-byte characters fit in 128, 33 do not."""
    assert check_id("𝄞" * (MAX_ID_BYTES // 4), "match_id") == "𝄞" * 32
    with pytest.raises(InvalidArgument, match=f"match_id is longer than {MAX_ID_BYTES} bytes"):
        check_id("𝄞" * (MAX_ID_BYTES // 4 + 1), "match_id")
    with pytest.raises(InvalidArgument):
        check_id("a" * (MAX_ID_BYTES + 1), "match_id")


@pytest.mark.parametrize("check", [check_id, check_text])
def test_a_nul_character_is_refused_naming_the_field(check: object) -> None:
    """A NUL anywhere in a string is InvalidArgument naming the field (Postgres cannot store it)."""
    assert callable(check)
    with pytest.raises(InvalidArgument, match="team name contains a NUL character"):
        check("ok\x00", "team name")


def test_required_ids_must_not_be_blank() -> None:
    """A required id that is empty or only spaces is refused; an optional one passes."""
    with pytest.raises(InvalidArgument, match="faceit_player_id is required"):
        check_id("  ", "faceit_player_id", required=True)
    assert check_id("", "team_id") == ""


def test_text_is_measured_in_characters() -> None:
    """Names are limited in characters, so 100 four-byte characters still fit."""
    assert check_text("é" * MAX_NAME_CHARS, "name", MAX_NAME_CHARS)
    with pytest.raises(InvalidArgument, match=f"name is longer than {MAX_NAME_CHARS} characters"):
        check_text("é" * (MAX_NAME_CHARS + 1), "name", MAX_NAME_CHARS)


def test_counts_beyond_the_limit_are_refused() -> None:
    """A list longer than its limit is refused with both numbers; one at the limit passes."""
    check_count(range(99), "players per team", 99)
    with pytest.raises(InvalidArgument, match="at most 99 players per team are allowed, got 12000"):
        check_count(range(12_000), "players per team", 99)


def test_preview_quotes_only_a_short_prefix() -> None:
    """An echoed 3 MB value is cut to a short quoted prefix; short values are quoted whole."""
    assert preview("abc") == "'abc'"
    shown = preview("x" * (3 << 20))
    assert shown == repr("x" * PREVIEW_CHARS) + "…"
