"""Pure conversions between the voice service's protos and its domain types; what comes in is
checked against the input limits first."""

from __future__ import annotations

from faceitvoice.v1 import match_pb2, voice_service_pb2

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_NAME_CHARS, MAX_PLAYERS_PER_TEAM, MAX_TEAMS_PER_MATCH
from services.kit.timestamps import to_timestamp
from services.kit.validation import PREVIEW_CHARS, check_count, check_id, check_text
from services.voice.model import (
    FACTIONS,
    CloseResult,
    MatchRecord,
    MatchResults,
    MatchSpec,
    MatchState,
    OpenResult,
    Placement,
    Player,
    Team,
    TeamChannel,
)

_STATES = {
    MatchState.OPEN: voice_service_pb2.VOICE_MATCH_STATE_OPEN,
    MatchState.CLOSED: voice_service_pb2.VOICE_MATCH_STATE_CLOSED,
}


def check_match(match: match_pb2.Match) -> None:
    """InvalidArgument when a field of `match` is beyond the input limits or holds a NUL.

    Every string is checked, used or not: all of them are in memory, and some in Postgres.
    """
    check_id(match.match_id, "match.match_id")
    check_id(match.organizer_id, "match.organizer_id")
    check_id(match.entity.id, "match.entity.id")
    check_text(match.entity.name, "match.entity.name", MAX_NAME_CHARS)
    check_text(match.entity.type, "match.entity.type")
    check_text(match.game, "match.game")
    check_text(match.region, "match.region")
    check_results(match.results, "match.results")
    check_count(match.teams, "teams per match", MAX_TEAMS_PER_MATCH)
    for t, team in enumerate(match.teams):
        where = f"match.teams[{t}]"
        check_id(team.faction, f"{where}.faction")
        check_text(team.name, f"{where}.name", MAX_NAME_CHARS)
        check_id(team.team_id, f"{where}.team_id")
        check_count(team.roster, "players per team", MAX_PLAYERS_PER_TEAM)
        for p, player in enumerate(team.roster):
            check_id(player.faceit_player_id, f"{where}.roster[{p}].faceit_player_id")
            check_text(player.nickname, f"{where}.roster[{p}].nickname", MAX_NAME_CHARS)


def match_from_pb(match: match_pb2.Match) -> MatchSpec:
    """The domain view of a proto Match, once its fields passed `check_match` (the rules of
    what a match must hold are the service's)."""
    check_match(match)
    return MatchSpec(
        competition=match.entity.name,
        game=match.game,
        match_id=match.match_id.strip(),
        version=match.version,
        teams=tuple(
            Team(
                faction=team.faction,
                name=team.name,
                roster=tuple(Player(p.faceit_player_id, p.nickname) for p in team.roster),
            )
            for team in match.teams
        ),
    )


def results_from_pb(results: match_pb2.MatchResults) -> MatchResults | None:
    """The results of a CloseMatch, None when it carries none; InvalidArgument when they name
    a team beyond the two factions."""
    check_results(results, "results")
    if not results.winner and not results.scores:
        return None
    for faction in (results.winner, *(s.faction for s in results.scores)):
        if faction and faction not in FACTIONS:
            raise InvalidArgument(f"results: {faction[:PREVIEW_CHARS]!r} is no faction")
    return MatchResults(
        winner=results.winner, score=tuple(sorted((s.faction, s.score) for s in results.scores))
    )


def check_results(results: match_pb2.MatchResults, where: str) -> None:
    """InvalidArgument when the results' strings or count are beyond the input limits."""
    check_id(results.winner, f"{where}.winner")
    check_count(results.scores, "scores", MAX_TEAMS_PER_MATCH)
    for s, score in enumerate(results.scores):
        check_id(score.faction, f"{where}.scores[{s}].faction")


def channel_to_pb(channel: TeamChannel) -> voice_service_pb2.TeamChannel:
    """A team channel as the proto shows it (channel_id 0 while being created)."""
    return voice_service_pb2.TeamChannel(
        faction=channel.faction,
        team_name=channel.team_name,
        channel_id=channel.channel_id or 0,
        channel_name=channel.channel_name,
        member_discord_user_ids=sorted(channel.member_ids),
    )


def match_to_pb(record: MatchRecord) -> voice_service_pb2.VoiceMatch:
    """A held match as a VoiceMatch."""
    return voice_service_pb2.VoiceMatch(
        match_id=record.match_id,
        version=record.version,
        state=_STATES[record.state],
        guild_id=record.guild_id,
        channels=[channel_to_pb(c) for c in record.channels],
        opened_at=to_timestamp(record.opened_at),
        closed_at=to_timestamp(record.closed_at),
        close_reason=record.close_reason,
    )


def placement_to_pb(placement: Placement) -> voice_service_pb2.PlayerPlacement:
    """One player's placement."""
    return voice_service_pb2.PlayerPlacement(
        faceit_player_id=placement.faceit_player_id,
        nickname=placement.nickname,
        faction=placement.faction,
        discord_user_id=placement.discord_user_id,
        outcome=placement.outcome.value,  # type: ignore[arg-type]
        reason=placement.reason,
    )


def open_result_to_pb(result: OpenResult) -> voice_service_pb2.OpenMatchResponse:
    """The OpenMatch answer."""
    return voice_service_pb2.OpenMatchResponse(
        outcome=result.outcome.value,  # type: ignore[arg-type]
        match=match_to_pb(result.match),
        placements=[placement_to_pb(p) for p in result.placements],
    )


def close_result_to_pb(result: CloseResult) -> voice_service_pb2.CloseMatchResponse:
    """The CloseMatch answer."""
    return voice_service_pb2.CloseMatchResponse(
        outcome=result.outcome.value,  # type: ignore[arg-type]
        match=match_to_pb(result.match),
        deleted_channel_ids=list(result.deleted_channel_ids),
        moved_to_lobby=result.moved_to_lobby,
    )
