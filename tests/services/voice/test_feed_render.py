"""The match feed's embed (pure): what it shows, escaping of FACEIT's text, Discord's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from faceitvoice.v1 import match_pb2

from services.kit.errors import InvalidArgument
from services.voice.convert import results_from_pb
from services.voice.feed_render import FeedFacts, outcome, render, room_url, shows_match
from services.voice.model import (
    MatchRecord,
    MatchResults,
    MatchState,
    Player,
    Team,
    TeamChannel,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def record(state: MatchState = MatchState.OPEN, reason: str = "", **fields: object) -> MatchRecord:
    teams = (
        Team("faction1", "Alpha", (Player("p1", "one"), Player("p2", "two"))),
        Team("faction2", "Beta", (Player("p3", "three"),)),
    )
    values: dict[str, object] = {
        "match_id": "1-abc",
        "guild_id": 1,
        "state": state,
        "version": 3,
        "teams": teams if state is MatchState.OPEN else (),
        "opened_at": NOW,
        "close_reason": reason,
        **fields,
    }
    return MatchRecord(**values)  # type: ignore[arg-type]


def embed_size(embed: dict) -> int:
    """Characters Discord counts against its 6000 limit."""
    fields = sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    return len(embed["title"]) + len(embed["description"]) + fields + len(embed["footer"]["text"])


def test_room_url_takes_the_game_and_defaults_to_cs2() -> None:
    """The room link has the match's game segment; no game means cs2; odd text is quoted."""
    assert room_url("1-abc", "csgo") == "https://www.faceit.com/en/csgo/room/1-abc"
    assert room_url("1-abc", "") == "https://www.faceit.com/en/cs2/room/1-abc"
    assert room_url("1 a/b", "x/y") == "https://www.faceit.com/en/x%2Fy/room/1%20a%2Fb"


def test_open_match_shows_mentions_nicknames_and_voice_links() -> None:
    """Linked players are mentions, the others nicknames; the team channels are channel links."""
    channels = (TeamChannel("faction1", "Alpha", "Match 1-abc", 77, frozenset({5})),)
    embed = render(record(channels=channels), FeedFacts("Hub", "cs2"), {"p1": 5})
    assert [f["name"] for f in embed["fields"]] == ["Alpha", "Beta", "Voice"]
    assert embed["fields"][0]["value"] == "<@5>\ntwo"
    assert embed["fields"][2]["value"] == "Alpha: <#77>"
    assert embed["description"] == "**Hub**\nLive"
    assert shows_match([embed], "1-abc") and not shows_match([embed], "1-ab")


def test_nicknames_and_names_cannot_mention_or_format() -> None:
    """FACEIT text is escaped: a nickname "<@&1>" or "@everyone**" pings and formats nothing."""
    teams = (Team("faction1", "*bold*", (Player("p1", "<@&1> @everyone**"),)),)
    embed = render(record(teams=teams), FeedFacts("[x](http://evil)"), {})
    assert embed["fields"][0]["value"] == r"\<\@&1\> \@everyone\*\*"
    assert embed["description"].startswith(r"**\[x\]\(http://evil\)**")


def test_huge_names_and_rosters_stay_within_discord_limits() -> None:
    """Names and rosters far beyond Discord's limits are cut: title, fields and total hold."""
    roster = tuple(Player(f"p{n}", "n" * 200) for n in range(50))
    teams = (Team("faction1", "A" * 500, roster), Team("faction2", "B" * 500, roster))
    embed = render(record(teams=teams), FeedFacts("C" * 200), {})
    assert len(embed["title"]) <= 256
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    assert embed_size(embed) <= 6000


@pytest.mark.parametrize(
    ("reason", "results", "shown"),
    [
        (
            "match_status_finished",
            MatchResults("faction2", (("faction1", 1), ("faction2", 2))),
            "Finished: **Beta** won 1 - 2",
        ),
        ("match_status_finished", None, "Finished"),
        ("match_status_cancelled", None, "Cancelled"),
        ("match_status_aborted", None, "Aborted"),
        ("closed by an admin", None, "Closed"),
    ],
)
def test_the_end_of_a_match(reason: str, results: MatchResults | None, shown: str) -> None:
    """How a closed match ended, with the teams the feed kept (a closed record holds none)."""
    facts = FeedFacts(results=results, teams=record().teams)
    assert outcome(record(MatchState.CLOSED, reason), facts) == shown


def test_results_naming_a_third_team_are_refused() -> None:
    """CloseMatch results may only name faction1 and faction2."""
    assert results_from_pb(match_pb2.MatchResults()) is None
    with pytest.raises(InvalidArgument):
        results_from_pb(match_pb2.MatchResults(winner="faction3"))
    with pytest.raises(InvalidArgument):
        results_from_pb(
            match_pb2.MatchResults(scores=[match_pb2.FactionScore(faction="<@1>", score=3)])
        )
