"""Completing the rosters of an open event: earlier events of the match first, then the Data API."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from faceitvoice.v1 import match_pb2

from services.ingest.faceit_matches import teams_from_api
from services.kit.faceit_api import FaceitApiClient, FaceitApiError, FaceitUnavailable

logger = logging.getLogger(__name__)


def _missing(match: match_pb2.Match) -> bool:
    return not match.teams or any(not team.roster for team in match.teams)


def _fill(match: match_pb2.Match, teams: Iterable[match_pb2.Team]) -> None:
    """Give the teams of `match` without roster the roster of the same faction in `teams`."""
    known = {team.faction: team for team in teams if team.roster}
    if not match.teams:
        match.teams.extend(known[faction] for faction in sorted(known))
        return
    for team in match.teams:
        source = known.get(team.faction)
        if not team.roster and source is not None:
            team.roster.extend(source.roster)
            team.name = team.name or source.name
            team.team_id = team.team_id or source.team_id


class RosterCompleter:
    """Fills empty rosters from earlier events, then `GET /matches/{id}` when an API key is set."""

    def __init__(self, faceit: FaceitApiClient | None) -> None:
        self._faceit = faceit

    async def complete(
        self, match: match_pb2.Match, earlier: Iterable[match_pb2.Match]
    ) -> match_pb2.Match:
        """A copy of `match` with every roster known so far.

        Raises FaceitUnavailable when the Data API is needed but does not answer (retry later);
        other API errors leave the rosters as they are.
        """
        completed = match_pb2.Match()
        completed.CopyFrom(match)
        for previous in earlier:
            if not _missing(completed):
                return completed
            _fill(completed, previous.teams)
        if not _missing(completed) or self._faceit is None:
            return completed
        try:
            fetched = await self._faceit.get_match(match.match_id)
        except FaceitUnavailable:
            raise
        except FaceitApiError as error:
            logger.warning("cannot complete rosters from the FACEIT Data API: %s", error.message)
            return completed
        _fill(completed, teams_from_api(fetched))
        return completed
