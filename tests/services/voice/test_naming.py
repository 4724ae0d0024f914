"""Channel names from VOICE_CHANNEL_NAME_TEMPLATE: fields, the start checks, Discord's limits."""

from __future__ import annotations

import pytest

from services.voice.naming import MAX_CHANNEL_NAME, ChannelNaming, TemplateError

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


def test_the_default_names_channels_as_before_templates() -> None:
    """`Match {8 chars}`, plus ` · team` only when both teams have a name."""
    naming = ChannelNaming()
    assert naming.name(MATCH, "faction1", "Red", "Blue") == "Match 1-d78556 · Red"
    assert naming.name(MATCH, "faction1", "Red", "") == "Match 1-d78556"
    assert naming.name(MATCH, "faction2", "  ", "Blue") == "Match 1-d78556"


def test_every_documented_field_renders() -> None:
    """Each field of the docs has its value; a team without a name is `Team N` in {team}."""
    naming = ChannelNaming(
        "{match_id}|{match_short}|{faction}|{team_number}|{team_name}|{team}|{opponent}"
    )
    assert naming.name(MATCH, "faction2", "", "Red") == (f"{MATCH}|1-d78556|faction2|2||Team 2|Red")


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("Match {match}", "unknown fields match"),
        ("{team_name}", "empty name"),
        ("   ", "empty name"),
        ("x" * 70 + "{match_id}", "over Discord's 100"),
        ("Match {}", "positional field"),
        ("Match {match_short:>20}", "format spec"),
        ("Match {match_short", "not a valid template"),
    ],
)
def test_a_template_that_cannot_make_valid_names_is_refused(template: str, says: str) -> None:
    """Unknown fields, empty results and names too long for the worst case fail at start."""
    with pytest.raises(TemplateError, match=says):
        ChannelNaming(template)


def test_long_team_names_are_cut_so_the_name_fits_and_keeps_its_fixed_part() -> None:
    """A name over 100 characters cuts the team names (with an ellipsis), not the match id."""
    naming = ChannelNaming("{team} vs {opponent} · {match_short}")
    name = naming.name(MATCH, "faction1", "R" * 100, "B" * 100)
    assert len(name) <= MAX_CHANNEL_NAME
    assert name.endswith(" · 1-d78556")
    assert "R…" in name and "B…" in name
