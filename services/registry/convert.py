"""Pure converters from registry records to protobuf messages."""

from __future__ import annotations

from faceitvoice.v1 import registry_service_pb2 as pb

from services.kit.timestamps import to_timestamp
from services.registry.links import ChangeKind, FaceitAccount, LinkChange, PlayerLink

_KINDS = {
    ChangeKind.LINKED: pb.LinkChange.KIND_LINKED,
    ChangeKind.UNLINKED: pb.LinkChange.KIND_UNLINKED,
}


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
    """A link as the `PlayerLink` message (verified_at unset when the link is not verified)."""
    message = pb.PlayerLink(
        discord_user_id=link.discord_user_id,
        faceit_player_id=link.account.player_id,
        faceit_nickname=link.account.nickname,
        profile=profile_to_pb(link.account),
        linked_at=to_timestamp(link.linked_at),
        verified=link.verified,
    )
    if link.verified_at is not None:
        message.verified_at.CopyFrom(to_timestamp(link.verified_at))
    return message


def change_to_pb(change: LinkChange) -> pb.LinkChange:
    """A change of the change log as the `LinkChange` message."""
    return pb.LinkChange(
        sequence=change.sequence,
        kind=_KINDS[change.kind],
        link=link_to_pb(change.link),
        changed_at=to_timestamp(change.changed_at),
    )
