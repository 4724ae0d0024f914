"""FACEIT webhook bodies (the real envelope and the simplified shape) parsed into inbox events."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faceitvoice.v1 import match_pb2
from pydantic import ValidationError

from services.ingest.payloads import (
    STORABLE,
    Envelope,
    MatchPayload,
    RosterEntry,
    SimpleEntity,
    SimpleEvent,
    SimplePlayer,
    WebhookEntity,
    WebhookResults,
)
from services.kit.match_json import (
    STATUS_NAMES,
    MatchJson,
    match_json,
    player_json,
    present,
    results_json,
    team_json,
)
from services.kit.validation import PREVIEW_CHARS

OPEN_EVENTS = frozenset(
    {
        "match_object_created",
        "match_status_configuring",
        "match_status_ready",
        "match_status_ongoing",
    }
)
CLOSE_EVENTS = frozenset(
    {"match_status_finished", "match_status_cancelled", "match_status_aborted"}
)

# The Match status (by name, as the stored JSON has it) each event puts the match in.
_STATUS_BY_EVENT = {
    event: STATUS_NAMES[status]
    for event, status in {
        "match_object_created": match_pb2.MATCH_STATUS_CREATED,
        "match_status_configuring": match_pb2.MATCH_STATUS_CONFIGURING,
        "match_status_ready": match_pb2.MATCH_STATUS_READY,
        "match_status_ongoing": match_pb2.MATCH_STATUS_ONGOING,
        "match_status_finished": match_pb2.MATCH_STATUS_FINISHED,
        "match_status_cancelled": match_pb2.MATCH_STATUS_CANCELLED,
        "match_status_aborted": match_pb2.MATCH_STATUS_ABORTED,
    }.items()
}

FACTIONS = ("faction1", "faction2")


class Action(enum.StrEnum):
    """What delivering an event asks of the voice service."""

    OPEN = "OPEN"
    CLOSE = "CLOSE"
    NONE = "NONE"


class Source(enum.StrEnum):
    """Where an inbox event came from."""

    WEBHOOK = "WEBHOOK"
    POLL = "POLL"


class NotAFaceitEvent(ValueError):
    """The body is JSON but no FACEIT event: neither the envelope nor the simplified shape."""


@dataclass(frozen=True)
class InboundEvent:
    """One event as the inbox stores it; `match_json` (the stored Match) is set for match events.

    A webhook's Match is built straight in its stored JSON form, never as a proto message:
    that is what the inbox writes, and what receiving a webhook must do quickly.
    """

    event_id: str
    event: str
    action: Action
    source: Source
    match_id: str = ""
    version: int = 0
    organizer_id: str = ""
    hub_id: str = ""
    match_json: MatchJson | None = field(default=None, compare=False)
    dropped: tuple[str, ...] = field(default=(), compare=False)
    """What normalising the rosters left out (blank ids, repeats, a third team), for a warning."""


def action_for(event: str) -> Action:
    """What an event name asks of voice (see the event mapping of the design)."""
    if event in OPEN_EVENTS:
        return Action.OPEN
    if event in CLOSE_EVENTS:
        return Action.CLOSE
    return Action.NONE


def _short(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text` cut to `limit` characters: an error names where the problem is, never echoes it."""
    return text if len(text) <= limit else text[:limit] + "..."


def _first_error(error: ValidationError) -> str:
    problem = error.errors(include_url=False, include_input=False)[0]
    # A location may hold a key of the body (a faction of the simplified shape), unbounded.
    where = ".".join(_short(str(part)) for part in problem["loc"]) or "body"
    message = problem["msg"]
    if problem["type"] == "string_unicode":
        message = "must be valid unicode (no lone surrogates)"
    elif problem.get("ctx", {}).get("pattern") == STORABLE:
        message = "must not contain NUL characters"
    return f"{where}: {message}"


# orjson reads an integer past 64 bits as a float, where json keeps it exact: a body with a
# literal of 19 digits or more (which may be one) is left to json. Found by mapping every digit
# to "0" and looking for 19 in a row: a tenth of what a regular expression takes.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19


def decode_body(raw: bytes) -> Any:
    """`raw` read as `json.loads` reads it (the same value, or the same refusal).

    orjson reads the common body in a third of json's time (bench/findings.md); what it
    refuses (NaN, lone surrogates, a byte order mark, UTF-16, nesting past 1,024) is read or
    refused by json, as before.
    """
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def parse_webhook(body: Mapping[str, Any]) -> InboundEvent:
    """Parse a decoded webhook body; raise NotAFaceitEvent when it fits no known shape."""
    if "payload" in body:
        try:
            envelope = Envelope.model_validate(body)
        except ValidationError as error:
            raise NotAFaceitEvent(f"not a FACEIT webhook envelope: {_first_error(error)}") from None
        return _from_envelope(envelope)
    try:
        simple = SimpleEvent.model_validate(body)
    except ValidationError as error:
        raise NotAFaceitEvent(f"not a FACEIT event: {_first_error(error)}") from None
    return _from_simple(simple, body)


