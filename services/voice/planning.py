"""Pure decisions about a match event: is it valid, is it stale, which channels it needs."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.kit.errors import InvalidArgument
from services.voice.model import (
    FACTIONS,
    MatchRecord,
    MatchSpec,
    MatchState,
    Team,
    TeamChannel,
    allowed_members,
    players_on_both_teams,
)
from services.voice.naming import ChannelNaming

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelPlan:
    """A team's channel as the match wants it: its name and who may join it."""

    team: Team
    name: str
    members: frozenset[int]

    @property
    def faction(self) -> str:
        """The team's faction."""
        return self.team.faction

    @property
    def intent(self) -> tuple[str, str, str, frozenset[int]]:
        """The row stored before the channel is created: faction, team, channel name, members."""
        return self.team.faction, self.team.name, self.name, self.members


def validate_spec(spec: MatchSpec) -> None:
    """Raise InvalidArgument when the match cannot be acted on."""
    if not spec.match_id.strip():
        raise InvalidArgument("match.match_id is required")
    if spec.version < 0:
        raise InvalidArgument("match.version must be >= 0")
    seen: set[str] = set()
    for team in spec.teams:
        if team.faction not in FACTIONS:
            raise InvalidArgument(
                f"unknown faction {team.faction!r}: expected one of {', '.join(FACTIONS)}"
            )
        if team.faction in seen:
            raise InvalidArgument(f"faction {team.faction!r} appears twice")
        seen.add(team.faction)
        for player in team.roster:
            if not player.faceit_player_id.strip():
                raise InvalidArgument(f"a player of {team.faction} has no faceit_player_id")


def player_ids(teams: Sequence[Team]) -> list[str]:
    """The FACEIT ids of every rostered player, sorted, each once."""
    return sorted({p.faceit_player_id for team in teams for p in team.roster})


def open_is_stale(current: MatchRecord | None, version: int) -> bool:
    """Whether an open at `version` is older than what the match already is."""
    if current is None:
        return False
    if current.state is MatchState.CLOSED:
        return version <= current.version
    return version < current.version


def plan_channels(
    match_id: str,
    teams: Sequence[Team],
    links: Mapping[str, int],
    in_guild: Collection[int],
    naming: ChannelNaming,
) -> list[ChannelPlan]:
    """Each team's channel with its name (from `naming`) and the linked guild members allowed
    in it."""
    on_both = players_on_both_teams(teams)
    if on_both:
        logger.warning(
            "players on both teams' rosters get access to neither channel: %s",
            ", ".join(sorted(on_both)),
        )
    allowed = allowed_members(teams, links, in_guild)
    return [
        ChannelPlan(team, name, allowed[team.faction])
        for team, name in zip(teams, channel_names(match_id, teams, naming), strict=True)
    ]


def channel_names(match_id: str, teams: Sequence[Team], naming: ChannelNaming) -> list[str]:
    """Each team's channel name (from `naming`), in the order of `teams`."""
    names = {team.faction: team.name for team in teams}
    return [
        naming.name(
            match_id,
            team.faction,
            team.name,
            next((n for f, n in names.items() if f != team.faction), ""),
        )
        for team in teams
    ]


def open_intents(
    match_id: str, teams: Sequence[Team], naming: ChannelNaming
) -> list[tuple[str, str, str]]:
    """The intents an open writes before the links are known: faction, team name, channel
    name (the members unknown)."""
    names = channel_names(match_id, teams, naming)
    return [(team.faction, team.name, name) for team, name in zip(teams, names, strict=True)]


def opened_record(
    spec: MatchSpec, guild_id: int, opened_at: datetime, created: Sequence[tuple[ChannelPlan, int]]
) -> MatchRecord:
    """The record of a match just opened with these channels created: what the database holds."""
    channels = (
        TeamChannel(plan.faction, plan.team.name, plan.name, cid, plan.members)
        for plan, cid in created
    )
    return MatchRecord(
        match_id=spec.match_id,
        guild_id=guild_id,
        state=MatchState.OPEN,
        version=spec.version,
        teams=spec.teams,
        channels=tuple(sorted(channels, key=lambda c: c.faction)),
        opened_at=opened_at,
    )


def completed_record(
    record: MatchRecord, made: Mapping[str, tuple[int, Collection[int]]]
) -> MatchRecord:
    """`record`, read with the intents of these channels (faction -> channel id made and its
    members), as the database holds it once they are completed."""
    return replace(
        record,
        channels=tuple(
            replace(c, channel_id=made[c.faction][0], member_ids=frozenset(made[c.faction][1]))
            if c.faction in made
            else c
            for c in record.channels
        ),
    )
