"""Match lifecycle actions that change the model and publish the matching webhooks."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sandbox.faceit.deliverer import WebhookDeliverer
from sandbox.faceit.model import Match
from sandbox.faceit.webhook_payloads import (
    CREATED_EVENT,
    LIFECYCLE_END_EVENTS,
    event_for_status,
    match_payload,
)
from sandbox.faceit.world import World

logger = logging.getLogger(__name__)


def rosters(match: Match) -> list[list[str]]:
    """The player ids of each team so far, faction1 first."""
    return [team.roster for team in match.teams]


class MatchLifecycle:
    """Creates matches and moves them through statuses, sending webhooks to every subscriber.

    Used by the control API and by in-process callers (`FaceitSandbox.lifecycle`).
    """

    def __init__(self, *, world: World, deliverer: WebhookDeliverer) -> None:
        self._world = world
        self._deliverer = deliverer

    def create_match(
        self,
        teams: Sequence[Sequence[str]],
        *,
        match_id: str | None = None,
        hub_id: str | None = None,
        organizer_id: str | None = None,
        team_names: Sequence[str] | None = None,
        fill_rosters: bool | None = None,
        webhook: bool = True,
    ) -> tuple[Match, list[dict[str, Any]]]:
        """Create a match in CHECK_IN and send `match_object_created` (no teams)."""
        match = self._world.create_match(
            teams,
            match_id=match_id,
            hub_id=hub_id,
            organizer_id=organizer_id,
            team_names=team_names,
            fill_rosters=fill_rosters,
        )
        logger.info("created match %s in hub %s", match.match_id, match.hub_id)
        webhooks = self._emit(CREATED_EVENT, match) if webhook else []
        return match, webhooks

    def set_status(
        self,
        match: Match,
        status: str,
        *,
        reason: str | None = None,
        afk_player_ids: Iterable[str] = (),
        winner: str | None = None,
        webhook: bool = True,
    ) -> dict[str, Any]:
        """Move a match to a FACEIT status and send its event, if FACEIT has one for it.

        Answers `{"match_id", "status", "version", "api_version", "rosters", "event",
        "webhooks"}`: `version` is the webhooks' `payload.version`, `api_version` the Data
        API's, `rosters` the player ids of each team so far.
        """
        self._world.set_status(
            match, status, reason=reason, afk_player_ids=afk_player_ids, winner=winner
        )
        logger.info(
            "match %s is now %s, webhook version %s, Data API version %s",
            match.match_id,
            match.status,
            match.webhook_version,
            match.api_version,
        )
        event = event_for_status(match.status)
        webhooks = self._emit(event, match) if event and webhook else []
        return {
            "match_id": match.match_id,
            "status": match.status,
            "version": match.webhook_version,
            "api_version": match.api_version,
            "rosters": rosters(match),
            "event": event,
            "webhooks": webhooks,
        }

    def _emit(self, event: str, match: Match) -> list[dict[str, Any]]:
        hub = self._world.ensure_hub(match.hub_id, match.organizer_id)
        players = {p.player_id: p for p in self._world.players()}
        return self._deliverer.publish(
            event=event,
            match_id=match.match_id,
            payload=match_payload(event, match, players, hub),
            subscriptions=self._world.subscriptions(),
            ends_lifecycle=event in LIFECYCLE_END_EVENTS,
        )