def _match_json(
    event: str,
    match_id: str,
    version: int,
    organizer_id: str | None,
    entity: WebhookEntity | SimpleEntity,
    teams: list[MatchJson],
    game: str | None = None,
    region: str | None = None,
    results: WebhookResults | None = None,
) -> MatchJson:
    """The stored form of a webhook's Match (kit.match_json)."""
    return match_json(
        match_id=match_id,
        version=version,
        organizer_id=organizer_id,
        entity=present(id=entity.id, name=entity.name, type=entity.type),
        game=game,
        region=region,
        status=_STATUS_BY_EVENT.get(event),
        teams=teams,
        results=results_json(results.winner, results.score) if results else None,
    )


def _roster_json(
    faction: str, entries: Sequence[RosterEntry | SimplePlayer], dropped: list[str]
) -> list[MatchJson]:
    """A team's players as stored: a blank id left out, a repeated player kept once.

    Voice refuses a whole match for one blank id, so one bad entry would cost every player
    their channel.
    """
    roster: list[MatchJson] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, 1):
        player_id = entry.id
        if not player_id or player_id.isspace():
            dropped.append(f"{faction} player {position}: blank id")
        elif player_id in seen:
            dropped.append(f"{faction} player {position}: {player_id} again")
        else:
            seen.add(player_id)
            roster.append(player_json(player_id, entry.nickname))
    return roster


def _from_envelope(envelope: Envelope) -> InboundEvent:
    event = envelope.event
    if not event.startswith("match_"):
        return InboundEvent(
            event_id=envelope.event_id, event=event, action=Action.NONE, source=Source.WEBHOOK
        )
    try:
        payload = MatchPayload.model_validate(envelope.payload)
    except ValidationError as error:
        raise NotAFaceitEvent(f"not a FACEIT match payload: {_first_error(error)}") from None
    _refuse_blank("payload.id", payload.id)
    entity = payload.entity or WebhookEntity()
    listed = payload.teams or []
    dropped: list[str] = [
        f"team {index + 1} (id {team.id or '(none)'}, {len(team.roster or ())} players)"
        for index, team in enumerate(listed[len(FACTIONS) :], len(FACTIONS))
    ]
    teams = [
        team_json(faction, team.name, _roster_json(faction, team.roster or (), dropped), team.id)
        for faction, team in zip(FACTIONS, listed, strict=False)
    ]
    return InboundEvent(
        event_id=envelope.event_id,
        event=event,
        action=action_for(event),
        source=Source.WEBHOOK,
        match_id=payload.id,
        version=payload.version,
        organizer_id=payload.organizer_id or "",
        hub_id=entity.id or "",
        match_json=_match_json(
            event,
            payload.id,
            payload.version,
            payload.organizer_id,
            entity,
            teams,
            game=payload.game,
            region=payload.region,
            results=payload.results,
        ),
        dropped=tuple(dropped),
    )


def _refuse_blank(where: str, value: str) -> None:
    # Not in the pattern: Python's idea of whitespace (what voice strips) is not the regex's.
    if value.isspace():
        raise NotAFaceitEvent(f"{where}: must not be blank")


def simple_event_id(body: Mapping[str, Any]) -> str:
    """A deterministic event id for a simplified body: a hash of its canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "simple-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _from_simple(simple: SimpleEvent, body: Mapping[str, Any]) -> InboundEvent:
    _refuse_blank("match_id", simple.match_id)
    entity = simple.entity or SimpleEntity()
    factions = entity.teams or {}
    dropped: list[str] = [f"team {faction!r}" for faction in factions if faction not in FACTIONS]
    teams = [
        team_json(faction, team.name, _roster_json(faction, team.roster or (), dropped))
        for faction in FACTIONS
        if (team := factions.get(faction)) is not None
    ]
    version = simple.version or 0
    return InboundEvent(
        event_id=simple.event_id or simple_event_id(body),
        event=simple.event,
        action=action_for(simple.event),
        source=Source.WEBHOOK,
        match_id=simple.match_id,
        version=version,
        organizer_id=simple.organizer_id or "",
        hub_id=entity.id or "",
        match_json=_match_json(
            simple.event, simple.match_id, version, simple.organizer_id, entity, teams
        ),
        dropped=tuple(dropped),
    )
