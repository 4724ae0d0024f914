"""Pure converters from registry records to protobuf messages."""

from __future__ import annotations

from faceitvoice.v1 import registry_service_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.registry.links import FaceitAccount, PlayerLink


def profile_to_pb(account: FaceitAccount) -> pb.FaceitProfile:
    """The user-facing profile part of an account."""
    return pb.FaceitProfile(
        avatar_url=account.avatar_url,
        country=account.country,
        game=account.game,
        skill_level=account.skill_level,
        faceit_elo=account.faceit_elo,
        faceit_url=account.faceit_url,
    )


def link_to_pb(link: PlayerLink) -> pb.PlayerLink:
    """A link as the `PlayerLink` message."""
    linked_at = Timestamp()
    linked_at.FromDatetime(link.linked_at)
    return pb.PlayerLink(
        discord_user_id=link.discord_user_id,
        faceit_player_id=link.account.player_id,
        faceit_nickname=link.account.nickname,
        profile=profile_to_pb(link.account),
        linked_at=linked_at,
    )
