"""The pure decisions of an open: staleness, each team's channel plan, the record opened."""

from __future__ import annotations

from datetime import UTC, datetime

from services.voice.model import MatchRecord, MatchSpec, MatchState, Player, Team
from services.voice.naming import ChannelNaming
from services.voice.planning import open_is_stale, opened_record, plan_channels

MATCH = "1-d785567a-fd28-42a4-af99-6b3cec21c6a9"


def _team(faction: str, name: str, *players: str) -> Team:
    return Team(faction, name, tuple(Player(p, p) for p in players))


def _record(state: MatchState, version: int) -> MatchRecord:
    return MatchRecord(MATCH, 900, state, version)


def test_an_open_is_stale_only_when_older_than_the_match() -> None:
    """An open match takes its own version again; a closed one needs a newer version."""
    assert not open_is_stale(None, 0)
    assert not open_is_stale(_record(MatchState.OPEN, 3), 3)
    assert open_is_stale(_record(MatchState.OPEN, 3), 2)
    assert open_is_stale(_record(MatchState.CLOSED, 3), 3)
    assert not open_is_stale(_record(MatchState.CLOSED, 3), 4)


def test_each_team_is_planned_with_its_linked_guild_members_only() -> None:
    """Unlinked players, and linked ones outside the guild, get no access."""
    teams = (_team("faction1", "Red", "p1", "p2", "p3"), _team("faction2", "Blue", "p4"))
    links = {"p1": 1, "p2": 2, "p4": 4}

    plans = plan_channels(MATCH, teams, links, in_guild={1, 4}, naming=ChannelNaming())

    assert [(p.faction, p.members) for p in plans] == [
        ("faction1", frozenset({1})),
        ("faction2", frozenset({4})),
    ]
    assert plans[0].intent == ("faction1", "Red", plans[0].name, frozenset({1}))
    assert plans[0].name != plans[1].name


def test_a_player_on_both_rosters_is_planned_into_neither_channel() -> None:
    """A player listed by both teams could hear both: no channel lets them in."""
    teams = (_team("faction1", "", "p1", "p2"), _team("faction2", "", "p2", "p3"))
    links = {"p1": 1, "p2": 2, "p3": 3}

    plans = plan_channels(MATCH, teams, links, in_guild={1, 2, 3}, naming=ChannelNaming())

    assert [p.members for p in plans] == [frozenset({1}), frozenset({3})]


def test_the_record_opened_holds_the_created_channels_in_faction_order() -> None:
    """Channels created for the plan are ready, with the plan's members, sorted by faction."""
    teams = (_team("faction1", "Red", "p1"), _team("faction2", "Blue", "p2"))
    spec = MatchSpec(MATCH, 2, teams)
    plans = plan_channels(MATCH, teams, {"p1": 1, "p2": 2}, in_guild={1, 2}, naming=ChannelNaming())
    opened_at = datetime(2026, 1, 1, tzinfo=UTC)

    record = opened_record(spec, 900, opened_at, [(plans[1], 20), (plans[0], 10)])

    assert [(c.faction, c.channel_id, c.member_ids) for c in record.channels] == [
        ("faction1", 10, frozenset({1})),
        ("faction2", 20, frozenset({2})),
    ]
    assert (record.state, record.version, record.opened_at) == (MatchState.OPEN, 2, opened_at)
