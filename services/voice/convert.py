"""Pure conversions between the voice service's protos and its domain types."""

from __future__ import annotations

from datetime import datetime

from faceitvoice.v1 import match_pb2, voice_service_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.voice.model import (
    CloseResult,
    MatchRecord,
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


def match_from_pb(match: match_pb2.Match) -> MatchSpec:
    """The domain view of a proto Match (validation is the service's job)."""
    return MatchSpec(
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


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


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
        opened_at=_timestamp(record.opened_at),
        closed_at=_timestamp(record.closed_at),
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
