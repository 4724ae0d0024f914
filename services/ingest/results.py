"""The results of a finished match for the match feed: the event's, else the FACEIT Data API's."""

from __future__ import annotations

import logging

from faceitvoice.v1 import match_pb2

from services.ingest.faceit_matches import results_from_api
from services.kit.faceit_api import FaceitApiClient, FaceitApiError, FaceitUnavailable

logger = logging.getLogger(__name__)

FINISHED_EVENT = "match_status_finished"
FACTIONS = frozenset({"faction1", "faction2"})


def usable(results: match_pb2.MatchResults | None) -> match_pb2.MatchResults | None:
    """`results` when they name only faction1 and faction2 (what voice takes), else None: odd
    results are left out, never a reason for the close to fail."""
    if results is None or not (results.winner or results.scores):
        return None
    named = {results.winner, *(s.faction for s in results.scores)} - {""}
    return results if named <= FACTIONS else None


def results_of(match: match_pb2.Match | None) -> match_pb2.MatchResults | None:
    """The usable results an event carried, or None."""
    if match is None or not match.HasField("results"):
        return None
    return usable(match.results)


class ResultsFinder:
    """Reads a finished match's results from `GET /matches/{id}` when an API key is set."""

    def __init__(self, faceit: FaceitApiClient | None) -> None:
        self._faceit = faceit

    def needed(self, event: str, known: match_pb2.MatchResults | None) -> bool:
        """Whether a close should look the results up: a finish without them, with an API key."""
        return self._faceit is not None and event == FINISHED_EVENT and known is None

    async def find(self, match_id: str) -> match_pb2.MatchResults | None:
        """The Data API's results of the match, None when it has none or refuses.

        Raises FaceitUnavailable when the Data API does not answer (the delivery is retried).
        """
        assert self._faceit is not None
        try:
            match = await self._faceit.get_match(match_id)
        except FaceitUnavailable:
            raise
        except FaceitApiError as error:
            logger.warning("no results from the FACEIT Data API: %s", error.message)
            return None
        return usable(results_from_api(match))
